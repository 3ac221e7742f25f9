//! The per-account supervisors and the service that owns them: what keeps every account's local
//! picture in step with its server, for as long as Postern runs.
//!
//! A supervisor (one tokio task per account) opens a session, moves the account `connecting` →
//! `syncing` (the first pass, with progress) → `connected`, then keeps it in step on that one
//! connection: IDLE on INBOX, a sync of INBOX on every IDLE wake-up, IDLE re-issued every
//! `idle_restart` (25 min by default, 2.5 min for Yahoo/AOL), a pass over every mailbox every
//! `resync_interval` (5 min) as a safety net. Transient failures reconnect after an exponential,
//! jittered back-off; failures that retrying cannot fix mark the account `error` (once, with an
//! `account.error` event and `last_error` in words); a dead grant (`needs_reauth`, set by the
//! token manager) parks the supervisor until it is restarted.
//!
//! ```no_run
//! # async fn demo(store: postern_store::Store, credentials: postern_sync::account::AccountCredentials) {
//! use postern_sync::supervisor::{SyncConfig, SyncService};
//! let service = SyncService::new(store, credentials, SyncConfig::default());
//! service.start_all().await.ok();
//! // ... later, per account: service.progress(&id), service.restart(&id), service.stop(&id)
//! service.shutdown().await;
//! # }
//! ```
//!
//! Layout, pure first: [`config`] (settings and provider presets), [`schedule`] (back-off,
//! staggered start), `failure` (verdicts and words), `state` (account state transitions and
//! their events), [`progress`] (the in-memory view); `idle` (IDLE on a session), `task` (the
//! supervisor loop), [`service`] (the owner).
//!
//! Non-goal: choosing which accounts run; the caller starts and stops them.
//!
//! Key decision: one connection per account in the steady state (resync by leaving IDLE, see
//! `task`), with a per-account connection cap (`max_connections`, 2) whose second permit serves
//! on-demand work ([`SyncService::open_session`]).

pub mod config;
mod error;
mod failure;
mod idle;
pub mod progress;
pub mod schedule;
pub mod service;
mod state;
mod task;

use tokio::sync::watch;

pub use config::{AccountSettings, SyncConfig};
pub use error::ServiceError;
pub use failure::ParkReason;
pub use progress::{AccountProgress, Activity, MailboxProgress, PassSummary};
pub use schedule::Backoff;
pub use service::{BudgetedSession, SyncLag, SyncService};

/// Resolves once a stop is asked on `stop` (it turned true, or its sender is gone).
pub(crate) async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped: nobody can ask any more, so stop as well.
    let _ = stop.wait_for(|stop| *stop).await;
}
