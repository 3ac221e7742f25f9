//! [`TokenGrant`]: what a successful token request hands back, with its secrets wrapped.
//!
//! Non-goal: deciding when a token expires or must be refreshed; that is the token manager's business,
//! from [`TokenGrant::expires_in`] and the time it received the grant.
//! Key decision: the tokens leave oauth2's types at once and live only in `SecretString`s, so `Debug`
//! and logs cannot show them.

use std::time::Duration;

use oauth2::TokenResponse as _;
use oauth2::basic::BasicTokenResponse;
use secrecy::SecretString;

use crate::error::OAuthError;

/// The tokens of a successful token request. `Debug` shows no token.
#[derive(Clone, Debug)]
pub struct TokenGrant {
    /// The bearer token for IMAP/SMTP.
    pub access_token: SecretString,
    /// The refresh token, when the provider sent one. A refresh answer without one (Google) means the old
    /// refresh token stays valid; one with a new token (Microsoft) means the old one is now dead, so the
    /// new one must be persisted before the access token is used.
    pub refresh_token: Option<SecretString>,
    /// How long the access token lives, from the time of the answer.
    pub expires_in: Option<Duration>,
    /// The scopes granted, space-separated, when the provider said (it may grant fewer than asked).
    pub scope: Option<String>,
}

impl TokenGrant {
    /// Wraps oauth2's token response.
    pub(crate) fn from_response(response: &BasicTokenResponse) -> Self {
        let scope = response.scopes().map(|scopes| {
            let names: Vec<&str> = scopes.iter().map(|scope| scope.as_str()).collect();
            names.join(" ")
        });
        TokenGrant {
            access_token: SecretString::from(response.access_token().secret().as_str()),
            refresh_token: response
                .refresh_token()
                .map(|token| SecretString::from(token.secret().as_str())),
            expires_in: response.expires_in(),
            scope,
        }
    }

    /// The grant of a user flow, which is useless without a refresh token (the mailbox would be cut off
    /// when the access token expires).
    pub(crate) fn require_refresh_token(self) -> Result<Self, OAuthError> {
        match self.refresh_token {
            Some(_) => Ok(self),
            None => Err(OAuthError::MissingRefreshToken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    fn response(json: &str) -> BasicTokenResponse {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_token_answer_is_wrapped_and_debug_shows_no_token() {
        let grant = TokenGrant::from_response(&response(
            r#"{"access_token":"pat_1","token_type":"Bearer","expires_in":3599,"refresh_token":"prt_1","scope":"a b"}"#,
        ));
        assert_eq!(grant.access_token.expose_secret(), "pat_1");
        assert_eq!(
            grant.refresh_token.as_ref().unwrap().expose_secret(),
            "prt_1"
        );
        assert_eq!(grant.expires_in, Some(Duration::from_secs(3599)));
        assert_eq!(grant.scope.as_deref(), Some("a b"));
        let debug = format!("{grant:?}");
        assert!(
            !debug.contains("pat_1") && !debug.contains("prt_1"),
            "{debug}"
        );
    }

    #[test]
    fn a_grant_without_refresh_token_is_refused_where_one_is_needed() {
        let grant = TokenGrant::from_response(&response(
            r#"{"access_token":"pat_1","token_type":"bearer"}"#,
        ));
        assert_eq!(grant.expires_in, None);
        let error = grant.require_refresh_token().unwrap_err();
        assert!(matches!(error, OAuthError::MissingRefreshToken));
        let message = error.to_string();
        assert!(message.contains("access_type=offline") && message.contains("offline_access"));
    }
}
