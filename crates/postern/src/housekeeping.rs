//! Housekeeping while `postern serve` runs: what the store keeps only for a while is dropped.
//!
//! Purpose: once at start and then every hour, delete the authorization flows that have expired
//! (their links can no longer be completed; a used one was kept only to recognise a replayed
//! callback until then) and the audit log's successful token refreshes older than
//! [`REFRESH_AUDIT_RETENTION`]. An OAuth account refreshes about once an hour, so 1,000 accounts
//! would add ~24,000 such rows a day, forever.
//! Non-goal: any other audit entry. Failures, authorizations, tokens, accounts and apps are rare
//! and are what people search the log for; they stay.
//! Key decision: a failed sweep is logged and tried again at the next hour; nothing waits on it.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use postern_store::{AuditAction, AuditOutcome, Store};
use tokio::sync::watch;

/// How often the sweep runs.
const INTERVAL: Duration = Duration::from_secs(60 * 60);
/// How long a successful refresh stays in the audit log.
pub const REFRESH_AUDIT_RETENTION: TimeDelta = TimeDelta::days(30);

/// What one sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired authorization flows.
    pub authorizations: u64,
    /// Successful refreshes older than the retention.
    pub refresh_entries: u64,
}

/// Sweeps now and every hour until `stop` changes.
pub async fn run(store: Store, mut stop: watch::Receiver<bool>) {
    loop {
        let swept = sweep(&store, Utc::now()).await;
        if swept != Swept::default() {
            tracing::info!(
                authorizations = swept.authorizations,
                refresh_entries = swept.refresh_entries,
                "housekeeping removed expired authorization flows and old refresh entries"
            );
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One sweep as of `now`; a step that fails is logged and counts 0.
pub async fn sweep(store: &Store, now: DateTime<Utc>) -> Swept {
    let authorizations = store
        .authorizations()
        .purge_expired(now)
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "purging expired authorization flows failed");
            0
        });
    let refresh_entries = store
        .audit()
        .prune(
            AuditAction::RefreshOk,
            AuditOutcome::Ok,
            now - REFRESH_AUDIT_RETENTION,
        )
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "pruning old refresh entries from the audit log failed");
            0
        });
    Swept {
        authorizations,
        refresh_entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_store::{AuditQuery, NewAuditEntry};

    #[tokio::test]
    async fn a_sweep_drops_refreshes_past_the_retention_and_keeps_every_other_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("postern.db"))
            .await
            .unwrap();
        let audit = store.audit();
        let record = |action, outcome, detail: &str| {
            audit.record(NewAuditEntry::new("system", action, outcome).with_detail(detail))
        };
        record(AuditAction::RefreshOk, AuditOutcome::Ok, "refreshed")
            .await
            .unwrap();
        record(
            AuditAction::RefreshFailed,
            AuditOutcome::Failed,
            "invalid_grant",
        )
        .await
        .unwrap();
        record(AuditAction::TokenCreated, AuditOutcome::Ok, "deploy")
            .await
            .unwrap();

        let within = Utc::now() + REFRESH_AUDIT_RETENTION - TimeDelta::minutes(1);
        assert_eq!(sweep(&store, within).await, Swept::default());
        let past = Utc::now() + REFRESH_AUDIT_RETENTION + TimeDelta::minutes(1);
        let swept = sweep(&store, past).await;
        assert_eq!(swept.refresh_entries, 1);
        let left = audit
            .list(AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let details: Vec<&str> = left.iter().map(|entry| entry.detail.as_str()).collect();
        assert_eq!(details, ["deploy", "invalid_grant"]);
        store.close().await;
    }
}
