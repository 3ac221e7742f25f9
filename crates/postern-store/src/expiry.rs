//! What the expiry forecaster needs: how old each grant is, which apps are in Google's "Testing"
//! mode, and which expiries have already been announced.
//!
//! Purpose: the facts behind `account.expiring` and `app.secret_expiring` (when a grant was
//! consented to, when its tokens were last obtained, the app's provider and publishing status),
//! the grants the daily keep-alive must refresh, and an announce-once record.
//!
//! Non-goal: deciding what expires when. The forecaster in `postern-auth` knows the providers'
//! rules (7 days in Testing, 90 days unused); the store only answers its questions.
//!
//! Key decisions:
//! - The publishing status is a column of `oauth_apps` (migration 0007, default `production`) read
//!   and written through this repository rather than a new field of [`crate::OAuthApp`]: adding a
//!   field there would change every caller that builds an app, for a setting only the forecaster
//!   reads. It is a column and not an `extra_params` entry because extra parameters are sent to the
//!   provider's authorization endpoint, and Google refuses parameters it does not know.
//! - [`Expiry::announce_once`] inserts the notice and appends its event in one transaction, and
//!   does neither when the notice exists: an expiry is announced exactly once however often the
//!   forecast runs, and a crash cannot record a notice whose event was lost.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ids::text_enum;
use crate::{AccountId, AccountState, AppId, NewEvent, StoreError};

text_enum! {
    /// Google's publishing status of an OAuth consent screen.
    PublishingStatus {
        /// "Testing": only listed test users may consent, and their refresh tokens die 7 days
        /// after consent.
        Testing => "testing",
        /// "In production" (the default, and the only status other providers have).
        Production => "production",
    }
}

/// The age of one user grant (an `oauth2` account's), with what decides how long it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantLifetime {
    /// The account.
    pub account_id: AccountId,
    /// Its app.
    pub app_id: AppId,
    /// The app's provider preset (`google`, `microsoft`, ...).
    pub provider: String,
    /// The app's publishing status.
    pub publishing_status: PublishingStatus,
    /// The account's state.
    pub state: AccountState,
    /// When a person last completed the authorization.
    pub consented_at: Option<DateTime<Utc>>,
    /// When the current tokens were obtained (by consent or by a refresh): the last time the
    /// refresh token was used successfully.
    pub obtained_at: DateTime<Utc>,
}

/// What an expiry notice is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeSubject {
    /// An account's grant.
    Account(AccountId),
    /// An app's client secret.
    App(AppId),
}

impl NoticeSubject {
    /// `account` or `app`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            NoticeSubject::Account(_) => "account",
            NoticeSubject::App(_) => "app",
        }
    }

    /// The subject's id as text.
    pub fn id(&self) -> &str {
        match self {
            NoticeSubject::Account(id) => id.as_str(),
            NoticeSubject::App(id) => id.as_str(),
        }
    }
}

/// One expiry to announce: a subject, why it expires, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryNotice {
    /// What expires.
    pub subject: NoticeSubject,
    /// Why, as a stable name (`google_testing_7_days`, `microsoft_unused_90_days`,
    /// `client_secret`).
    pub reason: String,
    /// When it is expected to expire (millisecond precision is kept).
    pub expires_at: DateTime<Utc>,
}

/// The expiry repository.
#[async_trait]
pub trait Expiry: Send + Sync {
    /// Sets an app's publishing status; false if there is no such app.
    async fn set_publishing_status(
        &self,
        app_id: &AppId,
        status: PublishingStatus,
    ) -> Result<bool, StoreError>;

    /// An app's publishing status, or `None` if there is no such app.
    async fn publishing_status(
        &self,
        app_id: &AppId,
    ) -> Result<Option<PublishingStatus>, StoreError>;

    /// Every user grant (accounts authenticating with `oauth2`, not app-only ones) with what
    /// decides its lifetime, leaving out accounts in `needs_reauth` (their grant is already dead).
    async fn user_grants(&self) -> Result<Vec<GrantLifetime>, StoreError>;

    /// User grants whose tokens were last obtained before `obtained_before`, oldest first, leaving
    /// out accounts in `needs_reauth` or `disabled`: the grants a keep-alive refresh should renew.
    async fn idle_grants(
        &self,
        obtained_before: DateTime<Utc>,
    ) -> Result<Vec<AccountId>, StoreError>;

    /// Records `notice` and appends `event` in one transaction, unless this notice (same subject,
    /// reason and expiry) was recorded before; true when it was announced now.
    async fn announce_once(
        &self,
        notice: &ExpiryNotice,
        event: NewEvent,
    ) -> Result<bool, StoreError>;
}
