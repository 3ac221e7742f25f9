//! Many password accounts on one running `postern serve`: each its own Dovecot user, created
//! through the API with bounded concurrency, then watched until every supervisor idles.
//!
//! Non-goal: checking what the accounts sync (their mailboxes are empty but for what Dovecot
//! creates); only that each ends in IDLE.
//!
//! Key decision: `POST /v1/accounts` is what an operator adding accounts calls, and it verifies the
//! login before answering, so each account costs one verification session (logged out at once) and
//! then its supervisor's own session; the concurrency bounds how many logins Dovecot forks at once.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use postern_testkit::dovecot::Dovecot;

use crate::postern_server::{PosternServer, password_account_body, sync_activity};

/// The password every bench user has.
const PASSWORD: &str = "accounts-bench-password";
/// How long all supervisors may take to reach IDLE.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The bench's user `index`: `acct<index>@accounts-bench.test`.
pub fn user(index: usize) -> String {
    format!("acct{index}@accounts-bench.test")
}

/// Makes users `0..count` Dovecot password users (a file each; instant for existing ones).
pub fn add_users(dovecot: &Dovecot, count: usize) -> anyhow::Result<()> {
    for index in 0..count {
        dovecot.add_password_user(&user(index), PASSWORD)?;
    }
    Ok(())
}

/// Creates accounts for users `range` through the API, `concurrency` at a time; returns their ids.
pub async fn create_accounts(
    server: &PosternServer,
    dovecot: &Dovecot,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let port = dovecot.imaps_addr().port();
    futures::stream::iter(range)
        .map(|index| async move {
            let body = password_account_body(&user(index), PASSWORD, port, dovecot.ca_file());
            let created = server.post_json("/v1/accounts", &body).await?;
            if created["state"] != "connected" {
                bail!("account {} was created {}", user(index), created["state"]);
            }
            created["id"]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no account id in {created}"))
        })
        .buffered(concurrency)
        .try_collect()
        .await
}

/// Waits until every account in `ids` reports `idling`, polling `concurrency` at a time; returns
/// how long that took.
pub async fn wait_all_idling(
    server: &PosternServer,
    ids: &[String],
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut waiting: Vec<&String> = ids.iter().collect();
    while !waiting.is_empty() {
        let activities: Vec<String> = futures::stream::iter(waiting.iter())
            .map(|id| sync_activity(server, id))
            .buffered(concurrency)
            .try_collect()
            .await?;
        let mut still = Vec::new();
        let mut others = std::collections::BTreeMap::<&str, usize>::new();
        for (id, activity) in waiting.iter().zip(&activities) {
            if activity != "idling" {
                still.push(*id);
                *others.entry(activity.as_str()).or_default() += 1;
            }
        }
        if started.elapsed() > IDLE_TIMEOUT {
            bail!(
                "{} of {} accounts not idling after {IDLE_TIMEOUT:?} ({others:?}); see {}",
                still.len(),
                ids.len(),
                server.log_file().display()
            );
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(started.elapsed())
}
