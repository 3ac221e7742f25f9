//! The account's state as a supervisor moves it: `connecting` → `syncing` → `connected`, `error`
//! with `last_error`, and the events that announce the moves that matter.
//!
//! Purpose: [`transition_for`] (pure) decides the store transition of each [`Step`];
//! [`AccountStates`] applies it through `Accounts::transition`, which writes the state and its
//! event in one transaction and appends the event only when the state really changes.
//! Non-goal: deciding when a step happens (the supervisor's loop does).
//!
//! Key decisions:
//! - Events: `account.connected` once per supervisor run (its first session up to date),
//!   `account.error` when the account enters `error`, `account.recovered` when it leaves it for
//!   `connected`. A quiet reconnection after a dropped connection announces nothing.
//! - Once in `error`, the account stays there until connected again: retries and the sync of a
//!   recovery do not pass through `connecting`/`syncing`, or each new failure would announce
//!   `account.error` again.
//! - The stored state is read before each move: `needs_reauth`, `pending_authorization` and
//!   `disabled` belong to others (the token manager, an operator) and are never overwritten.

use postern_store::{AccountId, AccountState, Store, Transition};
use serde_json::json;

use crate::supervisor::failure::Failure;

/// A move the supervisor makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The supervisor starts connecting.
    Connecting,
    /// Logged in; the first pass runs.
    Syncing,
    /// The pass is done; IDLE follows.
    Connected {
        /// Mailboxes synced.
        mailboxes: usize,
    },
    /// A transient failure; a retry follows after the back-off.
    Retrying(String),
    /// The account is marked `error` (a failure retrying soon cannot fix, or too many transient
    /// ones in a row).
    Failed(String),
}

/// What the supervisor remembers across steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Memory {
    /// The account is in `error` because of this supervisor (or was when it started).
    pub in_error: bool,
    /// `account.connected` was announced by this supervisor run.
    pub announced: bool,
}

/// The transition for `step`, or `None` when the stored state must not move.
pub(crate) fn transition_for(
    account_id: &AccountId,
    step: &Step,
    memory: Memory,
) -> Option<Transition> {
    let quiet = |to: AccountState, last_error: Option<String>| Transition {
        to,
        last_error,
        event: None,
    };
    match step {
        Step::Connecting | Step::Syncing if memory.in_error => None,
        Step::Connecting => Some(quiet(AccountState::Connecting, None)),
        Step::Syncing => Some(quiet(AccountState::Syncing, None)),
        Step::Connected { mailboxes } => {
            let payload = json!({ "mailboxes": mailboxes });
            let announced = |kind: &str| {
                Transition::announced(
                    account_id,
                    AccountState::Connected,
                    None,
                    kind,
                    payload.clone(),
                )
            };
            Some(if memory.in_error {
                announced("account.recovered")
            } else if !memory.announced {
                announced("account.connected")
            } else {
                quiet(AccountState::Connected, None)
            })
        }
        Step::Retrying(words) if memory.in_error => {
            Some(quiet(AccountState::Error, Some(words.clone())))
        }
        Step::Retrying(words) => Some(quiet(AccountState::Connecting, Some(words.clone()))),
        Step::Failed(words) => Some(Transition::announced(
            account_id,
            AccountState::Error,
            Some(words.clone()),
            "account.error",
            json!({ "reason": words }),
        )),
    }
}

/// The memory after `step` was applied.
fn remember(memory: Memory, step: &Step) -> Memory {
    match step {
        Step::Connected { .. } => Memory {
            in_error: false,
            announced: true,
        },
        Step::Failed(_) => Memory {
            in_error: true,
            ..memory
        },
        _ => memory,
    }
}

/// Whether a stored state belongs to someone other than the supervisor.
pub(crate) fn owned_by_others(state: AccountState) -> bool {
    matches!(
        state,
        AccountState::NeedsReauth | AccountState::PendingAuthorization | AccountState::Disabled
    )
}

/// Moves one account's state in the store.
pub(crate) struct AccountStates {
    store: Store,
    account_id: AccountId,
    memory: Memory,
}

impl AccountStates {
    /// For an account whose stored state is `current`.
    pub(crate) fn new(store: Store, account_id: AccountId, current: AccountState) -> Self {
        AccountStates {
            store,
            account_id,
            memory: Memory {
                in_error: current == AccountState::Error,
                announced: false,
            },
        }
    }

    /// Applies `step`.
    ///
    /// # Errors
    ///
    /// [`Failure::Unsyncable`] when the stored state belongs to someone else,
    /// [`Failure::Store`] when the store fails (`NotFound` once the account is deleted).
    pub(crate) async fn apply(&mut self, step: Step) -> Result<(), Failure> {
        let accounts = self.store.accounts();
        let stored = accounts
            .get(&self.account_id)
            .await
            .map_err(Failure::Store)?;
        let Some(stored) = stored else {
            return Err(Failure::Store(postern_store::StoreError::NotFound {
                what: format!("account {}", self.account_id),
            }));
        };
        if owned_by_others(stored.state) {
            return Err(Failure::Unsyncable(stored.state));
        }
        if let Some(transition) = transition_for(&self.account_id, &step, self.memory) {
            let outcome = accounts
                .transition(&self.account_id, transition)
                .await
                .map_err(Failure::Store)?;
            if outcome.changed {
                tracing::info!(account = %self.account_id, state = %outcome.account.state, "account state changed");
            }
        }
        self.memory = remember(self.memory, &step);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(step: Step, memory: Memory) -> Option<(AccountState, Option<String>)> {
        let id = AccountId::generate();
        transition_for(&id, &step, memory).map(|t| (t.to, t.event.map(|event| event.kind)))
    }

    const FRESH: Memory = Memory {
        in_error: false,
        announced: false,
    };
    const ANNOUNCED: Memory = Memory {
        in_error: false,
        announced: true,
    };
    const IN_ERROR: Memory = Memory {
        in_error: true,
        announced: true,
    };

    #[test]
    fn a_first_session_goes_connecting_syncing_connected_announced_once() {
        assert_eq!(
            target(Step::Connecting, FRESH),
            Some((AccountState::Connecting, None))
        );
        assert_eq!(
            target(Step::Syncing, FRESH),
            Some((AccountState::Syncing, None))
        );
        let connected = Step::Connected { mailboxes: 3 };
        assert_eq!(
            target(connected.clone(), FRESH),
            Some((AccountState::Connected, Some("account.connected".into())))
        );
        assert_eq!(remember(FRESH, &connected), ANNOUNCED);
        assert_eq!(
            target(connected, ANNOUNCED),
            Some((AccountState::Connected, None))
        );
    }

    #[test]
    fn a_quiet_reconnect_says_why_in_last_error() {
        let id = AccountId::generate();
        let step = Step::Retrying("connection lost; retrying in 1 s".into());
        let transition = transition_for(&id, &step, ANNOUNCED).unwrap();
        assert_eq!(transition.to, AccountState::Connecting);
        assert_eq!(
            transition.last_error.as_deref(),
            Some("connection lost; retrying in 1 s")
        );
        assert!(transition.event.is_none());
    }

    #[test]
    fn in_error_the_account_stays_there_until_it_recovers() {
        let failed = Step::Failed("wrong password".into());
        let first = transition_for(&AccountId::generate(), &failed, FRESH).unwrap();
        assert_eq!(first.to, AccountState::Error);
        let event = first.event.unwrap();
        assert_eq!(event.kind, "account.error");
        assert_eq!(event.payload["reason"], "wrong password");
        assert_eq!(event.payload["state"], "error");
        assert_eq!(
            remember(FRESH, &failed),
            Memory {
                in_error: true,
                announced: false
            }
        );

        assert_eq!(target(Step::Connecting, IN_ERROR), None);
        assert_eq!(target(Step::Syncing, IN_ERROR), None);
        assert_eq!(
            target(Step::Retrying("still down".into()), IN_ERROR),
            Some((AccountState::Error, None))
        );
        assert_eq!(
            target(Step::Connected { mailboxes: 1 }, IN_ERROR),
            Some((AccountState::Connected, Some("account.recovered".into())))
        );
    }

    #[test]
    fn states_of_others_are_left_alone() {
        assert!(owned_by_others(AccountState::NeedsReauth));
        assert!(owned_by_others(AccountState::Disabled));
        assert!(owned_by_others(AccountState::PendingAuthorization));
        assert!(!owned_by_others(AccountState::Error));
        assert!(!owned_by_others(AccountState::Connected));
    }
}
