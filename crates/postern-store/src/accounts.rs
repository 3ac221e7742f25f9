//! Mailbox accounts: where their IMAP and SMTP servers are, how they authenticate, and their state.
//!
//! Purpose: create, read, list and delete accounts, keep their settings
//! ([`crate::AccountSettings`]), and move an account between states while appending the event that
//! announces the move in the same transaction.
//! Non-goal: deciding when to move (the sync supervisor and the token manager do) or which moves
//! are allowed; the store records any transition it is given.
//! Key decision: [`Accounts::transition`] appends its event only when the state really changes,
//! so a caller that repeats "needs re-authorization" on every failed attempt announces it once,
//! never in a loop. Secrets (password, tokens) live in the `secrets` table at the references the
//! [`AccountId`] methods give, so the caller chooses the id before sealing the password.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use postern_vault::Sealed;

use crate::ids::{text_enum, uuid_id};
use crate::{AccountSettings, AppId, NewEvent, SecretRef, StoreError};

/// The `owner_kind` of an account's secrets.
pub(crate) const ACCOUNT_OWNER: &str = "account";
/// Secret names of an account.
pub(crate) const PASSWORD: &str = "password";
pub(crate) const ACCESS_TOKEN: &str = "access_token";
pub(crate) const REFRESH_TOKEN: &str = "refresh_token";
/// Stored names of the [`AccountAuth`] variants.
pub(crate) const AUTH_OAUTH2: &str = "oauth2";
pub(crate) const AUTH_OAUTH2_APP: &str = "oauth2_app";
pub(crate) const AUTH_PASSWORD: &str = "password";

uuid_id! {
    /// The id of an account: a UUID v7 in its canonical hyphenated, lower-case form.
    AccountId
}

impl AccountId {
    /// Where the account's IMAP/SMTP password is stored.
    pub fn password_ref(&self) -> SecretRef {
        self.secret_ref(PASSWORD)
    }

    /// Where the account's current OAuth2 access token is stored.
    pub fn access_token_ref(&self) -> SecretRef {
        self.secret_ref(ACCESS_TOKEN)
    }

    /// Where the account's OAuth2 refresh token is stored.
    pub fn refresh_token_ref(&self) -> SecretRef {
        self.secret_ref(REFRESH_TOKEN)
    }

    fn secret_ref(&self, name: &str) -> SecretRef {
        SecretRef::new(ACCOUNT_OWNER, self.as_str(), name)
    }
}

text_enum! {
    /// How a connection to a mail server is secured.
    Security {
        /// TLS from the first byte (IMAPS 993, SMTPS 465).
        Tls => "tls",
        /// Plain connection upgraded with STARTTLS (SMTP 587).
        StartTls => "starttls",
        /// No encryption; only for local test servers.
        None => "none",
    }
}

text_enum! {
    /// The SASL mechanism that carries an OAuth2 access token.
    SaslMechanism {
        /// `XOAUTH2` (Google, Microsoft).
        XOAuth2 => "xoauth2",
        /// `OAUTHBEARER`, RFC 7628 (Google, Yahoo, Dovecot, Stalwart).
        OAuthBearer => "oauthbearer",
    }
}

text_enum! {
    /// Where an account stands. Stored and serialized as snake_case, e.g. `"needs_reauth"`.
    AccountState {
        /// Created; waiting for the user to complete the OAuth2 authorization.
        PendingAuthorization => "pending_authorization",
        /// Opening its first connections.
        Connecting => "connecting",
        /// Connected and catching up with the mailbox.
        Syncing => "syncing",
        /// Connected and up to date.
        Connected => "connected",
        /// The grant is dead (`invalid_grant`, revoked): a person must authorize again.
        NeedsReauth => "needs_reauth",
        /// Failing for another reason; see `last_error`.
        Error => "error",
        /// Switched off by an operator.
        Disabled => "disabled",
    }
}

/// One mail server of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// How the connection is secured.
    pub security: Security,
    /// A PEM file of extra CA certificates to trust (self-hosted servers), if any.
    pub ca_file: Option<String>,
}

/// How an account logs in to IMAP and SMTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountAuth {
    /// OAuth2 with a user's delegated grant (authorization code or device flow).
    OAuth2 {
        /// The app the grant belongs to.
        app_id: AppId,
        /// How the access token is sent.
        mechanism: SaslMechanism,
    },
    /// OAuth2 with the app's own token (client credentials, e.g. Microsoft 365 app-only access).
    OAuth2App {
        /// The app whose credentials obtain the token.
        app_id: AppId,
        /// How the access token is sent.
        mechanism: SaslMechanism,
    },
    /// A password (or app password), stored as a secret at [`AccountId::password_ref`].
    Password {
        /// The login name when it differs from the email address.
        username: Option<String>,
    },
}

impl AccountAuth {
    /// The OAuth app this account depends on, if any.
    pub fn app_id(&self) -> Option<&AppId> {
        match self {
            AccountAuth::OAuth2 { app_id, .. } | AccountAuth::OAuth2App { app_id, .. } => {
                Some(app_id)
            }
            AccountAuth::Password { .. } => None,
        }
    }

    /// The stored name of the variant: `"oauth2"`, `"oauth2_app"` or `"password"`.
    pub fn kind(&self) -> &'static str {
        match self {
            AccountAuth::OAuth2 { .. } => AUTH_OAUTH2,
            AccountAuth::OAuth2App { .. } => AUTH_OAUTH2_APP,
            AccountAuth::Password { .. } => AUTH_PASSWORD,
        }
    }
}

/// What `create` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The account's id, chosen by the caller so the password can be sealed for it beforehand.
    pub id: AccountId,
    /// The mailbox address.
    pub email: String,
    /// A display name.
    pub name: Option<String>,
    /// The IMAP server.
    pub imap: Endpoint,
    /// The SMTP server.
    pub smtp: Endpoint,
    /// How it logs in.
    pub auth: AccountAuth,
    /// The first state: usually `PendingAuthorization` for OAuth2, `Connecting` otherwise.
    pub state: AccountState,
}

/// A stored account. Timestamps have millisecond precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account's id.
    pub id: AccountId,
    /// The mailbox address.
    pub email: String,
    /// A display name.
    pub name: Option<String>,
    /// The IMAP server.
    pub imap: Endpoint,
    /// The SMTP server.
    pub smtp: Endpoint,
    /// How it logs in.
    pub auth: AccountAuth,
    /// Where it stands.
    pub state: AccountState,
    /// The latest error, for people; `None` once things work again.
    pub last_error: Option<String>,
    /// The operator's overrides for this account (`{}` when there are none).
    pub settings: AccountSettings,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// A requested state change.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The state to move to.
    pub to: AccountState,
    /// The account's `last_error` afterwards (`None` clears it).
    pub last_error: Option<String>,
    /// Appended in the same transaction, but only if the state actually changes.
    pub event: Option<NewEvent>,
}

impl Transition {
    /// A transition announced by an event of `kind`, whose payload also names the account and its
    /// new state (so every account event carries both, whoever raised it).
    pub fn announced(
        account_id: &AccountId,
        to: AccountState,
        last_error: Option<String>,
        kind: &str,
        mut payload: serde_json::Value,
    ) -> Transition {
        if let Some(object) = payload.as_object_mut() {
            object.insert("account_id".into(), account_id.to_string().into());
            object.insert("state".into(), to.as_str().into());
        }
        Transition {
            to,
            last_error,
            event: Some(NewEvent {
                account_id: Some(account_id.to_string()),
                kind: kind.to_owned(),
                payload,
            }),
        }
    }
}

/// What a transition did.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionOutcome {
    /// True if the state changed (and so the event, if any, was appended).
    pub changed: bool,
    /// The account as it is now.
    pub account: Account,
}

/// The account repository.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Stores the account with default settings (`{}`), and its password when given, in one
    /// transaction; see [`Accounts::create_with_settings`].
    async fn create(
        &self,
        new: NewAccount,
        password: Option<&Sealed>,
    ) -> Result<Account, StoreError> {
        self.create_with_settings(new, &AccountSettings::default(), password)
            .await
    }

    /// Stores the account with its settings, and its password when given, in one transaction.
    /// Fails with [`StoreError::NotFound`] if its OAuth app does not exist and with
    /// [`StoreError::UnknownKey`] if the password is sealed with a key the store does not hold.
    async fn create_with_settings(
        &self,
        new: NewAccount,
        settings: &AccountSettings,
        password: Option<&Sealed>,
    ) -> Result<Account, StoreError>;

    /// Replaces the account's settings (and bumps `updated_at`); the account as it is now.
    /// Fails with [`StoreError::NotFound`] for an unknown account. No event: settings are
    /// configuration, not a change of the mailbox's state.
    async fn update_settings(
        &self,
        id: &AccountId,
        settings: &AccountSettings,
    ) -> Result<Account, StoreError>;

    /// The account with this id, if any.
    async fn get(&self, id: &AccountId) -> Result<Option<Account>, StoreError>;

    /// Every account, oldest first.
    async fn list(&self) -> Result<Vec<Account>, StoreError>;

    /// The accounts that use the app, oldest first.
    async fn list_by_app(&self, app_id: &AppId) -> Result<Vec<Account>, StoreError>;

    /// Deletes the account with its secrets, grant and pending authorizations, in one
    /// transaction; false if it did not exist. Its events stay: they are history.
    async fn delete(&self, id: &AccountId) -> Result<bool, StoreError>;

    /// In one transaction: sets the state and `last_error`, and appends `transition.event` only
    /// if the state changed. With the same state, only a different `last_error` is written (no
    /// event). Fails with [`StoreError::NotFound`] for an unknown account.
    async fn transition(
        &self,
        id: &AccountId,
        transition: Transition,
    ) -> Result<TransitionOutcome, StoreError>;
}
