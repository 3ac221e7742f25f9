//! Logged-in connections waiting for their account's next use: SMTP sessions for sending, IMAP
//! sessions for the Sent copy.
//!
//! Purpose: one small keyed pool, so that a burst of messages for one account pays for TLS and
//! authentication once per connection instead of once per message.
//! Non-goal: opening connections or judging their health; the caller opens them, and puts back
//! only a connection it still trusts.
//! Key decision: the most recently used connection is handed out first (it is the least likely
//! to have been closed by the server), and a connection idle longer than `idle_timeout` is
//! dropped rather than tried.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use postern_store::AccountId;

/// Idle connections per account, at most `max_idle` each.
pub(crate) struct IdlePool<S> {
    idle: Mutex<HashMap<AccountId, Vec<(S, Instant)>>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl<S> IdlePool<S> {
    pub(crate) fn new(max_idle: usize, idle_timeout: Duration) -> Self {
        IdlePool {
            idle: Mutex::default(),
            max_idle,
            idle_timeout,
        }
    }

    /// The most recently used idle connection of the account that has not idled too long.
    pub(crate) fn checkout(&self, account_id: &AccountId) -> Option<S> {
        let mut idle = self.lock();
        let sessions = idle.get_mut(account_id)?;
        sessions.retain(|(_, since)| since.elapsed() < self.idle_timeout);
        let session = sessions.pop().map(|(session, _)| session);
        if sessions.is_empty() {
            idle.remove(account_id);
        }
        session
    }

    /// Keeps a connection for the account's next use, up to `max_idle` of them; beyond that it
    /// is dropped (closed).
    pub(crate) fn checkin(&self, account_id: &AccountId, session: S) {
        let mut idle = self.lock();
        let sessions = idle.entry(account_id.clone()).or_default();
        if sessions.len() < self.max_idle {
            sessions.push((session, Instant::now()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, Vec<(S, Instant)>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_the_newest_keeps_at_most_max_idle_and_per_account() {
        let pool = IdlePool::new(2, Duration::from_secs(60));
        let (a, b) = (AccountId::generate(), AccountId::generate());
        for n in 1..=3 {
            pool.checkin(&a, n);
        }
        pool.checkin(&b, 10);
        assert_eq!(pool.checkout(&a), Some(2));
        assert_eq!(pool.checkout(&a), Some(1));
        assert_eq!(pool.checkout(&a), None, "the third was beyond max_idle");
        assert_eq!(pool.checkout(&b), Some(10));
    }

    #[test]
    fn a_connection_idle_too_long_is_not_handed_out() {
        let pool = IdlePool::new(2, Duration::ZERO);
        let account = AccountId::generate();
        pool.checkin(&account, 1);
        assert_eq!(pool.checkout(&account), None);
    }
}
