//! Provider presets: what Postern knows about Google, Microsoft and Yahoo, and the resolution of an
//! operator's app definition against it.
//!
//! Purpose: an operator registering an OAuth app types a client id and little else; [`Preset`] supplies the
//! endpoints, the least-privilege scopes for IMAP and SMTP, the extra authorization parameters a refresh
//! token depends on, and the mail-server facts the sync and outbox crates need (hosts, connection limits,
//! IDLE restart, whether the server files sent mail itself). [`AppInput::resolve`] fills the blanks and
//! refuses the mistakes that would only show up later as a mailbox that stops working.
//!
//! Non-goal: discovery (OpenID Connect metadata, autoconfig). The presets are the facts of
//! `PROVIDERS.md`, in code; the generic provider takes whatever the operator enters.
//!
//! Key decision: explicit input wins over the preset, except where the explicit value cannot work
//! (a Microsoft Graph scope for IMAP, Microsoft scopes without `offline_access`, Gmail without
//! `https://mail.google.com/`): those are refused with a message saying what to use instead, so the API
//! answers 400 at registration rather than the account failing an hour later.

mod resolve;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::UnknownProvider;
use crate::oauth::ClientAuth;

pub use resolve::{AppInput, FieldWarning, ResolvedApp};

/// A mail provider with a preset, or `Generic` for any other OAuth2 provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Gmail and Google Workspace.
    Google,
    /// Outlook.com and Microsoft 365 (Entra ID).
    Microsoft,
    /// Yahoo Mail (and AOL).
    Yahoo,
    /// Any other provider: the operator supplies the endpoints and scopes.
    Generic,
}

impl Provider {
    /// Every provider, presets first.
    pub const ALL: [Provider; 4] = [
        Provider::Google,
        Provider::Microsoft,
        Provider::Yahoo,
        Provider::Generic,
    ];

    /// The name used in the API and configuration: `"google"`, `"microsoft"`, `"yahoo"`, `"generic"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Microsoft => "microsoft",
            Provider::Yahoo => "yahoo",
            Provider::Generic => "generic",
        }
    }

    /// The preset; `tenant` matters only for Microsoft (`None` means [`DEFAULT_TENANT`]).
    pub fn preset(self, tenant: Option<&str>) -> Preset {
        match self {
            Provider::Google => google(),
            Provider::Microsoft => microsoft(tenant.unwrap_or(DEFAULT_TENANT)),
            Provider::Yahoo => yahoo(),
            Provider::Generic => generic(),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = UnknownProvider;

    /// Parses a provider name, ignoring case and surrounding blanks.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|provider| provider.as_str().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| UnknownProvider {
                name: name.to_owned(),
            })
    }
}

/// Microsoft's tenant when none is given: any work, school or personal account.
pub const DEFAULT_TENANT: &str = "common";

/// How a mail connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Security {
    /// TLS from the first byte (IMAP 993, SMTP 465).
    Tls,
    /// Plain text upgraded with STARTTLS before authentication (SMTP 587).
    StartTls,
}

/// A mail server's address and how to secure the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MailServer {
    /// The host name.
    pub host: &'static str,
    /// The port.
    pub port: u16,
    /// TLS or STARTTLS.
    pub security: Security,
}

/// What Postern knows about a provider. For [`Provider::Generic`] every endpoint and server is `None`
/// and every behaviour the conservative default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The provider described.
    pub provider: Provider,
    /// The authorization endpoint.
    pub authorize_url: Option<String>,
    /// The token endpoint.
    pub token_url: Option<String>,
    /// The revocation endpoint (Google only; Microsoft and Yahoo have none).
    pub revoke_url: Option<String>,
    /// The RFC 8628 device authorization endpoint.
    pub device_authorization_url: Option<String>,
    /// The least-privilege scopes for IMAP and SMTP with a refresh token.
    pub default_scopes: &'static [&'static str],
    /// Parameters added to the authorization request, without which no refresh token comes back.
    pub extra_authorize_params: &'static [(&'static str, &'static str)],
    /// The scope of an app-only (client credentials) token, where the provider has them.
    pub app_only_scope: Option<&'static str>,
    /// The IMAP server.
    pub imap: Option<MailServer>,
    /// The SMTP submission server.
    pub smtp: Option<MailServer>,
    /// Whether every refresh returns a new refresh token and kills the old one. Whatever this says, a
    /// returned refresh token is persisted; this tells whether its absence is normal.
    pub rotates_refresh_tokens: bool,
    /// The most simultaneous IMAP connections per account the server tolerates, when known.
    pub max_imap_connections: Option<u16>,
    /// Whether the server files a copy of mail sent through SMTP in the Sent folder itself, so Postern
    /// must not APPEND one.
    pub saves_sent_copy: bool,
    /// When to end and re-issue IDLE: before RFC 2177's 29 minutes, or before the server cuts it.
    pub idle_restart: Duration,
    /// How the client authenticates at the provider's endpoints.
    pub client_auth: ClientAuth,
}

/// RFC 2177: re-issue IDLE at least every 29 minutes.
const RFC_IDLE_RESTART: Duration = Duration::from_secs(29 * 60);

fn google() -> Preset {
    Preset {
        provider: Provider::Google,
        authorize_url: Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
        token_url: Some("https://oauth2.googleapis.com/token".into()),
        revoke_url: Some("https://oauth2.googleapis.com/revoke".into()),
        device_authorization_url: Some("https://oauth2.googleapis.com/device/code".into()),
        default_scopes: &[GMAIL_SCOPE],
        extra_authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
        app_only_scope: None,
        imap: Some(MailServer {
            host: "imap.gmail.com",
            port: 993,
            security: Security::Tls,
        }),
        smtp: Some(MailServer {
            host: "smtp.gmail.com",
            port: 465,
            security: Security::Tls,
        }),
        rotates_refresh_tokens: false,
        // `NO [ALERT] Too many simultaneous connections` past about 15.
        max_imap_connections: Some(15),
        // Gmail files sent mail in "[Gmail]/Sent Mail" by itself.
        saves_sent_copy: true,
        idle_restart: RFC_IDLE_RESTART,
        client_auth: ClientAuth::RequestBody,
    }
}

/// The only Google scope that IMAP and SMTP accept.
pub(crate) const GMAIL_SCOPE: &str = "https://mail.google.com/";

/// Microsoft's delegated scopes for IMAP and SMTP; `offline_access` brings the refresh token.
pub(crate) const MICROSOFT_IMAP_SCOPE: &str = "https://outlook.office.com/IMAP.AccessAsUser.All";
pub(crate) const MICROSOFT_SMTP_SCOPE: &str = "https://outlook.office.com/SMTP.Send";
pub(crate) const OFFLINE_ACCESS: &str = "offline_access";

fn microsoft(tenant: &str) -> Preset {
    let endpoint =
        |name: &str| format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/{name}");
    Preset {
        provider: Provider::Microsoft,
        authorize_url: Some(endpoint("authorize")),
        token_url: Some(endpoint("token")),
        revoke_url: None,
        device_authorization_url: Some(endpoint("devicecode")),
        default_scopes: &[MICROSOFT_IMAP_SCOPE, MICROSOFT_SMTP_SCOPE, OFFLINE_ACCESS],
        extra_authorize_params: &[],
        app_only_scope: Some("https://outlook.office365.com/.default"),
        imap: Some(MailServer {
            host: "outlook.office365.com",
            port: 993,
            security: Security::Tls,
        }),
        // Personal accounts also answer at smtp-mail.outlook.com:587.
        smtp: Some(MailServer {
            host: "smtp.office365.com",
            port: 587,
            security: Security::StartTls,
        }),
        rotates_refresh_tokens: true,
        max_imap_connections: None,
        saves_sent_copy: false,
        idle_restart: RFC_IDLE_RESTART,
        client_auth: ClientAuth::RequestBody,
    }
}

fn yahoo() -> Preset {
    Preset {
        provider: Provider::Yahoo,
        authorize_url: Some("https://api.login.yahoo.com/oauth2/request_auth".into()),
        token_url: Some("https://api.login.yahoo.com/oauth2/get_token".into()),
        revoke_url: None,
        device_authorization_url: None,
        // PROVIDERS.md marks this "(verify)": Yahoo rarely grants the mail scope to new apps.
        default_scopes: &["mail-w"],
        extra_authorize_params: &[],
        app_only_scope: None,
        imap: Some(MailServer {
            host: "imap.mail.yahoo.com",
            port: 993,
            security: Security::Tls,
        }),
        smtp: Some(MailServer {
            host: "smtp.mail.yahoo.com",
            port: 465,
            security: Security::Tls,
        }),
        rotates_refresh_tokens: false,
        max_imap_connections: None,
        saves_sent_copy: false,
        // Yahoo cuts IDLE after about three minutes: re-issue it just before.
        idle_restart: Duration::from_secs(170),
        client_auth: ClientAuth::RequestBody,
    }
}

fn generic() -> Preset {
    Preset {
        provider: Provider::Generic,
        authorize_url: None,
        token_url: None,
        revoke_url: None,
        device_authorization_url: None,
        default_scopes: &[],
        extra_authorize_params: &[],
        app_only_scope: None,
        imap: None,
        smtp: None,
        rotates_refresh_tokens: false,
        max_imap_connections: None,
        saves_sent_copy: false,
        idle_restart: RFC_IDLE_RESTART,
        client_auth: ClientAuth::Basic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ignore_case() {
        for provider in Provider::ALL {
            assert_eq!(provider.as_str().parse::<Provider>().unwrap(), provider);
            assert_eq!(provider.to_string(), provider.as_str());
        }
        assert_eq!(" Google ".parse::<Provider>().unwrap(), Provider::Google);
        let error = "gmail".parse::<Provider>().unwrap_err();
        assert_eq!(error.name, "gmail");
        assert!(
            error
                .to_string()
                .contains("google, microsoft, yahoo or generic")
        );
    }

    #[test]
    fn google_asks_for_offline_access_and_mail_scope_only() {
        let preset = Provider::Google.preset(None);
        assert_eq!(preset.default_scopes, ["https://mail.google.com/"]);
        assert_eq!(
            preset.extra_authorize_params,
            [("access_type", "offline"), ("prompt", "consent")]
        );
        assert_eq!(preset.max_imap_connections, Some(15));
        assert!(preset.saves_sent_copy);
        assert!(!preset.rotates_refresh_tokens);
        assert_eq!(preset.imap.unwrap().host, "imap.gmail.com");
        assert_eq!(preset.smtp.unwrap().port, 465);
    }

    #[test]
    fn microsoft_urls_carry_the_tenant() {
        let common = Provider::Microsoft.preset(None);
        assert_eq!(
            common.token_url.as_deref(),
            Some("https://login.microsoftonline.com/common/oauth2/v2.0/token")
        );
        let contoso = Provider::Microsoft.preset(Some("contoso.onmicrosoft.com"));
        assert_eq!(
            contoso.authorize_url.as_deref(),
            Some("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize")
        );
        assert_eq!(
            contoso.device_authorization_url.as_deref(),
            Some(
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
            )
        );
        assert!(common.default_scopes.contains(&"offline_access"));
        assert_eq!(
            common.app_only_scope,
            Some("https://outlook.office365.com/.default")
        );
        assert!(common.rotates_refresh_tokens);
        assert_eq!(common.smtp.unwrap().security, Security::StartTls);
    }

    #[test]
    fn yahoo_restarts_idle_before_its_three_minute_cut() {
        let yahoo = Provider::Yahoo.preset(None);
        assert!(yahoo.idle_restart < Duration::from_secs(180));
        assert_eq!(
            Provider::Google.preset(None).idle_restart,
            Duration::from_secs(29 * 60)
        );
        assert_eq!(yahoo.default_scopes, ["mail-w"]);
    }

    #[test]
    fn generic_knows_nothing() {
        let generic = Provider::Generic.preset(None);
        assert_eq!(generic.token_url, None);
        assert!(generic.default_scopes.is_empty());
        assert_eq!(generic.client_auth, ClientAuth::Basic);
    }
}
