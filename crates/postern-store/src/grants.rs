//! OAuth2 grants: an account's access and refresh tokens, and what is known about them.
//!
//! Purpose: store fresh tokens, load them, count failed refreshes, and find the grants the
//! proactive refresher should renew.
//! Non-goal: calling the token endpoint, single-flight refresh, back-off policy; the token manager
//! in `postern-auth` decides, the store remembers.
//! Key decision: [`Grants::store_tokens`] writes the access token, the refresh token and the
//! metadata in one transaction, so a rotated refresh token (Microsoft rotates on every refresh)
//! is durable before its access token can be used; a crash can never leave a new access token
//! next to a refresh token the provider has already invalidated. The tokens are sealed secrets
//! at [`crate::AccountId::access_token_ref`] and [`crate::AccountId::refresh_token_ref`]; the
//! `grants` row holds only what is not secret.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use postern_vault::Sealed;

use crate::{AccountId, StoreError};

/// The non-secret facts about an account's grant. Timestamps have millisecond precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The account the grant belongs to.
    pub account_id: AccountId,
    /// The scope the provider granted, space-separated as it sent it, if it said.
    pub scope: Option<String>,
    /// When the stored access token expires, if known.
    pub access_expires_at: Option<DateTime<Utc>>,
    /// When the stored access token was obtained.
    pub obtained_at: DateTime<Utc>,
    /// The latest time tokens were stored by a refresh (not by an authorization).
    pub last_refreshed_at: Option<DateTime<Utc>>,
    /// Failed refresh attempts since tokens were last stored.
    pub refresh_failures: u32,
    /// When the next refresh attempt is due after a failure, if one failed.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When a person last completed the authorization.
    pub consented_at: Option<DateTime<Utc>>,
}

/// Tokens to store, as the token endpoint returned them (sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSet {
    /// The new access token, sealed at [`crate::AccountId::access_token_ref`].
    pub access: Sealed,
    /// The new refresh token, sealed at [`crate::AccountId::refresh_token_ref`]; `None` keeps
    /// the stored one (providers that do not rotate send none).
    pub refresh: Option<Sealed>,
    /// When the access token expires, if the provider said (`expires_in`).
    pub access_expires_at: Option<DateTime<Utc>>,
    /// The granted scope; `None` keeps the stored one (RFC 6749 §5.1: omitted means unchanged).
    pub scope: Option<String>,
    /// True right after a person completed an authorization (sets `consented_at`); false for a
    /// refresh (sets `last_refreshed_at`).
    pub consented: bool,
}

/// The grant repository.
#[async_trait]
pub trait Grants: Send + Sync {
    /// In one transaction: stores the access token, the refresh token when given, and the grant
    /// metadata; resets the failure count. Fails with [`StoreError::NotFound`] for an unknown
    /// account and with [`StoreError::UnknownKey`] if a token is sealed with a key the store
    /// does not hold (nothing is stored then).
    async fn store_tokens(
        &self,
        account_id: &AccountId,
        tokens: TokenSet,
    ) -> Result<Grant, StoreError>;

    /// The account's grant, if it has one.
    async fn get(&self, account_id: &AccountId) -> Result<Option<Grant>, StoreError>;

    /// The sealed access token and refresh token (if any), read together from one snapshot;
    /// `None` if there is no access token.
    async fn load_tokens(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<(Sealed, Option<Sealed>)>, StoreError>;

    /// Counts one failed refresh and schedules the next attempt; returns the failures so far.
    /// Fails with [`StoreError::NotFound`] if the account has no grant.
    async fn record_failure(
        &self,
        account_id: &AccountId,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<u32, StoreError>;

    /// Erases both tokens and the grant row (e.g. after a revocation); false if there was
    /// nothing to erase. The account's password, if any, stays.
    async fn clear(&self, account_id: &AccountId) -> Result<bool, StoreError>;

    /// Accounts whose access token expires before `before`, soonest first, leaving out accounts
    /// in `needs_reauth` or `disabled` (refreshing those is pointless or unwanted).
    async fn expiring_before(&self, before: DateTime<Utc>) -> Result<Vec<AccountId>, StoreError>;
}
