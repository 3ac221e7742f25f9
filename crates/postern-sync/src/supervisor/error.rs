//! The errors of the sync service's own operations (start, open an extra session).
//!
//! Purpose: [`ServiceError`], what the API and the CLI get when they ask the service for something.
//! Non-goal: the supervisors' failures; those become account state (`error`, `last_error`) and
//! events, not errors returned to a caller.
//! Key decision: "the account cannot sync now" is an error naming the state
//! ([`ServiceError::NotSyncable`]), so the API can say why instead of silently starting nothing.

use postern_store::{AccountId, AccountState, StoreError};

use crate::account::SessionError;

/// Why the sync service could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Occurs when the account does not exist.
    #[error("account {0} does not exist")]
    AccountNotFound(AccountId),

    /// Occurs when the account is in a state in which it does not sync: `needs_reauth`,
    /// `pending_authorization` (a person must authorize it) or `disabled`.
    #[error("account {account_id} does not sync while it is {state}")]
    NotSyncable {
        /// The account.
        account_id: AccountId,
        /// Its state.
        state: AccountState,
    },

    /// Occurs when an on-demand session waited `connection_wait` and the account's connections
    /// (`max_connections`) stayed in use.
    #[error("account {account_id} already uses all of its {limit} IMAP connections")]
    TooManyConnections {
        /// The account.
        account_id: AccountId,
        /// Its connection cap.
        limit: usize,
    },

    /// Occurs when an on-demand session cannot be opened (server, login, token).
    #[error(transparent)]
    Session(#[from] Box<SessionError>),

    /// Occurs when the store fails.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    /// Whether asking again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ServiceError::TooManyConnections { .. } => true,
            ServiceError::Session(error) => error.is_transient(),
            ServiceError::Store(error) => error.is_transient(),
            ServiceError::AccountNotFound(_) | ServiceError::NotSyncable { .. } => false,
        }
    }
}

impl From<SessionError> for ServiceError {
    fn from(error: SessionError) -> Self {
        ServiceError::Session(Box::new(error))
    }
}
