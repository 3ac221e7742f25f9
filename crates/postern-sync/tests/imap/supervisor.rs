//! The supervisors and the sync service against the real Dovecot: first sync to `connected`, new
//! mail by LMTP through IDLE (with its latency), changes by another client, the periodic resync,
//! dropped connections and outages, a wrong password, parking on `needs_reauth`, the connection
//! cap, the staggered start and a bounded shutdown.

use std::time::{Duration, Instant};

use postern_store::{AccountState, Transition};
use postern_sync::supervisor::{Activity, ParkReason, SyncConfig};
use postern_sync::{MailboxSelection, ServiceError};

use crate::proxy::Proxy;
use crate::supervisor_support::{
    Fleet, TestAccount, eventually, fast_config, progress, wait_idling,
};
use crate::support::{dovecot, within};

const TWO_SECONDS: Duration = Duration::from_secs(2);

fn dovecot_port() -> u16 {
    dovecot().imaps_addr().port()
}

#[tokio::test]
async fn a_supervisor_brings_an_account_to_connected_with_its_mailboxes_synced() {
    within(async {
        let fleet = Fleet::new().await;
        let account = fleet.account("sup-first", dovecot_port()).await;
        account.fill("INBOX", 11, 5).await;
        account.fill("Work", 12, 2).await;
        let service = fleet.service(fast_config());

        service.start(&account.id).await.unwrap();
        fleet
            .wait_for_state(&account, AccountState::Connected)
            .await;
        wait_idling(&service, &account).await;

        assert_eq!(fleet.count(&account, "INBOX").await, 5);
        assert_eq!(fleet.count(&account, "Work").await, 2);
        assert_eq!(fleet.events(&account, "message.new").await.len(), 7);
        let connected = fleet.events(&account, "account.connected").await;
        assert_eq!(connected.len(), 1);
        assert_eq!(connected[0].payload["mailboxes"], 7);
        assert_eq!(fleet.state(&account).await.1, None);

        let seen = progress(&service, &account);
        let pass = seen.last_pass.expect("the first pass is recorded");
        assert!(pass.report.created.contains(&"Work".to_owned()));
        let inbox = &seen.mailboxes["INBOX"];
        assert_eq!((inbox.stored, inbox.exists), (5, 5));
        assert!(inbox.initial_done);
        assert!(seen.mailboxes["Trash"].initial_done);
        assert!(seen.connected_since.is_some());
        assert_eq!(seen.reconnects, 0);
        assert_eq!(service.running(), std::slice::from_ref(&account.id));

        service.shutdown().await;
        assert_eq!(service.progress(&account.id), None);
    })
    .await;
}

/// Delivery (LMTP accepted) → `message.new` in the store's event log, five times, next to a bare
/// async-imap IDLE client on the same INBOX (Dovecot's own notification delay is the floor).
#[tokio::test]
async fn mail_delivered_by_lmtp_shows_up_as_message_new_within_two_seconds() {
    within(async {
        let fleet = Fleet::new().await;
        let account = fleet.account("sup-lmtp", dovecot_port()).await;
        let service = fleet.service(fast_config());
        service.start(&account.id).await.unwrap();
        wait_idling(&service, &account).await;
        let bare = BareIdler::start(&account).await;

        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for round in 0..5u32 {
            let before = fleet.events(&account, "message.new").await.len();
            let delivered = Instant::now();
            account.deliver(100 + u64::from(round)).await;
            eventually(TWO_SECONDS, "message.new", || async {
                fleet.events(&account, "message.new").await.len() > before
            })
            .await;
            ours.push(delivered.elapsed());
            theirs.push(bare.next_wake().await.saturating_duration_since(delivered));
            assert_eq!(fleet.count(&account, "INBOX").await, u64::from(round) + 1);
            wait_idling(&service, &account).await;
        }
        eprintln!(
            "delivery -> message.new (supervisor): {}",
            figures(&mut ours)
        );
        eprintln!(
            "delivery -> IDLE EXISTS (bare client): {}",
            figures(&mut theirs)
        );
        assert!(ours.iter().all(|latency| *latency < TWO_SECONDS));
        assert!(progress(&service, &account).idle_wakeups >= 5);
        service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn flag_changes_and_expunges_by_another_client_are_reflected_through_idle() {
    within(async {
        let fleet = Fleet::new().await;
        let account = fleet.account("sup-changes", dovecot_port()).await;
        account.fill("INBOX", 21, 3).await;
        let service = fleet.service(fast_config());
        service.start(&account.id).await.unwrap();
        wait_idling(&service, &account).await;
        let first_pass = progress(&service, &account).last_pass.unwrap().finished_at;
        assert!(
            !fleet
                .message(&account, "INBOX", 1)
                .await
                .unwrap()
                .flags
                .contains(&"\\Seen".to_owned())
        );

        let started = Instant::now();
        account.change_elsewhere(1, "+FLAGS (\\Seen)", false).await;
        eventually(TWO_SECONDS, "\\Seen on UID 1", || async {
            let message = fleet.message(&account, "INBOX", 1).await.unwrap();
            message.flags.contains(&"\\Seen".to_owned())
        })
        .await;
        eprintln!("flag change seen after {:?}", started.elapsed());
        assert_eq!(fleet.events(&account, "message.updated").await.len(), 1);

        wait_idling(&service, &account).await;
        let started = Instant::now();
        account
            .change_elsewhere(2, "+FLAGS (\\Deleted)", true)
            .await;
        eventually(TWO_SECONDS, "UID 2 gone", || async {
            fleet.message(&account, "INBOX", 2).await.is_none()
        })
        .await;
        eprintln!("expunge seen after {:?}", started.elapsed());
        assert_eq!(fleet.events(&account, "message.deleted").await.len(), 1);
        assert_eq!(fleet.count(&account, "INBOX").await, 2);

        let seen = progress(&service, &account);
        assert!(seen.idle_wakeups >= 2, "{seen:?}");
        assert_eq!(
            seen.last_pass.unwrap().finished_at,
            first_pass,
            "IDLE did it, not a resync"
        );
        service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_periodic_resync_picks_up_other_mailboxes_and_idle_survives_restarts() {
    within(async {
        let fleet = Fleet::new().await;
        let account = fleet.account("sup-resync", dovecot_port()).await;
        let config = SyncConfig {
            resync_interval: Duration::from_millis(400),
            idle_restart: Duration::from_millis(150),
            ..fast_config()
        };
        let service = fleet.service(config);
        service.start(&account.id).await.unwrap();
        wait_idling(&service, &account).await;
        let first_pass = progress(&service, &account).last_pass.unwrap().finished_at;

        // IDLE watches INBOX only: a message appended to Work is found by the resync.
        account.fill("Work", 31, 2).await;
        eventually(TWO_SECONDS, "Work synced by the resync", || async {
            fleet.count(&account, "Work").await == 2
        })
        .await;
        eventually(TWO_SECONDS, "that pass to be recorded", || async {
            progress(&service, &account).last_pass.unwrap().finished_at > first_pass
        })
        .await;

        // IDLE has been re-issued several times by now; new mail still arrives through it.
        account.deliver(32).await;
        eventually(TWO_SECONDS, "new mail after IDLE restarts", || async {
            fleet.count(&account, "INBOX").await == 1
        })
        .await;
        assert_eq!(fleet.events(&account, "account.connected").await.len(), 1);
        assert_eq!(progress(&service, &account).reconnects, 0);
        service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_dropped_connection_is_survived_with_a_quiet_reconnect() {
    within(async {
        let proxy = Proxy::start(dovecot().imaps_addr()).await;
        let fleet = Fleet::new().await;
        let account = fleet.account("sup-drop", proxy.port()).await;
        let service = fleet.service(fast_config());
        service.start(&account.id).await.unwrap();
        wait_idling(&service, &account).await;
        assert_eq!(proxy.accepted(), 1);

        proxy.cut_all();
        eventually(Duration::from_secs(5), "a reconnect", || async {
            let seen = progress(&service, &account);
            seen.reconnects == 1 && seen.activity == Activity::Idling
        })
        .await;
        assert_eq!(fleet.state(&account).await, (AccountState::Connected, None));

        account.deliver(41).await;
        eventually(TWO_SECONDS, "mail after the reconnect", || async {
            fleet.count(&account, "INBOX").await == 1
        })
        .await;
        assert_eq!(fleet.events(&account, "account.connected").await.len(), 1);
        assert!(fleet.events(&account, "account.error").await.is_empty());
        assert_eq!(proxy.accepted(), 2);
        service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_outage_marks_the_account_error_once_and_it_recovers() {
    within(async {
        let proxy = Proxy::start(dovecot().imaps_addr()).await;
        let fleet = Fleet::new().await;
        let account = fleet.account("sup-outage", proxy.port()).await;
        let service = fleet.service(fast_config());
        service.start(&account.id).await.unwrap();
        wait_idling(&service, &account).await;

        proxy.refuse(true);
        proxy.cut_all();
        fleet.wait_for_state(&account, AccountState::Error).await;
        let (_, last_error) = fleet.state(&account).await;
        let last_error = last_error.unwrap();
        assert!(last_error.contains("retrying in"), "{last_error}");
        // More failed attempts while in error: still one event.
        let attempts = proxy.accepted();
        // Attempts follow the back-off; on a loaded 2-core machine three of them can take longer
        // than the latency bounds above, and this is not a latency assertion.
        eventually(Duration::from_secs(10), "more attempts", || async {
            proxy.accepted() >= attempts + 3
        })
        .await;
        assert_eq!(fleet.events(&account, "account.error").await.len(), 1);
        // Between two attempts it is `retrying`; sampled during an attempt it is `connecting`.
        eventually(Duration::from_secs(10), "the retrying activity", || async {
            matches!(
                progress(&service, &account).activity,
                Activity::Retrying { .. }
            )
        })
        .await;

        proxy.refuse(false);
        fleet
            .wait_for_state(&account, AccountState::Connected)
            .await;
        let recovered = fleet.events(&account, "account.recovered").await;
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0].payload["state"], "connected");
        assert_eq!(fleet.events(&account, "account.error").await.len(), 1);
        assert_eq!(fleet.state(&account).await.1, None);
        wait_idling(&service, &account).await;
        service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_makes_error_once_without_a_reconnect_loop() {
    within(async {
        let proxy = Proxy::start(dovecot().imaps_addr()).await;
        let fleet = Fleet::new().await;
        let account = fleet
            .account_storing("sup-wrong", proxy.port(), "not-the-password")
            .await;
        let config = SyncConfig {
            backoff: postern_sync::supervisor::Backoff {
                initial: Duration::from_millis(5),
                max: Duration::from_millis(10),
            },
            ..fast_config()
        };
        let service = fleet.service(config);
        let started = Instant::now();
        service.start(&account.id).await.unwrap();
        fleet.wait_for_state(&account, AccountState::Error).await;
        let (_, last_error) = fleet.state(&account).await;
        let last_error = last_error.unwrap();
        assert!(
            last_error.contains("could not connect or log in")
                && last_error.contains("Authentication failed"),
            "{last_error}"
        );

        tokio::time::sleep(Duration::from_secs(3).saturating_sub(started.elapsed())).await;
        assert_eq!(proxy.accepted(), 1, "one login in 3 s");
        let errors = fleet.events(&account, "account.error").await;
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].payload["reason"], last_error.as_str());
        assert!(matches!(
            progress(&service, &account).activity,
            Activity::Failed { .. }
        ));

        // A restart (say, after the password was fixed) tries at once; still wrong: no new event.
        service.restart(&account.id).await.unwrap();
        eventually(TWO_SECONDS, "the restarted login", || async {
            matches!(
                progress(&service, &account).activity,
                Activity::Failed { .. }
            )
        })
        .await;
        assert_eq!(proxy.accepted(), 2);
        assert_eq!(fleet.events(&account, "account.error").await.len(), 1);
        service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn needs_reauth_is_left_alone_and_parks_the_supervisor() {
    within(async {
        let proxy = Proxy::start(dovecot().imaps_addr()).await;
        let fleet = Fleet::new().await;
        let account = fleet.account("sup-reauth", proxy.port()).await;
        let service = fleet.service(fast_config());
        service.start(&account.id).await.unwrap();
        wait_idling(&service, &account).await;

        // The token manager finds the grant dead while the session is up; then the connection drops.
        let dead = Transition {
            to: AccountState::NeedsReauth,
            last_error: Some("grant revoked".into()),
            event: None,
        };
        fleet
            .store
            .accounts()
            .transition(&account.id, dead)
            .await
            .unwrap();
        proxy.cut_all();
        eventually(Duration::from_secs(5), "the supervisor to park", || async {
            progress(&service, &account).activity == Activity::Parked(ParkReason::NeedsReauth)
        })
        .await;
        assert_eq!(
            fleet.state(&account).await,
            (AccountState::NeedsReauth, Some("grant revoked".into()))
        );
        eventually(TWO_SECONDS, "the parked task to end", || async {
            service.running().is_empty()
        })
        .await;

        let refused = service.start(&account.id).await.unwrap_err();
        assert!(
            matches!(
                refused,
                ServiceError::NotSyncable {
                    state: AccountState::NeedsReauth,
                    ..
                }
            ),
            "{refused:?}"
        );
        assert_eq!(service.start_all().await.unwrap(), 0);
        assert_eq!(proxy.accepted(), 1, "no login attempt after parking");
        service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn extra_sessions_count_against_the_connection_cap() {
    within(async {
        let fleet = Fleet::new().await;
        let account = fleet.account("sup-cap", dovecot_port()).await;
        let service = fleet.service(fast_config());
        assert_eq!(service.config().max_connections, 2);
        service.start(&account.id).await.unwrap();
        wait_idling(&service, &account).await;

        let mut extra = service.open_session(&account.id).await.unwrap();
        assert!(extra.capabilities().idle());
        let refused = service.open_session(&account.id).await.unwrap_err();
        assert!(
            matches!(refused, ServiceError::TooManyConnections { limit: 2, .. }),
            "{refused:?}"
        );
        assert!(refused.is_transient());
        extra.select_inbox_check().await.unwrap();
        extra.logout().await.unwrap();
        let again = service.open_session(&account.id).await.unwrap();
        again.logout().await.unwrap();
        service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn shutdown_ends_idle_and_logs_out_within_a_second() {
    within(async {
        let fleet = Fleet::new().await;
        let mut accounts = Vec::new();
        for index in 0..3 {
            let account = fleet
                .account(&format!("sup-stop{index}"), dovecot_port())
                .await;
            accounts.push(account);
        }
        let service = fleet.service(fast_config());
        assert_eq!(service.start_all().await.unwrap(), 3);
        for account in &accounts {
            wait_idling(&service, account).await;
        }

        let started = Instant::now();
        assert_eq!(service.shutdown().await, 3);
        let took = started.elapsed();
        eprintln!("shutdown of 3 idling supervisors: {took:?}");
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert!(service.running().is_empty());
        for account in &accounts {
            assert_logged_out(account).await;
        }
    })
    .await;
}

#[tokio::test]
async fn stop_ends_one_supervisor_and_forgets_it() {
    within(async {
        let fleet = Fleet::new().await;
        let kept = fleet.account("sup-kept", dovecot_port()).await;
        let gone = fleet.account("sup-gone", dovecot_port()).await;
        let service = fleet.service(fast_config());
        service.start_all().await.unwrap();
        wait_idling(&service, &kept).await;
        wait_idling(&service, &gone).await;

        assert!(service.stop(&gone.id).await);
        assert!(!service.stop(&gone.id).await);
        assert_eq!(service.progress(&gone.id), None);
        assert_eq!(service.running(), std::slice::from_ref(&kept.id));
        assert_logged_out(&gone).await;
        kept.deliver(51).await;
        eventually(TWO_SECONDS, "the other account still syncing", || async {
            fleet.count(&kept, "INBOX").await == 1
        })
        .await;
        service.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn start_all_spreads_first_connections_over_the_window() {
    within(async {
        const ACCOUNTS: usize = 20;
        let window = Duration::from_secs(2);
        let proxy = Proxy::start(dovecot().imaps_addr()).await;
        let fleet = Fleet::new().await;
        let mut accounts = Vec::new();
        for index in 0..ACCOUNTS {
            accounts.push(
                fleet
                    .account(&format!("sup-stagger{index}"), proxy.port())
                    .await,
            );
        }
        let config = SyncConfig {
            start_window: window,
            sync: postern_sync::SyncOptions {
                mailboxes: MailboxSelection::Only(vec!["INBOX".into()]),
                ..Default::default()
            },
            ..fast_config()
        };
        let service = fleet.service(config);
        let started = Instant::now();
        assert_eq!(service.start_all().await.unwrap(), ACCOUNTS);
        assert!(matches!(
            progress(&service, &accounts[ACCOUNTS - 1]).activity,
            Activity::Waiting { .. }
        ));
        for account in &accounts {
            fleet.wait_for_state(account, AccountState::Connected).await;
        }

        let mut offsets: Vec<Duration> = proxy
            .accept_times()
            .iter()
            .map(|at| at.saturating_duration_since(started))
            .collect();
        offsets.sort();
        assert_eq!(offsets.len(), ACCOUNTS);
        let span = offsets[ACCOUNTS - 1] - offsets[0];
        eprintln!("{ACCOUNTS} first connections spread over {span:?} (window {window:?})");
        // Evenly spaced: the last starts at 19/20 of the window; never 20 in the same instant.
        assert!(span >= window.mul_f64(0.8), "{offsets:?}");
        assert!(span <= window + Duration::from_millis(500), "{offsets:?}");
        let first_half = offsets.iter().filter(|at| **at < window / 2).count();
        assert!((8..=12).contains(&first_half), "{offsets:?}");
        service.shutdown().await;
    })
    .await;
}

/// Dovecot logged the user's session as ended by LOGOUT, not by a dropped connection.
async fn assert_logged_out(account: &TestAccount) {
    let what = format!("Dovecot to log {} out", account.user);
    eventually(TWO_SECONDS, &what, || async {
        dovecot()
            .log()
            .lines()
            .any(|line| line.contains(&account.user) && line.contains("Logged out"))
    })
    .await;
}

/// Min / median / max, sorted in place.
fn figures(latencies: &mut [Duration]) -> String {
    latencies.sort();
    format!(
        "min {:?}, median {:?}, max {:?} ({} deliveries)",
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        latencies.len()
    )
}

/// A bare async-imap client in IDLE on the account's INBOX, reporting when each `EXISTS` arrives.
struct BareIdler {
    wakes: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Instant>>,
    task: tokio::task::JoinHandle<()>,
}

impl BareIdler {
    async fn start(account: &TestAccount) -> BareIdler {
        let session = account.session().await;
        let mut inner = session.into_inner();
        inner.select("INBOX").await.unwrap();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let (wake_tx, wakes) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            loop {
                let mut handle = inner.idle();
                handle.init().await.unwrap();
                if let Some(ready) = ready_tx.take() {
                    ready.send(()).unwrap();
                }
                let (wait, _stop) = handle.wait();
                let response = wait.await.unwrap();
                let now = Instant::now();
                if matches!(
                    response,
                    async_imap::extensions::idle::IdleResponse::NewData(_)
                ) {
                    wake_tx.send(now).unwrap();
                }
                inner = handle.done().await.unwrap();
                // Let Dovecot's RECENT/EXISTS burst settle into this session before the next IDLE.
                inner.noop().await.unwrap();
            }
        });
        ready.await.unwrap();
        BareIdler {
            wakes: tokio::sync::Mutex::new(wakes),
            task,
        }
    }

    async fn next_wake(&self) -> Instant {
        let mut wakes = self.wakes.lock().await;
        tokio::time::timeout(TWO_SECONDS, wakes.recv())
            .await
            .expect("the bare client woke up")
            .unwrap()
    }
}

impl Drop for BareIdler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
