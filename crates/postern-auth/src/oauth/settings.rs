//! What an [`OAuthClient`](super::OAuthClient) needs to know about an app, and the checks it runs on it.
//!
//! Non-goal: provider knowledge. Filling settings from a provider's preset and refusing known traps is
//! [`crate::presets`]' job; these checks only keep the client from sending secrets where they must not go.
//!
//! Key decision: the URL rule (HTTPS, or plain HTTP to a loopback host only) lives here, below the presets,
//! so an app definition is checked by the same rule when an operator enters it and when a client is built
//! from a stored copy.

use std::collections::BTreeMap;
use std::net::IpAddr;

use secrecy::SecretString;
use url::{Host, Url};

use crate::error::OAuthError;

/// How the client authenticates at the token, device and revocation endpoints (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-encoded id and secret: the method RFC 6749 requires every
    /// server to support, so the default for generic providers.
    #[default]
    Basic,
    /// `client_id` and `client_secret` as form parameters: what Google's and Microsoft's documentation
    /// shows for every endpoint, device flow included.
    RequestBody,
}

/// The authorization-request parameters the client sets itself; an extra parameter may not replace them.
pub(crate) const RESERVED_AUTHORIZE_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// An OAuth app as the client uses it: its registration and the provider's endpoints.
///
/// Usually built by [`crate::presets::ResolvedApp::client_settings`]. `Debug` shows no secret.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// The app's client id.
    pub client_id: String,
    /// The secret of a confidential app; `None` for a public one (PKCE and device flow only).
    pub client_secret: Option<SecretString>,
    /// The authorization endpoint (the browser goes there).
    pub authorize_url: Url,
    /// The token endpoint.
    pub token_url: Url,
    /// The revocation endpoint, if the provider has one (Microsoft has none).
    pub revoke_url: Option<Url>,
    /// The RFC 8628 device authorization endpoint, if the provider has one.
    pub device_authorization_url: Option<Url>,
    /// The scopes asked for in user flows (authorization code and device).
    pub scopes: Vec<String>,
    /// Extra authorization-request parameters, e.g. Google's `access_type=offline` and `prompt=consent`.
    pub extra_params: BTreeMap<String, String>,
    /// How the client authenticates at the provider's endpoints.
    pub client_auth: ClientAuth,
}

impl ClientSettings {
    /// Checks what the client relies on: a client id, usable endpoint URLs, no reserved extra parameter.
    pub(crate) fn validate(&self) -> Result<(), OAuthError> {
        if self.client_id.trim().is_empty() {
            return Err(invalid("client_id", "is empty"));
        }
        let endpoints = [
            ("authorize_url", Some(&self.authorize_url)),
            ("token_url", Some(&self.token_url)),
            ("revoke_url", self.revoke_url.as_ref()),
            (
                "device_authorization_url",
                self.device_authorization_url.as_ref(),
            ),
        ];
        for (field, url) in endpoints {
            if let Some(problem) = url.and_then(url_problem) {
                return Err(invalid(field, problem));
            }
        }
        if let Some(name) = self
            .extra_params
            .keys()
            .find(|name| RESERVED_AUTHORIZE_PARAMS.contains(&name.as_str()))
        {
            return Err(invalid(
                &format!("extra_params.{name}"),
                "is set by the client itself",
            ));
        }
        Ok(())
    }
}

fn invalid(field: &str, problem: &str) -> OAuthError {
    OAuthError::InvalidSettings {
        field: field.to_owned(),
        problem: problem.to_owned(),
    }
}

/// Why `url` cannot be an OAuth endpoint or redirect URI, if it cannot.
///
/// HTTPS is required because client secrets, codes and tokens travel to these URLs; plain HTTP is allowed
/// only to a loopback host, where nothing crosses a network (local test providers, native-app redirects).
pub(crate) fn url_problem(url: &Url) -> Option<&'static str> {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(url) => {}
        "http" => return Some("must use https (plain http is allowed only to a loopback host)"),
        _ => return Some("must be an https URL"),
    }
    if url.host().is_none() {
        return Some("has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("must not carry credentials");
    }
    if url.fragment().is_some() {
        return Some("must not have a #fragment");
    }
    None
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(url: &str) -> Option<&'static str> {
        url_problem(&Url::parse(url).unwrap())
    }

    #[test]
    fn https_urls_pass_and_plain_http_only_on_loopback() {
        assert_eq!(problem("https://oauth2.googleapis.com/token"), None);
        assert_eq!(problem("http://127.0.0.1:8080/token"), None);
        assert_eq!(problem("http://127.3.4.5/token"), None);
        assert_eq!(problem("http://[::1]:9/cb"), None);
        assert_eq!(problem("http://localhost:9/cb"), None);
        assert!(
            problem("http://example.com/token")
                .unwrap()
                .contains("https")
        );
        assert!(problem("http://10.0.0.1/token").is_some());
        assert!(problem("ftp://example.com/token").is_some());
    }

    #[test]
    fn credentials_and_fragments_are_refused() {
        assert!(problem("https://user:pw@example.com/token").is_some());
        assert!(problem("https://example.com/token#frag").is_some());
    }

    fn settings() -> ClientSettings {
        ClientSettings {
            client_id: "app".into(),
            client_secret: None,
            authorize_url: Url::parse("https://example.com/auth").unwrap(),
            token_url: Url::parse("https://example.com/token").unwrap(),
            revoke_url: None,
            device_authorization_url: None,
            scopes: vec!["a".into()],
            extra_params: BTreeMap::new(),
            client_auth: ClientAuth::Basic,
        }
    }

    #[test]
    fn validation_names_the_field_at_fault() {
        assert!(settings().validate().is_ok());

        let blank_id = ClientSettings {
            client_id: " ".into(),
            ..settings()
        };
        let err = blank_id.validate().unwrap_err();
        assert!(matches!(err, OAuthError::InvalidSettings { field, .. } if field == "client_id"));

        let insecure_revoke = ClientSettings {
            revoke_url: Some(Url::parse("http://example.com/revoke").unwrap()),
            ..settings()
        };
        let err = insecure_revoke.validate().unwrap_err();
        assert!(matches!(err, OAuthError::InvalidSettings { field, .. } if field == "revoke_url"));

        let mut reserved = settings();
        reserved.extra_params.insert("state".into(), "x".into());
        let err = reserved.validate().unwrap_err();
        assert!(
            matches!(err, OAuthError::InvalidSettings { field, .. } if field == "extra_params.state")
        );
    }
}
