//! The audit log: who did what to which account's authorization, when, and how it went.
//!
//! Purpose: an append-only record of every auth event (authorization started, completed or
//! denied, refresh ok or failed, re-authorization, revocation, API tokens, accounts and apps
//! created or removed, account settings changed), readable newest first with a cursor and
//! filters, for `GET /v1/audit`.
//!
//! Non-goals: it is not the event log ([`crate::Events`]), which announces state changes to
//! webhooks; the audit log answers "who did that, and did it work" for people. Nor does it hold
//! secrets: `detail` is a plain sentence (a provider's error code, a token's name), never a
//! token, password, code or client secret; writers are responsible for that, and the tests of
//! every writer search the log for their secrets.
//!
//! Key decisions:
//! - Entries name accounts and apps by id without a foreign key, so the record of an account's
//!   removal outlives the account.
//! - Recording is best effort for the operation it records: [`Audit::record_or_warn`] logs a
//!   warning when the insert fails and never fails the refresh or the authorization it
//!   describes. An audit gap is bad; a mailbox that stops working because the audit table was
//!   locked is worse.
//! - The id is the cursor (assigned by the database, only growing), as in the event log; pages go
//!   backwards in time with `before`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ids::text_enum;
use crate::{AccountId, AppId, StoreError};

/// The actor of entries the server records on its own (background refresh, forecasts).
pub const ACTOR_SYSTEM: &str = "system";
/// The actor of entries caused by a browser returning from the provider (the OAuth callback).
pub const ACTOR_BROWSER: &str = "browser";
/// The actor of entries made by the command line on the server's machine.
pub const ACTOR_CLI: &str = "cli";

text_enum! {
    /// What happened.
    AuditAction {
        /// A provider link (or device code) was issued for an account.
        AuthorizeStarted => "authorize.started",
        /// An authorization finished: tokens obtained (`ok`) or the code exchange was refused
        /// (`failed`).
        AuthorizeCompleted => "authorize.completed",
        /// The user or the provider declined at the consent screen.
        AuthorizeDenied => "authorize.denied",
        /// An access token was refreshed.
        RefreshOk => "refresh.ok",
        /// A refresh was refused or could not reach the provider.
        RefreshFailed => "refresh.failed",
        /// Someone asked for a fresh authorization link for an existing account.
        Reauthorize => "reauthorize",
        /// A grant was revoked at the provider (account removal).
        Revoke => "revoke",
        /// An API token was created.
        TokenCreated => "token.created",
        /// An API token was revoked.
        TokenRevoked => "token.revoked",
        /// An account was created.
        AccountCreated => "account.created",
        /// An account was removed.
        AccountRemoved => "account.removed",
        /// An account's settings were changed (which mailboxes sync, sending limits, Sent copy).
        AccountSettingsChanged => "account.settings_changed",
        /// An OAuth app was registered.
        AppCreated => "app.created",
        /// An OAuth app was removed.
        AppRemoved => "app.removed",
    }
}

text_enum! {
    /// How it went.
    AuditOutcome {
        /// It worked.
        Ok => "ok",
        /// It did not; `detail` says why.
        Failed => "failed",
    }
}

/// The id of an audit entry; also the cursor. Ids only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditId(pub i64);

/// What [`Audit::record`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// The account concerned, if any.
    pub account_id: Option<AccountId>,
    /// The OAuth app concerned, if any.
    pub app_id: Option<AppId>,
    /// Who: an API token's name, [`ACTOR_CLI`], [`ACTOR_SYSTEM`] or [`ACTOR_BROWSER`].
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// How it went.
    pub outcome: AuditOutcome,
    /// A sentence for people; never a secret.
    pub detail: String,
}

impl NewAuditEntry {
    /// An entry with no account, no app and no detail; fill in the rest with the `with_*` methods.
    pub fn new(actor: impl Into<String>, action: AuditAction, outcome: AuditOutcome) -> Self {
        NewAuditEntry {
            account_id: None,
            app_id: None,
            actor: actor.into(),
            action,
            outcome,
            detail: String::new(),
        }
    }

    /// The account concerned.
    #[must_use]
    pub fn with_account(mut self, account_id: &AccountId) -> Self {
        self.account_id = Some(account_id.clone());
        self
    }

    /// The app concerned.
    #[must_use]
    pub fn with_app(mut self, app_id: &AppId) -> Self {
        self.app_id = Some(app_id.clone());
        self
    }

    /// The detail sentence (never a secret).
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// A recorded entry. `at` has millisecond precision; order by `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its position in the log.
    pub id: AuditId,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The account concerned, if any (it may since have been removed).
    pub account_id: Option<AccountId>,
    /// The app concerned, if any.
    pub app_id: Option<AppId>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// How it went.
    pub outcome: AuditOutcome,
    /// A sentence for people.
    pub detail: String,
}

/// Which entries [`Audit::list`] returns: newest first, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditQuery {
    /// Only this account's entries.
    pub account_id: Option<AccountId>,
    /// Only entries of these accounts (an API token bound to accounts); entries about no account
    /// are left out too. `None` means no such restriction.
    pub visible_accounts: Option<Vec<AccountId>>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only entries older than this id (the previous page's last id).
    pub before: Option<AuditId>,
    /// The page size; 0 returns nothing.
    pub limit: u32,
}

/// The audit-log repository.
#[async_trait]
pub trait Audit: Send + Sync {
    /// Appends one entry and returns it with its id and time.
    async fn record(&self, entry: NewAuditEntry) -> Result<AuditEntry, StoreError>;

    /// The entries `query` selects, newest first.
    async fn list(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;

    /// Deletes the entries of `action` with `outcome` recorded before `before`; how many. For
    /// routine entries (a successful refresh, every hour for every account) that would otherwise
    /// grow without end; the server decides which and how old (`postern serve`'s housekeeping).
    async fn prune(
        &self,
        action: AuditAction,
        outcome: AuditOutcome,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

impl dyn Audit + '_ {
    /// Records `entry`, logging a warning instead of failing when the store refuses: the operation
    /// being recorded has already happened and must not fail because of its record.
    pub async fn record_or_warn(&self, entry: NewAuditEntry) {
        let action = entry.action;
        if let Err(error) = self.record(entry).await {
            tracing::warn!(%action, %error, "could not write the audit log entry");
        }
    }
}
