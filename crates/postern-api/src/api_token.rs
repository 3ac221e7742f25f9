//! API tokens: how they are made, how they are recognised, and the scopes they carry.
//!
//! A token is `pst_` followed by 32 random bytes in unpadded base64url. The prefix lets secret scanners
//! and people recognise a Postern token in a leaked file; the randomness makes guessing hopeless, so a
//! plain SHA-256 (no salt, no slow hash) is the right thing to store and to look up by.
//!
//! Non-goal: issuing or listing tokens over HTTP (see the routes) or persisting them (the store does);
//! this module is the pure part both the API and the CLI share.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The prefix of every Postern API token.
pub const TOKEN_PREFIX: &str = "pst_";

/// A freshly generated API token, shown to its owner once and then only kept as its hash.
pub struct ApiTokenSecret(SecretString);

impl ApiTokenSecret {
    /// Draws a new random token.
    ///
    /// # Errors
    /// Occurs when the operating system's random source fails, which on Linux means the process
    /// cannot run safely at all.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let text = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        Ok(Self(SecretString::from(text)))
    }

    /// The token text, to print once to its owner.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The SHA-256 the store keeps in place of the token.
    pub fn hash(&self) -> [u8; 32] {
        hash_token(self.0.expose_secret())
    }
}

impl fmt::Debug for ApiTokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiTokenSecret(<redacted>)")
    }
}

/// SHA-256 of a presented token's text, for lookup.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What a token may do. `admin` may do everything.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub enum Scope {
    /// Everything, including managing tokens.
    #[serde(rename = "admin")]
    Admin,
    /// Read accounts and their state.
    #[serde(rename = "accounts:read")]
    AccountsRead,
    /// Create, change and remove accounts.
    #[serde(rename = "accounts:write")]
    AccountsWrite,
    /// Read mailboxes and messages.
    #[serde(rename = "messages:read")]
    MessagesRead,
    /// Change flags, move and delete messages.
    #[serde(rename = "messages:write")]
    MessagesWrite,
    /// Send mail.
    #[serde(rename = "send")]
    Send,
    /// Manage webhooks.
    #[serde(rename = "webhooks")]
    Webhooks,
    /// Read Prometheus metrics.
    #[serde(rename = "metrics")]
    Metrics,
}

impl Scope {
    /// Every scope, in the order the docs list them.
    pub const ALL: [Scope; 8] = [
        Scope::Admin,
        Scope::AccountsRead,
        Scope::AccountsWrite,
        Scope::MessagesRead,
        Scope::MessagesWrite,
        Scope::Send,
        Scope::Webhooks,
        Scope::Metrics,
    ];

    /// The scope's name as tokens and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::AccountsRead => "accounts:read",
            Scope::AccountsWrite => "accounts:write",
            Scope::MessagesRead => "messages:read",
            Scope::MessagesWrite => "messages:write",
            Scope::Send => "send",
            Scope::Webhooks => "webhooks",
            Scope::Metrics => "metrics",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Occurs when a scope name is not one Postern knows.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown scope {0:?}; known scopes: admin, accounts:read, accounts:write, messages:read, messages:write, send, webhooks, metrics"
)]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == name)
            .ok_or_else(|| UnknownScope(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_random_and_hash_to_their_own_text() {
        let first = ApiTokenSecret::generate().unwrap();
        let second = ApiTokenSecret::generate().unwrap();
        assert!(first.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(first.expose().len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(first.expose(), second.expose());
        assert_eq!(first.hash(), hash_token(first.expose()));
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let token = ApiTokenSecret::generate().unwrap();
        let shown = format!("{token:?}");
        assert!(!shown.contains(token.expose()));
        assert!(!shown.contains(&token.expose()[TOKEN_PREFIX.len()..]));
    }

    #[test]
    fn scopes_round_trip_through_their_names() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
        let error = "admin ".parse::<Scope>().unwrap_err();
        assert!(error.to_string().contains("unknown scope \"admin \""));
    }
}
