//! What callers send to create apps and accounts, and the checks that run before anything is stored.
//!
//! Every check collects into one list of [`FieldError`]s, so a caller sees all of its mistakes at
//! once, each naming its field.
//!
//! Non-goal: checking that a server answers; that is the login verification in [`crate::accounts`].

use crate::error::FieldError;
use chrono::{DateTime, Utc};
use postern_store::{Endpoint, SaslMechanism, Security};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// `POST /v1/oauth-apps`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAppInput {
    /// A name for people.
    pub name: String,
    /// `google`, `microsoft`, `yahoo` or `generic`.
    pub provider: String,
    /// The client id the provider issued.
    pub client_id: String,
    /// The client secret (sealed at once; never returned).
    pub client_secret: Option<SecretString>,
    /// The redirect URI registered with the provider; default: Postern's `/oauth/callback`.
    pub redirect_uri: Option<String>,
    /// Scopes; default: the preset's least-privilege IMAP + SMTP scopes.
    pub scopes: Option<Vec<String>>,
    /// Microsoft's tenant.
    pub tenant: Option<String>,
    /// Endpoints (required for `generic`).
    pub authorize_url: Option<String>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// Revocation endpoint.
    pub revoke_url: Option<String>,
    /// RFC 8628 device authorization endpoint.
    pub device_authorization_url: Option<String>,
    /// Extra authorization-request parameters.
    pub extra_params: Option<BTreeMap<String, String>>,
    /// When the client secret expires, if known (for expiry warnings).
    pub secret_expires_at: Option<DateTime<Utc>>,
}

/// `POST /v1/accounts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccountInput {
    /// The mailbox address.
    pub email: String,
    /// A display name.
    pub name: Option<String>,
    /// The IMAP server; default: the app's provider preset.
    pub imap: Option<EndpointInput>,
    /// The SMTP server; default: the app's provider preset.
    pub smtp: Option<EndpointInput>,
    /// How the account authenticates.
    pub auth: AuthInput,
}

/// A mail server as given in a request.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `tls` (implicit), `starttls`, or `none` (loopback hosts only).
    pub security: Security,
    /// A PEM file of CA certificates to trust instead of the system's (self-hosted servers).
    pub ca_file: Option<String>,
}

/// How an account authenticates.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum AuthInput {
    /// A user's OAuth2 grant, obtained through the authorization-code or device flow.
    #[serde(rename = "oauth2")]
    OAuth2 {
        /// The OAuth app.
        app_id: String,
        /// `xoauth2` (default) or `oauthbearer`.
        mechanism: Option<SaslMechanism>,
    },
    /// App-only access (client credentials), e.g. a Microsoft 365 tenant.
    #[serde(rename = "oauth2_app")]
    OAuth2App {
        /// The OAuth app.
        app_id: String,
        /// `xoauth2` (default) or `oauthbearer`.
        mechanism: Option<SaslMechanism>,
    },
    /// A password (or app password), over TLS only.
    #[serde(rename = "password")]
    Password {
        /// The login name; default: the email address.
        username: Option<String>,
        /// The password (sealed at once; never returned).
        password: SecretString,
    },
}

/// A rough but honest address check: one `@`, something on each side, no spaces. The mail server
/// has the final word when Postern logs in.
pub(crate) fn check_email(email: &str, errors: &mut Vec<FieldError>) {
    let well_formed = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.contains('@')
    }) && !email.chars().any(char::is_whitespace);
    if !well_formed {
        errors.push(FieldError::new(
            "email",
            "must be a mail address such as user@example.com",
        ));
    }
}

/// Whether `host` is this machine (where an unencrypted connection exposes nothing).
pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

impl EndpointInput {
    /// Checks the endpoint, naming fields under `prefix` (`imap` or `smtp`).
    pub(crate) fn check(self, prefix: &str, errors: &mut Vec<FieldError>) -> Endpoint {
        if self.host.trim().is_empty() {
            errors.push(FieldError::new(
                format!("{prefix}.host"),
                "must not be empty",
            ));
        }
        if self.port == 0 {
            errors.push(FieldError::new(
                format!("{prefix}.port"),
                "must be between 1 and 65535",
            ));
        }
        if self.security == Security::None && !is_loopback(&self.host) {
            errors.push(FieldError::new(
                format!("{prefix}.security"),
                "\"none\" sends credentials in the clear and is allowed only for loopback hosts; use \"tls\" or \"starttls\"",
            ));
        }
        if let Some(ca_file) = &self.ca_file
            && let Err(error) = std::fs::metadata(ca_file)
        {
            errors.push(FieldError::new(
                format!("{prefix}.ca_file"),
                format!("cannot read {ca_file}: {error}"),
            ));
        }
        Endpoint {
            host: self.host.trim().to_owned(),
            port: self.port,
            security: self.security,
            ca_file: self.ca_file,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "localhost.example.com",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn plaintext_to_a_remote_host_is_refused_with_the_field_named() {
        let mut errors = Vec::new();
        let endpoint = EndpointInput {
            host: "imap.example.com".into(),
            port: 143,
            security: Security::None,
            ca_file: Some("/nonexistent/ca.pem".into()),
        };
        endpoint.check("imap", &mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["imap.security", "imap.ca_file"]);
    }

    #[test]
    fn emails_are_checked_roughly() {
        for good in ["a@b.co", "first.last+tag@mail.example.org"] {
            let mut errors = Vec::new();
            check_email(good, &mut errors);
            assert!(errors.is_empty(), "{good}");
        }
        for bad in ["", "a", "@b.co", "a@", "a@b", "a b@c.d", "a@b@c.d"] {
            let mut errors = Vec::new();
            check_email(bad, &mut errors);
            assert_eq!(errors.len(), 1, "{bad}");
        }
    }
}
