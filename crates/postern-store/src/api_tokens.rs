//! API tokens: the records behind `Authorization: Bearer …` and the repository that keeps them.
//!
//! Purpose: create, look up, list and revoke tokens that `postern-api` checks on every request.
//! Non-goal: generating token strings, hashing them or checking scopes; `postern-api` does that and
//! hands the store a SHA-256 digest.
//! Key decision: only the 32-byte hash is ever stored, so a stolen database yields no usable token;
//! a lookup is one indexed equality on the hash.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreError;
use crate::ids::uuid_id;

uuid_id! {
    /// The id of an API token: a UUID v7 (time-ordered) in its canonical hyphenated, lower-case form.
    ApiTokenId
}

/// What `create` needs. The plaintext token never reaches the store, only its SHA-256 digest.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// A human label, e.g. "CI deploy".
    pub name: String,
    /// SHA-256 of the token string the client will send.
    pub token_hash: [u8; 32],
    /// Scopes granted, e.g. `["messages:read"]`.
    pub scopes: Vec<String>,
    /// Accounts the token may touch; `None` means every account.
    pub account_ids: Option<Vec<String>>,
    /// When the token stops working; `None` means never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for NewApiToken {
    // The hash is not a secret, but it is a lookup key for one: keep it out of logs anyway.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiToken")
            .field("name", &self.name)
            .field("token_hash", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("account_ids", &self.account_ids)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A stored API token. Timestamps have millisecond precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The token's id.
    pub id: ApiTokenId,
    /// The human label.
    pub name: String,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Accounts the token may touch; `None` means every account.
    pub account_ids: Option<Vec<String>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working; `None` means never.
    pub expires_at: Option<DateTime<Utc>>,
    /// The latest time it was used, if ever.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// True when the token is neither revoked nor expired at `now`.
    pub fn is_usable_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| expiry > now)
    }
}

/// The API-token repository.
#[async_trait]
pub trait ApiTokens: Send + Sync {
    /// Stores a new token and returns its record. Fails with a unique violation
    /// ([`StoreError::Database`]) if a token with the same hash exists.
    async fn create(&self, new: NewApiToken) -> Result<ApiToken, StoreError>;

    /// The token whose hash is `token_hash`, unless it was revoked. Expired tokens ARE returned
    /// (so the API can say "expired"): check [`ApiToken::is_usable_at`].
    async fn find_by_hash(&self, token_hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError>;

    /// Every token, revoked ones included, oldest first.
    async fn list(&self) -> Result<Vec<ApiToken>, StoreError>;

    /// Revokes the token; false if it does not exist or was already revoked.
    async fn revoke(&self, id: &ApiTokenId) -> Result<bool, StoreError>;

    /// How many tokens are neither revoked nor expired now.
    async fn count_active(&self) -> Result<u64, StoreError>;

    /// Records a use at `at`. Never moves `last_used_at` backwards, so concurrent requests that
    /// finish out of order are harmless. A missing token is not an error.
    async fn touch_last_used(&self, id: &ApiTokenId, at: DateTime<Utc>) -> Result<(), StoreError>;
}
