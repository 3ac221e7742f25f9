//! Pending OAuth2 authorization-code flows, found again by the `state` parameter on the callback.
//!
//! Purpose: remember, for ten minutes, which pending account and app a `state` belongs to and
//! the PKCE verifier to redeem its code with; hand it out exactly once.
//! Non-goal: generating the state or the verifier, hashing, building URLs; `postern-auth` does
//! that and gives the store a SHA-256 digest and a sealed verifier.
//! Key decision: only the SHA-256 of the state is stored (a leaked database cannot answer a
//! callback), and [`Authorizations::take`] marks the row used and deletes the verifier in one
//! transaction, so of any number of concurrent callbacks exactly one gets the verifier. Used
//! rows stay until they expire and are purged, so a replayed state is recognised as such.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use postern_vault::Sealed;

use crate::{AccountId, AppId, SecretRef, StoreError};

/// How long a pending authorization can be taken after it was created.
pub const AUTHORIZATION_LIFETIME: TimeDelta = TimeDelta::minutes(10);

/// The `owner_kind` of a verifier secret.
pub(crate) const AUTHORIZATION_OWNER: &str = "authorization";

/// What `create` needs.
#[derive(Clone, PartialEq, Eq)]
pub struct NewAuthorization {
    /// SHA-256 of the `state` parameter sent to the provider.
    pub state_hash: [u8; 32],
    /// The pending account the flow authorizes.
    pub account_id: AccountId,
    /// The app the flow runs against.
    pub app_id: AppId,
    /// The redirect URI sent in the authorization request (the token request must repeat it).
    pub redirect_uri: String,
}

/// A stored pending authorization. Timestamps have millisecond precision.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    /// SHA-256 of the `state` parameter.
    pub state_hash: [u8; 32],
    /// The pending account the flow authorizes.
    pub account_id: AccountId,
    /// The app the flow runs against.
    pub app_id: AppId,
    /// The redirect URI sent in the authorization request.
    pub redirect_uri: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops being accepted: `created_at` + [`AUTHORIZATION_LIFETIME`].
    pub expires_at: DateTime<Utc>,
}

impl PendingAuthorization {
    /// Where the PKCE verifier of the flow with this state hash is stored; seal it with this
    /// reference's [`SecretRef::context`].
    pub fn verifier_ref(state_hash: &[u8; 32]) -> SecretRef {
        SecretRef::new(AUTHORIZATION_OWNER, hex_lower(state_hash), "pkce_verifier")
    }
}

/// What [`Authorizations::take`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum TakeOutcome {
    /// The flow and its PKCE verifier; from now on the state is used.
    Taken(PendingAuthorization, Sealed),
    /// No flow has this state (never created, or already purged).
    Unknown,
    /// The flow expired before it was taken.
    Expired,
    /// The flow was taken before: a replayed or double-submitted callback.
    AlreadyUsed,
}

/// The pending-authorization repository.
#[async_trait]
pub trait Authorizations: Send + Sync {
    /// Stores the flow and its sealed PKCE verifier in one transaction, expiring
    /// [`AUTHORIZATION_LIFETIME`] from now. Fails with [`StoreError::NotFound`] for an unknown
    /// account or app, and with [`StoreError::Database`] if the state hash is taken.
    async fn create(
        &self,
        new: NewAuthorization,
        verifier: &Sealed,
    ) -> Result<PendingAuthorization, StoreError>;

    /// Atomically takes the flow with this state hash at time `now`: at most one caller ever
    /// gets [`TakeOutcome::Taken`] for a state; it is marked used and its verifier deleted.
    async fn take(
        &self,
        state_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<TakeOutcome, StoreError>;

    /// Deletes every flow (used or not) that expired at or before `now`, with its verifier;
    /// returns how many flows were deleted.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Lower-case hex, the form SQLite's `lower(hex(x))` gives, so SQL can find a verifier by hash.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

// The state hash is a lookup key for a live flow: keep it out of logs, like an API-token hash.
impl fmt::Debug for NewAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAuthorization")
            .field("state_hash", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("app_id", &self.app_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("state_hash", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("app_id", &self.app_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use super::*;

    #[test]
    fn the_verifier_is_addressed_by_the_lower_case_hex_of_the_state_hash() {
        let mut hash = [0u8; 32];
        hash[0] = 0xAB;
        hash[31] = 0x0F;
        let secret = PendingAuthorization::verifier_ref(&hash);
        assert_eq!(secret.owner_kind, "authorization");
        assert_eq!(secret.owner_id.len(), 64);
        assert!(secret.owner_id.starts_with("ab00"));
        assert!(secret.owner_id.ends_with("000f"));
        assert_eq!(secret.name, "pkce_verifier");
    }

    #[test]
    fn debug_output_hides_the_state_hash() {
        let new = NewAuthorization {
            state_hash: [0x5a; 32],
            account_id: AccountId::generate(),
            app_id: AppId::generate(),
            redirect_uri: "https://postern.example/oauth/callback".to_owned(),
        };
        let debug = format!("{new:?}");
        assert!(!debug.contains("90, 90"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}
