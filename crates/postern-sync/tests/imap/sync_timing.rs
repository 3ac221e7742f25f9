//! Rough timings of a 10,000-message initial sync (bodies `full`), next to the raw FETCH of the same
//! mailbox over one connection. Ignored by default (it fills a mailbox for ~2 s and prints figures
//! rather than asserting them); run with
//! `cargo test -p postern-sync --test imap sync_timing -- --ignored --nocapture`.

use std::time::Instant;

use futures::TryStreamExt as _;
use postern_sync::BodiesMode;
use postern_testkit::mailgen::MailGen;

use crate::support::within;
use crate::sync_support::{World, options};

const MESSAGES: usize = 10_000;

#[tokio::test]
#[ignore = "timing figures, not a check; run by hand"]
async fn sync_timing_of_10k_messages_with_full_bodies() {
    within(async {
        let world = World::new("sync-timing").await;
        let started = Instant::now();
        let messages = MailGen::new(901, &world.user)
            .with_attachment_ratio(0.0)
            .raw_messages(MESSAGES);
        let bytes: usize = messages.iter().map(Vec::len).sum();
        world.fill("INBOX", &messages).await;
        eprintln!(
            "fill: {MESSAGES} messages, {} KB, {:?}",
            bytes / 1024,
            started.elapsed()
        );

        let mut session = world.session().await;
        let started = Instant::now();
        let inner = session.inner_mut();
        inner.select("INBOX").await.unwrap();
        let fetched: usize = inner
            .uid_fetch("1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
            .await
            .unwrap()
            .try_fold(0, |count, _| async move { Ok(count + 1) })
            .await
            .unwrap();
        eprintln!(
            "raw UID FETCH 1:* BODY.PEEK[] ({fetched}): {:?}",
            started.elapsed()
        );
        session.logout().await.unwrap();

        let options = options(postern_sync::engine::DEFAULT_BATCH_SIZE);
        assert_eq!(options.bodies, BodiesMode::Full);
        let started = Instant::now();
        let report = world.sync(&options).await;
        eprintln!(
            "initial sync, full bodies, batches of {}: {:?} ({} commands)",
            options.batch_size,
            started.elapsed(),
            report.commands
        );
        assert_eq!(world.messages_count("INBOX").await, MESSAGES as u64);

        let started = Instant::now();
        world.sync(&options).await;
        eprintln!(
            "no-change pass (new session, LIST-STATUS): {:?}",
            started.elapsed()
        );
        eprintln!("{}", peak_rss());
    })
    .await;
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .filter(|line| line.starts_with("VmHWM") || line.starts_with("VmRSS"))
        .collect::<Vec<_>>()
        .join(", ")
}
