//! [`AppInput::resolve`]: an operator's app definition, checked field by field and completed from the
//! provider's preset.
//!
//! Non-goal: the client secret. It is neither checked nor carried here; the caller stores it encrypted
//! and hands it to [`ResolvedApp::client_settings`] when a client is needed.
//! Key decision: every field is checked and every problem reported at once (like `Config::resolve`), so
//! the API's 400 lists all mistakes in one round trip; fixes that are certainly right (Google's
//! `access_type=offline`) are applied with a warning instead of a refusal.

use std::collections::BTreeMap;

use secrecy::SecretString;
use url::Url;

use super::{
    DEFAULT_TENANT, GMAIL_SCOPE, MICROSOFT_IMAP_SCOPE, MICROSOFT_SMTP_SCOPE, OFFLINE_ACCESS,
    Preset, Provider,
};
use crate::error::FieldError;
use crate::oauth::{ClientSettings, RESERVED_AUTHORIZE_PARAMS, url_problem};

/// An OAuth app as an operator enters it: blanks are filled from the provider's preset.
///
/// Blank strings count as absent. Scopes may be given one per entry or space-separated.
#[derive(Clone, Debug, Default)]
pub struct AppInput {
    /// `google`, `microsoft`, `yahoo` or `generic`.
    pub provider: String,
    /// The client id the provider issued.
    pub client_id: String,
    /// Postern's callback registered with the provider (needed for the authorization-code flow only).
    pub redirect_uri: Option<String>,
    /// The scopes; empty means the preset's least-privilege IMAP+SMTP scopes.
    pub scopes: Vec<String>,
    /// Microsoft's tenant (`common`, `organizations`, `consumers`, a tenant id or domain); Microsoft only.
    pub tenant: Option<String>,
    /// The authorization endpoint; required for `generic`.
    pub authorize_url: Option<String>,
    /// The token endpoint; required for `generic`.
    pub token_url: Option<String>,
    /// The revocation endpoint.
    pub revoke_url: Option<String>,
    /// The RFC 8628 device authorization endpoint.
    pub device_authorization_url: Option<String>,
    /// Extra authorization-request parameters; they win over the preset's.
    pub extra_params: BTreeMap<String, String>,
}

/// Something [`AppInput::resolve`] changed or doubts, without refusing the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldWarning {
    /// The input field, as in [`FieldError::field`].
    pub field: String,
    /// What was changed or what may go wrong.
    pub message: String,
}

/// A checked, complete app definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedApp {
    /// The provider.
    pub provider: Provider,
    /// The client id, trimmed.
    pub client_id: String,
    /// Microsoft's tenant (`common` unless given); `None` for other providers.
    pub tenant: Option<String>,
    /// The redirect URI exactly as entered (providers compare it character by character).
    pub redirect_uri: Option<String>,
    /// The scopes for user flows.
    pub scopes: Vec<String>,
    /// The authorization endpoint.
    pub authorize_url: Url,
    /// The token endpoint.
    pub token_url: Url,
    /// The revocation endpoint, if any.
    pub revoke_url: Option<Url>,
    /// The device authorization endpoint, if any.
    pub device_authorization_url: Option<Url>,
    /// Extra authorization-request parameters: the operator's, completed by the preset's.
    pub extra_params: BTreeMap<String, String>,
    /// What resolution changed or doubts.
    pub warnings: Vec<FieldWarning>,
}

impl ResolvedApp {
    /// The provider's preset (mail servers, limits, IDLE restart, ...).
    pub fn preset(&self) -> Preset {
        self.provider.preset(self.tenant.as_deref())
    }

    /// The settings of an [`OAuthClient`](crate::oauth::OAuthClient) for this app.
    pub fn client_settings(&self, client_secret: Option<SecretString>) -> ClientSettings {
        ClientSettings {
            client_id: self.client_id.clone(),
            client_secret,
            authorize_url: self.authorize_url.clone(),
            token_url: self.token_url.clone(),
            revoke_url: self.revoke_url.clone(),
            device_authorization_url: self.device_authorization_url.clone(),
            scopes: self.scopes.clone(),
            extra_params: self.extra_params.clone(),
            client_auth: self.preset().client_auth,
        }
    }
}

impl AppInput {
    /// Checks every field, fills blanks from the preset, and refuses the known traps; on failure returns
    /// every problem found, each naming its field.
    pub fn resolve(self) -> Result<ResolvedApp, Vec<FieldError>> {
        let mut report = Report::default();
        let provider = report.provider(&self.provider);
        let tenant = report.tenant(provider, self.tenant);
        let preset = provider.map(|provider| provider.preset(tenant.as_deref()));
        let preset_url =
            |pick: fn(&Preset) -> &Option<String>| preset.as_ref().and_then(|p| pick(p).clone());
        let required = provider == Some(Provider::Generic);

        let client_id = report.client_id(&self.client_id);
        let redirect_uri = report.redirect_uri(self.redirect_uri);
        let authorize_url = report.endpoint(
            "authorize_url",
            self.authorize_url,
            preset_url(|p| &p.authorize_url),
            required,
        );
        let token_url = report.endpoint(
            "token_url",
            self.token_url,
            preset_url(|p| &p.token_url),
            required,
        );
        let revoke_url = report.endpoint(
            "revoke_url",
            self.revoke_url,
            preset_url(|p| &p.revoke_url),
            false,
        );
        let device_authorization_url = report.endpoint(
            "device_authorization_url",
            self.device_authorization_url,
            preset_url(|p| &p.device_authorization_url),
            false,
        );
        let scopes = report.scopes(provider, self.scopes, preset.as_ref());
        let extra_params = report.extra_params(provider, self.extra_params, preset.as_ref());

        let (Some(provider), Some(authorize_url), Some(token_url)) =
            (provider, authorize_url, token_url)
        else {
            return Err(report.into_errors());
        };
        if !report.errors.is_empty() {
            return Err(report.errors);
        }
        Ok(ResolvedApp {
            provider,
            client_id,
            tenant,
            redirect_uri,
            scopes,
            authorize_url,
            token_url,
            revoke_url,
            device_authorization_url,
            extra_params,
            warnings: report.warnings,
        })
    }
}

/// Problems and warnings collected while resolving.
#[derive(Default)]
struct Report {
    errors: Vec<FieldError>,
    warnings: Vec<FieldWarning>,
}

impl Report {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn warn(&mut self, field: &str, message: impl Into<String>) {
        self.warnings.push(FieldWarning {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// The errors, never empty: resolution that stops early has always recorded why.
    fn into_errors(mut self) -> Vec<FieldError> {
        if self.errors.is_empty() {
            self.error("provider", "cannot be resolved");
        }
        self.errors
    }

    fn provider(&mut self, name: &str) -> Option<Provider> {
        match name.parse() {
            Ok(provider) => Some(provider),
            Err(unknown) => {
                self.error("provider", format!("{unknown}"));
                None
            }
        }
    }

    fn tenant(&mut self, provider: Option<Provider>, tenant: Option<String>) -> Option<String> {
        let tenant = non_blank(tenant);
        match (provider, tenant) {
            (Some(Provider::Microsoft), None) => Some(DEFAULT_TENANT.to_owned()),
            (Some(Provider::Microsoft), Some(tenant)) if is_tenant_name(&tenant) => Some(tenant),
            (Some(Provider::Microsoft), Some(_)) => {
                self.error(
                    "tenant",
                    "must be common, organizations, consumers, a tenant id or a domain name \
                     (letters, digits, '.' and '-' only)",
                );
                None
            }
            (Some(_), Some(_)) => {
                self.error("tenant", "applies only to Microsoft apps; leave it empty");
                None
            }
            (_, _) => None,
        }
    }

    fn client_id(&mut self, client_id: &str) -> String {
        let client_id = client_id.trim();
        if client_id.is_empty() {
            self.error("client_id", "is required");
        } else if client_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            self.error("client_id", "must not contain spaces or control characters");
        }
        client_id.to_owned()
    }

    fn redirect_uri(&mut self, redirect_uri: Option<String>) -> Option<String> {
        let redirect_uri = non_blank(redirect_uri)?;
        self.url("redirect_uri", &redirect_uri)?;
        Some(redirect_uri)
    }

    fn endpoint(
        &mut self,
        field: &str,
        explicit: Option<String>,
        preset: Option<String>,
        required: bool,
    ) -> Option<Url> {
        match non_blank(explicit).or(preset) {
            Some(url) => self.url(field, &url),
            None => {
                if required {
                    self.error(
                        field,
                        "is required for the generic provider (there is no preset to fill it)",
                    );
                }
                None
            }
        }
    }

    fn url(&mut self, field: &str, url: &str) -> Option<Url> {
        let parsed = match Url::parse(url) {
            Ok(parsed) => parsed,
            Err(error) => {
                self.error(field, format!("is not a URL ({error})"));
                return None;
            }
        };
        match url_problem(&parsed) {
            Some(problem) => {
                self.error(field, problem);
                None
            }
            None => Some(parsed),
        }
    }

    fn scopes(
        &mut self,
        provider: Option<Provider>,
        input: Vec<String>,
        preset: Option<&Preset>,
    ) -> Vec<String> {
        let mut scopes: Vec<String> = Vec::new();
        for scope in input.iter().flat_map(|entry| entry.split_whitespace()) {
            if !scopes.iter().any(|known| known == scope) {
                scopes.push(scope.to_owned());
            }
        }
        if scopes.is_empty()
            && let Some(preset) = preset
        {
            scopes = preset
                .default_scopes
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        }
        match provider {
            Some(Provider::Generic) if scopes.is_empty() => {
                self.error("scopes", "are required for the generic provider");
            }
            Some(Provider::Google) => self.check_google_scopes(&scopes),
            Some(Provider::Microsoft) => self.check_microsoft_scopes(&scopes),
            _ => {}
        }
        scopes
    }

    fn check_google_scopes(&mut self, scopes: &[String]) {
        if !scopes.iter().any(|scope| scope == GMAIL_SCOPE) {
            self.error(
                "scopes",
                format!(
                    "must include {GMAIL_SCOPE}: Gmail's IMAP and SMTP accept no other scope \
                     (narrower Gmail API scopes such as gmail.readonly do not work there)"
                ),
            );
        }
    }

    fn check_microsoft_scopes(&mut self, scopes: &[String]) {
        for scope in scopes {
            if scope.to_ascii_lowercase().contains("graph.microsoft.com") {
                self.error(
                    "scopes",
                    format!(
                        "{scope} is a Microsoft Graph scope: its tokens are for the Graph API and \
                         IMAP/SMTP refuse them. Use {MICROSOFT_IMAP_SCOPE} and \
                         {MICROSOFT_SMTP_SCOPE} instead"
                    ),
                );
            } else if is_bare_exchange_scope(scope) {
                self.error(
                    "scopes",
                    format!(
                        "{scope} without a resource means the Microsoft Graph scope, which IMAP/SMTP \
                         refuse; write it as https://outlook.office.com/{scope}"
                    ),
                );
            }
        }
        if !scopes.iter().any(|scope| scope == OFFLINE_ACCESS) {
            self.error(
                "scopes",
                "offline_access is missing: without it Microsoft returns no refresh token, and the \
                 account stops working when its first access token expires (after about an hour). \
                 Add offline_access",
            );
        }
        let resources = resource_hosts(scopes);
        if resources.len() > 1 {
            self.error(
                "scopes",
                format!(
                    "name {} resources ({}), but one Microsoft token is for a single resource \
                     (AADSTS28000): keep only the https://outlook.office.com/ scopes",
                    resources.len(),
                    resources.join(", ")
                ),
            );
        }
    }

    fn extra_params(
        &mut self,
        provider: Option<Provider>,
        input: BTreeMap<String, String>,
        preset: Option<&Preset>,
    ) -> BTreeMap<String, String> {
        let mut params = BTreeMap::new();
        for (name, value) in input {
            let (name, value) = (name.trim(), value.trim());
            let field = format!("extra_params.{name}");
            if name.is_empty() {
                self.error("extra_params", "a parameter name is empty");
            } else if RESERVED_AUTHORIZE_PARAMS.contains(&name) {
                self.error(
                    &field,
                    "is set by Postern itself (scopes, redirect, state and PKCE)",
                );
            } else if value.is_empty() {
                self.error(&field, "has an empty value (providers treat it as absent)");
            } else {
                params.insert(name.to_owned(), value.to_owned());
            }
        }
        for (name, value) in preset.map_or(&[][..], |preset| preset.extra_authorize_params) {
            params
                .entry((*name).to_owned())
                .or_insert_with(|| (*value).to_owned());
        }
        if provider == Some(Provider::Google) {
            self.fix_google_params(&mut params);
        }
        params
    }

    /// Without `access_type=offline` Google returns no refresh token at all, so a different value is
    /// replaced; without `prompt=consent` only a re-consent loses it, so that is a warning only.
    fn fix_google_params(&mut self, params: &mut BTreeMap<String, String>) {
        if let Some(access_type) = params.get("access_type")
            && access_type != "offline"
        {
            self.warn(
                "extra_params.access_type",
                format!(
                    "was {access_type:?}; replaced by offline, without which Google returns no \
                     refresh token"
                ),
            );
            params.insert("access_type".to_owned(), "offline".to_owned());
        }
        let asks_consent = params
            .get("prompt")
            .is_some_and(|prompt| prompt.split_whitespace().any(|p| p == "consent"));
        if !asks_consent {
            self.warn(
                "extra_params.prompt",
                "does not include consent: a user who authorizes again gets no new refresh token",
            );
        }
    }
}

fn non_blank(value: Option<String>) -> Option<String> {
    value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn is_tenant_name(tenant: &str) -> bool {
    tenant.len() <= 255
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Exchange's IMAP/SMTP/POP permission names written without their resource, which Entra reads as Graph's.
fn is_bare_exchange_scope(scope: &str) -> bool {
    ["IMAP.AccessAsUser.All", "SMTP.Send", "POP.AccessAsUser.All"]
        .iter()
        .any(|bare| bare.eq_ignore_ascii_case(scope))
}

/// The distinct resources (hosts) named by URL-shaped scopes, in order of appearance.
fn resource_hosts(scopes: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    let urls = scopes.iter().filter_map(|scope| Url::parse(scope).ok());
    for host in urls.filter_map(|url| url.host_str().map(str::to_ascii_lowercase)) {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
