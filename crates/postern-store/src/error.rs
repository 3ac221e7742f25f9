//! The one error type of the store.
//!
//! Purpose: let callers tell "retry later" (busy, locked, I/O) from "operator must act" (newer schema,
//! corrupt row) from "caller bug" (unknown key) without knowing which database runs underneath.
//! Non-goal: mapping to HTTP statuses; `postern-api` does that.
//! Key decision: backend error codes are classified by the backend module (`crate::sqlite`), so this
//! file stays free of SQLite specifics and PostgreSQL can add its own codes later.

use postern_vault::VaultError;

/// Everything that can go wrong in `postern-store`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Occurs when the database at `url` cannot be opened or created (bad path, permissions,
    /// not a database file, parent folder cannot be created).
    #[error("cannot open the database at {url}")]
    Open {
        /// The location that was being opened; never contains credentials.
        url: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// Occurs when the URL given to [`crate::Store::open`] is not one the store understands.
    #[error("invalid database URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it (the URL itself is not repeated: it may hold a password).
        reason: String,
    },

    /// Occurs when the URL names a backend this build cannot use yet.
    #[error("database backend `{scheme}` is not supported{hint}")]
    UnsupportedBackend {
        /// The URL scheme, e.g. `postgres`.
        scheme: String,
        /// A sentence telling the operator what to do instead (may be empty).
        hint: String,
    },

    /// Occurs when applying the embedded migrations fails.
    #[error("applying database migrations failed")]
    Migrate(#[source] Box<sqlx::migrate::MigrateError>),

    /// Occurs when the database was migrated by a newer Postern: it has schema version `found`
    /// while this binary knows versions up to `known`. Opening it could corrupt data, so the
    /// store refuses; upgrade Postern or restore a backup.
    #[error(
        "the database schema (version {found}) is newer than this Postern knows (up to {known}); \
         upgrade Postern or restore a backup taken before the upgrade"
    )]
    NewerSchema {
        /// The highest applied migration version this binary does not know.
        found: i64,
        /// The highest migration version embedded in this binary.
        known: i64,
    },

    /// Occurs when the database reports an error (constraint, busy, I/O, pool closed…).
    #[error("database error")]
    Database(#[source] sqlx::Error),

    /// Occurs when a stored value cannot be decoded (a sealed blob `Sealed::from_bytes` rejects,
    /// JSON that does not parse, an id that is not a UUID). `what` names the row, never its content.
    #[error("corrupt data in the store: {what}")]
    Corrupt {
        /// Which row and column is corrupt.
        what: String,
    },

    /// Occurs when the `reseal` callback of a key rotation fails; nothing was changed.
    #[error("re-encrypting a secret during key rotation failed")]
    Reseal(#[source] VaultError),

    /// Occurs when a rotation's `reseal` callback returns a secret sealed under another key than
    /// the new one; committing would leave secrets pointing at deleted keys, so nothing was changed.
    #[error("reseal returned a secret sealed with key {found}, expected the new key {expected}")]
    ResealKeyMismatch {
        /// The id of the key being rotated to.
        expected: u32,
        /// The key id the returned secret carries.
        found: u32,
    },

    /// Occurs when an operation names a vault key the store does not hold (a secret sealed with an
    /// unknown key, a rewrap of a key that was deleted).
    #[error("vault key {id} is not in the store")]
    UnknownKey {
        /// The missing key id.
        id: u32,
    },

    /// Occurs when a vault key id is already taken, or when `insert_active` is called although
    /// keys exist (use `rotate` then).
    #[error("vault key {id} conflicts with the keys in the store: {reason}")]
    KeyConflict {
        /// The key id that was refused.
        id: u32,
        /// Why it was refused.
        reason: &'static str,
    },

    /// Occurs when an operation names a row that does not exist: transitioning or storing tokens
    /// for an unknown account, creating an account for an unknown OAuth app.
    #[error("{what} does not exist")]
    NotFound {
        /// What was looked for, e.g. `account 0190…`.
        what: String,
    },

    /// Occurs when deleting something other rows still depend on, e.g. an OAuth app that
    /// accounts use; delete or move those first. Nothing was changed.
    #[error("{what} is still used by {count} account(s)")]
    InUse {
        /// What was to be deleted, e.g. `oauth app 0190…`.
        what: String,
        /// How many rows still reference it.
        count: u64,
    },
}

impl StoreError {
    /// True when retrying the same operation later may succeed: the database was busy or locked,
    /// an I/O error occurred, or no pooled connection was free in time.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(err) => is_transient_sqlx(err),
            StoreError::Migrate(err) => match err.as_ref() {
                sqlx::migrate::MigrateError::Execute(inner) => is_transient_sqlx(inner),
                _ => false,
            },
            _ => false,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        StoreError::Corrupt { what: what.into() }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into() }
    }
}

fn is_transient_sqlx(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => crate::sqlite::is_transient_code(db.as_ref()),
        _ => false,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Database(err)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(Box::new(err))
    }
}

/// The error of parsing one of the store's text enums (e.g. [`crate::AccountState`]) from a name
/// it does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownVariant {
    kind: &'static str,
    value: String,
}

impl UnknownVariant {
    pub(crate) fn new(kind: &'static str, value: &str) -> Self {
        UnknownVariant {
            kind,
            value: value.to_owned(),
        }
    }

    /// The enum that was being parsed, e.g. `"AccountState"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The text that was refused.
    pub fn value(&self) -> &str {
        &self.value
    }
}
