//! The sync engine against the real Dovecot: initial sync, window, resuming, changes made by another
//! client, new mail by LMTP, UIDVALIDITY change, mailboxes coming and going, broken messages.

use std::collections::BTreeSet;
use std::time::Instant;

use postern_store::{MailboxRole, MessageQuery};
use postern_sync::engine::plan::Strategy;
use postern_sync::engine::{MailboxOutcome, Phase};
use postern_sync::{BodiesMode, SyncError, SyncOptions, SyncWindow};
use postern_testkit::mailgen::{GeneratedMessage, MailGen, lmtp_deliver};

use crate::support::{dovecot, within};
use crate::sync_support::{Recorder, World, options};

fn raws(messages: &[GeneratedMessage]) -> Vec<Vec<u8>> {
    messages.iter().map(|m| m.raw.clone()).collect()
}

fn outcome<'r>(report: &'r postern_sync::SyncReport, name: &str) -> &'r MailboxOutcome {
    &report
        .mailboxes
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} not in {report:?}"))
        .outcome
}

#[tokio::test]
async fn initial_sync_stores_every_mailbox_with_its_messages_and_events() {
    within(async {
        let world = World::new("sync-initial").await;
        let inbox = MailGen::new(101, &world.user).messages(30);
        let work = MailGen::new(102, &world.user).messages(12);
        world.fill("INBOX", &raws(&inbox)).await;
        world.fill("Work", &raws(&work)).await;

        let started = Instant::now();
        let report = world.sync(&options(10)).await;
        eprintln!(
            "initial sync of 42 messages in 7 mailboxes: {:?}, {} commands",
            started.elapsed(),
            report.commands
        );

        let mailboxes = world
            .store
            .mailboxes()
            .list(&world.account_id)
            .await
            .unwrap();
        let names: Vec<&str> = mailboxes.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash", "Work"
            ]
        );
        assert_eq!(world.mailbox("INBOX").await.role, Some(MailboxRole::Inbox));
        assert_eq!(world.mailbox("Sent").await.role, Some(MailboxRole::Sent));
        assert_eq!(world.mailbox("Work").await.role, None);

        let stored = world.messages("INBOX").await;
        assert_eq!(stored.len(), 30);
        for generated in &inbox {
            let message = stored
                .values()
                .find(|m| m.envelope.message_id.as_deref() == Some(&generated.message_id))
                .unwrap_or_else(|| panic!("{} missing", generated.message_id));
            assert_eq!(
                message.envelope.subject.as_deref(),
                Some(&*generated.subject)
            );
            assert_eq!(
                message.envelope.from[0].address.as_deref(),
                Some(&*generated.from)
            );
            let attachment = message.mime.attachments.first();
            assert_eq!(
                attachment.and_then(|a| a.filename.clone()),
                generated.attachment
            );
            assert!(message.has_body && message.snippet.is_some());
            assert_eq!(message.parse_problems, None);
        }
        let body = world
            .store
            .messages()
            .body(stored[&1].id)
            .await
            .unwrap()
            .unwrap();
        assert!(inbox.iter().any(|m| m.raw == body));
        assert_eq!(world.messages("Work").await.len(), 12);

        let state = world.mailbox("INBOX").await.sync.unwrap();
        assert!(state.initial_done);
        assert_eq!((state.lowest_uid, state.uidnext, state.exists), (1, 31, 30));
        let new = world.events("message.new").await;
        assert_eq!(new.len(), 42);
        assert!(new.iter().all(|e| e.payload["initial_sync"] == true));
        assert_eq!(world.events("mailbox.created").await.len(), 7);

        // Newest first over the whole account, in pages of 7: every message exactly once.
        let mut seen = BTreeSet::new();
        let mut after = None;
        let mut previous: Option<(i64, i64)> = None;
        loop {
            let page = world
                .store
                .messages()
                .list(MessageQuery {
                    account_id: world.account_id.clone(),
                    mailbox_id: None,
                    limit: 7,
                    after,
                    filter: Default::default(),
                })
                .await
                .unwrap();
            for message in &page.messages {
                let position = (message.internaldate.timestamp_millis(), message.id.0);
                assert!(previous.is_none_or(|p| p > position), "not newest first");
                previous = Some(position);
                assert!(seen.insert(message.id), "listed twice");
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), 42);

        // Nothing changed: one LIST-STATUS round trip, nothing selected.
        let started = Instant::now();
        let again = world.sync(&options(10)).await;
        eprintln!("no-change pass: {:?}", started.elapsed());
        assert!(
            again
                .mailboxes
                .iter()
                .all(|m| m.outcome == MailboxOutcome::UpToDate),
            "{again:?}"
        );
        assert_eq!(again.commands, 2, "ENABLE QRESYNC + LIST-STATUS: {again:?}");
    })
    .await;
}

#[tokio::test]
async fn the_window_keeps_only_the_newest_messages() {
    within(async {
        let world = World::new("sync-window").await;
        world.fill("INBOX", &world.generate(201, 25)).await;
        let options = SyncOptions {
            window: SyncWindow {
                newest: Some(10),
                since: None,
            },
            ..options(4)
        };
        world.sync(&options).await;
        let uids: Vec<u32> = world.messages("INBOX").await.into_keys().collect();
        assert_eq!(uids, (16..=25).collect::<Vec<_>>());
        assert!(world.mailbox("INBOX").await.sync.unwrap().initial_done);
    })
    .await;
}

#[tokio::test]
async fn an_interrupted_initial_sync_resumes_without_fetching_a_uid_twice() {
    within(async {
        let world = World::new("sync-resume").await;
        world.fill("INBOX", &world.generate(301, 35)).await;
        let only_inbox = SyncOptions {
            mailboxes: postern_sync::MailboxSelection::Only(vec!["INBOX".to_owned()]),
            ..options(10)
        };

        let first = Recorder::stopping_after(1);
        let stopped = world.sync_observed(&only_inbox, &first).await;
        assert!(
            matches!(stopped, Err(SyncError::Interrupted)),
            "{stopped:?}"
        );
        let uids: Vec<u32> = world.messages("INBOX").await.into_keys().collect();
        assert_eq!(uids, (26..=35).collect::<Vec<_>>());
        let state = world.mailbox("INBOX").await.sync.unwrap();
        assert_eq!((state.lowest_uid, state.initial_done), (26, false));

        let second = Recorder::default();
        world.sync_observed(&only_inbox, &second).await.unwrap();
        assert_eq!(world.messages("INBOX").await.len(), 35);
        let mut fetched = first.fetched();
        fetched.extend(second.fetched());
        let unique: BTreeSet<u32> = fetched.iter().copied().collect();
        assert_eq!(fetched.len(), 35, "a UID was fetched twice: {fetched:?}");
        assert_eq!(unique, (1..=35).collect());
        assert!(
            second
                .batches
                .lock()
                .unwrap()
                .iter()
                .all(|(phase, _)| *phase == Phase::Initial)
        );
        assert_eq!(world.events("message.new").await.len(), 35);
        assert!(world.mailbox("INBOX").await.sync.unwrap().initial_done);
    })
    .await;
}

#[tokio::test]
async fn flag_changes_and_expunges_by_another_client_are_reflected_with_every_strategy() {
    within(async {
        for strategy in [Strategy::Qresync, Strategy::Condstore, Strategy::Plain] {
            let world = World::new(&format!("sync-changes-{strategy:?}").to_lowercase()).await;
            world.fill("INBOX", &world.generate(401, 6)).await;
            let options = SyncOptions {
                strategy: Some(strategy),
                ..options(10)
            };
            world.sync(&options).await;

            world
                .elsewhere(
                    "INBOX",
                    &["STORE 1:2 +FLAGS (\\Flagged)", "STORE 3 +FLAGS (\\Seen)"],
                )
                .await;
            let report = world.sync(&options).await;
            assert!(
                matches!(
                    outcome(&report, "INBOX"),
                    MailboxOutcome::Synced { updated: 3, .. }
                ),
                "{strategy:?}: {report:?}"
            );
            let stored = world.messages("INBOX").await;
            assert_eq!(stored[&1].flags, ["\\Flagged"], "{strategy:?}");
            assert_eq!(stored[&3].flags, ["\\Seen"], "{strategy:?}");
            let updated = world.events("message.updated").await;
            assert_eq!(updated.len(), 3, "{strategy:?}");
            assert_eq!(updated[0].payload["flags"][0], "\\Flagged");

            world
                .elsewhere("INBOX", &["STORE 4 +FLAGS (\\Deleted)", "EXPUNGE"])
                .await;
            let report = world.sync(&options).await;
            assert!(
                matches!(
                    outcome(&report, "INBOX"),
                    MailboxOutcome::Synced { deleted: 1, .. }
                ),
                "{strategy:?}: {report:?}"
            );
            let uids: Vec<u32> = world.messages("INBOX").await.into_keys().collect();
            assert_eq!(uids, [1, 2, 3, 5, 6], "{strategy:?}");
            let deleted = world.events("message.deleted").await;
            assert_eq!(deleted.len(), 1, "{strategy:?}");
            assert_eq!(deleted[0].payload["uid"], 4);
        }
    })
    .await;
}

#[tokio::test]
async fn new_mail_delivered_by_lmtp_is_picked_up() {
    within(async {
        let world = World::new("sync-lmtp").await;
        world.fill("INBOX", &world.generate(501, 3)).await;
        world.sync(&options(10)).await;

        let arriving = MailGen::new(502, &world.user).messages(2);
        lmtp_deliver(dovecot().lmtp_addr(), &world.user, &raws(&arriving))
            .await
            .unwrap();
        let report = world.sync(&options(10)).await;
        assert!(
            matches!(
                outcome(&report, "INBOX"),
                MailboxOutcome::Synced { inserted: 2, .. }
            ),
            "{report:?}"
        );
        let stored = world.messages("INBOX").await;
        assert_eq!(
            stored[&5].envelope.message_id.as_deref(),
            Some(&*arriving[1].message_id)
        );
        let new = world.events("message.new").await;
        assert_eq!(new.len(), 5);
        assert!(new[3..].iter().all(|e| e.payload["initial_sync"] == false));
        assert_eq!(world.mailbox("INBOX").await.sync.unwrap().uidnext, 6);
    })
    .await;
}

#[tokio::test]
async fn a_recreated_mailbox_with_a_new_uidvalidity_is_reset_and_resynced() {
    within(async {
        let world = World::new("sync-uidvalidity").await;
        world.fill("Box", &world.generate(601, 4)).await;
        world.fill("Old", &world.generate(602, 1)).await;
        world.sync(&options(10)).await;
        let before = world.mailbox("Box").await.sync.unwrap().uidvalidity;

        world
            .elsewhere(
                "INBOX",
                &["DELETE \"Box\"", "CREATE \"Box\"", "DELETE \"Old\""],
            )
            .await;
        world.fill("Box", &world.generate(603, 2)).await;
        world.fill("Fresh", &world.generate(604, 1)).await;
        let report = world.sync(&options(10)).await;

        assert!(
            matches!(
                outcome(&report, "Box"),
                MailboxOutcome::Synced {
                    reset: true,
                    inserted: 2,
                    ..
                }
            ),
            "{report:?}"
        );
        let after = world.mailbox("Box").await.sync.unwrap().uidvalidity;
        assert_ne!(before, after);
        assert_eq!(world.messages("Box").await.len(), 2);
        let resets = world.events("mailbox.reset").await;
        assert_eq!(resets.len(), 1);
        assert_eq!(resets[0].payload["deleted_messages"], 4);
        assert_eq!(resets[0].payload["new_uidvalidity"], after);

        assert_eq!(report.deleted, ["Old"]);
        assert_eq!(report.created, ["Fresh"]);
        assert_eq!(world.messages("Fresh").await.len(), 1);
        let deleted = world.events("mailbox.deleted").await;
        assert_eq!(deleted[0].payload["mailbox"], "Old");
    })
    .await;
}

#[tokio::test]
async fn head_mode_stores_no_body_and_lists_attachments_from_bodystructure() {
    within(async {
        let world = World::new("sync-head").await;
        let generated = MailGen::new(701, &world.user)
            .with_attachment_ratio(0.5)
            .messages(20);
        world.fill("INBOX", &raws(&generated)).await;
        let options = SyncOptions {
            bodies: BodiesMode::OnDemand,
            ..options(8)
        };
        world.sync(&options).await;

        let stored = world.messages("INBOX").await;
        assert_eq!(stored.len(), 20);
        for (uid, generated) in (1..).zip(&generated) {
            let message = &stored[&uid];
            assert!(!message.has_body);
            assert_eq!(
                message.envelope.subject.as_deref(),
                Some(&*generated.subject)
            );
            assert!(
                message
                    .snippet
                    .as_deref()
                    .is_some_and(|s| s.starts_with("Hi,"))
            );
            let filename = message
                .mime
                .attachments
                .first()
                .and_then(|a| a.filename.clone());
            assert_eq!(filename, generated.attachment, "UID {uid}");
        }
    })
    .await;
}

/// Deliberately broken messages: each must be stored, listed and annotated.
const BROKEN: &[&[u8]] = &[
    // An unknown charset.
    b"From: a@example.com\r\nSubject: charset\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\nHello\r\n",
    // A multipart cut off in the middle of its second part.
    b"From: a@example.com\r\nSubject: truncated\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--zz\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x",
    // 8-bit bytes in headers, not UTF-8.
    b"From: \xc9ric <eric@example.com>\r\nSubject: r\xe9union \xe0 midi\r\n\r\nCorps du message\r\n",
    // No header at all.
    b"just some text without any header\r\nand a second line\r\n",
    // Invalid base64 and invalid quoted-printable.
    b"From: a@example.com\r\nSubject: encodings\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nbroken =ZZ soft=\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--b--\r\n",
    // A multipart without a boundary parameter.
    b"From: a@example.com\r\nSubject: no boundary\r\nContent-Type: multipart/alternative\r\n\r\nwhat now?\r\n",
    // Invalid UTF-8 in a part declared UTF-8.
    b"From: a@example.com\r\nSubject: bad utf8\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xff\xfe\xfd bytes\r\n",
];

#[tokio::test]
async fn a_mailbox_of_broken_messages_syncs_with_each_one_listed() {
    within(async {
        for bodies in [BodiesMode::Full, BodiesMode::OnDemand] {
            let world = World::new(&format!("sync-broken-{bodies:?}").to_lowercase()).await;
            let raw: Vec<Vec<u8>> = BROKEN.iter().map(|m| m.to_vec()).collect();
            world.fill("Broken", &raw).await;
            let options = SyncOptions {
                bodies,
                ..options(3)
            };
            world.sync(&options).await;

            let stored = world.messages("Broken").await;
            assert_eq!(stored.len(), BROKEN.len(), "{bodies:?}");
            let noted = stored
                .values()
                .filter(|m| m.parse_problems.is_some())
                .count();
            for message in stored.values() {
                eprintln!(
                    "{bodies:?} UID {} {:?}: {:?}",
                    message.uid, message.envelope.subject, message.parse_problems
                );
            }
            if bodies == BodiesMode::Full {
                assert!(noted >= 5, "only {noted} annotated");
                assert!(
                    stored[&2]
                        .parse_problems
                        .as_deref()
                        .unwrap()
                        .contains("boundary")
                );
                assert!(
                    stored[&3]
                        .parse_problems
                        .as_deref()
                        .unwrap()
                        .contains("8-bit")
                );
            } else {
                assert!(
                    stored[&3]
                        .parse_problems
                        .as_deref()
                        .unwrap()
                        .contains("8-bit")
                );
            }
            assert_eq!(stored[&1].snippet.as_deref(), Some("Hello"));
        }
    })
    .await;
}
