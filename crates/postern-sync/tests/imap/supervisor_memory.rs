//! Resident memory per idle account: many accounts brought to IDLE on the test Dovecot, the test
//! process's RSS before and after, divided by their number. Ignored by default (it prints figures
//! rather than asserting them, and opens 200 connections); run alone with
//! `cargo test -p postern-sync --test imap supervisor_memory -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use postern_sync::supervisor::{Activity, SyncConfig};

use crate::supervisor_support::{Fleet, eventually, fast_config, progress, wait_idling};
use crate::support::dovecot;

const ACCOUNTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "memory figures, not a check; run by hand"]
async fn memory_per_idle_account() {
    let port = dovecot().imaps_addr().port();
    let fleet = Fleet::new().await;
    let config = SyncConfig {
        start_window: Duration::from_secs(5),
        ..fast_config()
    };
    let service = fleet.service(config);

    // One account first, so one-time costs (TLS setup, the store's pool, the runtime) are not
    // counted per account.
    let first = fleet.account("mem-first", port).await;
    service.start(&first.id).await.unwrap();
    wait_idling(&service, &first).await;
    let mut accounts = Vec::new();
    for index in 0..ACCOUNTS {
        accounts.push(fleet.account(&format!("mem{index}"), port).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();

    let started = Instant::now();
    assert_eq!(service.start_all().await.unwrap(), ACCOUNTS);
    for account in &accounts {
        eventually(Duration::from_secs(60), "idle", || async {
            progress(&service, account).activity == Activity::Idling
        })
        .await;
    }
    let all_idle = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib();
    let per_account = (after.saturating_sub(before)) as f64 / ACCOUNTS as f64;
    eprintln!(
        "{ACCOUNTS} accounts idle after {all_idle:?}; RSS {before} KiB -> {after} KiB: \
         {per_account:.1} KiB per idle account"
    );
    let stopping = Instant::now();
    service.shutdown().await;
    eprintln!(
        "shutdown of {} supervisors: {:?}",
        ACCOUNTS + 1,
        stopping.elapsed()
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
