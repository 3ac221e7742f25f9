//! Issue #4 acceptance at the binary level: the initial sync survives `kill -9` and a server that
//! drops the connection mid-FETCH, a mailbox deleted between LIST and SELECT is skipped, and a
//! mailbox of broken messages (with a 30 MB attachment) syncs without hurting the account.
//!
//! Purpose: each test runs the real `postern serve` against the shared Dovecot and judges the
//! result only by what the API lists and the event log says, against what Dovecot itself holds
//! (read over a separate IMAP connection): none missing, none twice.
//! Non-goal: timing the sync (`postern-sync`'s `sync_timing` does) or the engine's batching
//! decisions; only the outcome a user sees is asserted.
//! Key decision: faults are injected from outside the binary: SIGKILL at moments chosen from the
//! account's live progress, and a [`FaultProxy`] between postern and Dovecot that cuts the TLS
//! stream after a byte count (so it lands inside the large FETCH responses) or, on a plain-text
//! loopback connection, holds the `SELECT` of a mailbox until the test has deleted it.

use crate::support::{Postern, dovecot};
use crate::support::{create_account, password_account_body, unique_email};
use postern_testkit::mailgen::{GeneratedMessage, ImapAppender, MailGen, imap_fill, lmtp_deliver};
use postern_testkit::proxy::FaultProxy;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Quiet (nobody drains the server's stderr pipe before `stop`; 20k messages of info lines would
/// fill it and block the server), bodies stored, and no API rate limit on the polling.
const ENV: &[(&str, &str)] = &[
    ("POSTERN_LOG", "warn"),
    ("POSTERN_SYNC_BODIES", "full"),
    ("POSTERN_API_RATE_LIMIT_PER_SECOND", "1000000"),
    ("POSTERN_API_RATE_LIMIT_BURST", "1000000"),
];
const PASSWORD: &str = "crash-pw";
const PAGE: u32 = 500;
/// How long a kill may wait for its moment (the whole sync takes ~7 s here).
const MID_SYNC: Duration = Duration::from_secs(20);

/// (mailbox name, UID) → how many times it was seen.
type Seen = BTreeMap<(String, u32), usize>;

/// The messages the test appended, per mailbox, in UID order (a fresh mailbox numbers its
/// appends 1, 2, 3, …).
type Appended = BTreeMap<String, Vec<GeneratedMessage>>;

async fn json_of(server: &Postern, token: &str, path: &str) -> Value {
    let response = server.get(path, Some(token)).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

async fn account(server: &Postern, token: &str, id: &str) -> Value {
    json_of(server, token, &format!("/v1/accounts/{id}")).await
}

/// Polls the account (`GET /v1/accounts/{id}`) until `done` says yes; panics with the last
/// answer after `limit`.
async fn wait_for_account(
    server: &Postern,
    token: &str,
    id: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let shown = account(server, token, id).await;
        if done(&shown) {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {limit:?}: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The mailbox (other than `not`) whose initial sync this supervisor has taken at least
/// `stored` messages into without finishing it, if there is one.
fn mid_sync(shown: &Value, stored: u64, not: Option<&str>) -> Option<String> {
    let mailboxes = shown["sync"]["mailboxes"].as_object()?;
    mailboxes
        .iter()
        .find(|(name, progress)| {
            Some(name.as_str()) != not
                && progress["initial_done"] == false
                && progress["stored"].as_u64() >= Some(stored)
        })
        .map(|(name, _)| name.clone())
}

/// Waits until every mailbox in `/mailboxes` has finished its initial sync and stores what the
/// server has, and the supervisor idles; returns the mailbox listing.
async fn wait_until_synced(server: &Postern, token: &str, id: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let mailboxes = json_of(server, token, &format!("/v1/accounts/{id}/mailboxes")).await;
        let shown = account(server, token, id).await;
        let all_done = mailboxes["mailboxes"].as_array().is_some_and(|list| {
            !list.is_empty()
                && list.iter().all(|m| {
                    m["initial_sync_done"] == true
                        && Some(m["stored"].as_u64()) == Some(m["total"].as_u64())
                })
        });
        if all_done && shown["sync"]["activity"] == "idling" {
            return mailboxes;
        }
        // `error` waits an hour before the next try: no point polling on.
        assert_ne!(
            shown["state"], "error",
            "the account failed: {mailboxes}\n{shown}"
        );
        assert!(
            Instant::now() < deadline,
            "not synced within {limit:?}: {mailboxes}\n{shown}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every message the API lists for the account, paging with the cursor: (mailbox, UID) counted,
/// and the Message-ID seen for each.
async fn listed(
    server: &Postern,
    token: &str,
    id: &str,
) -> (Seen, BTreeMap<(String, u32), String>) {
    let mailboxes = json_of(server, token, &format!("/v1/accounts/{id}/mailboxes")).await;
    let names: BTreeMap<i64, String> = mailboxes["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_i64().unwrap(),
                m["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut seen = Seen::new();
    let mut message_ids = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/accounts/{id}/messages?limit={PAGE}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = json_of(server, token, &path).await;
        for message in page["messages"].as_array().unwrap() {
            let mailbox = names[&message["mailbox_id"].as_i64().unwrap()].clone();
            let key = (mailbox, message["uid"].as_u64().unwrap() as u32);
            if let Some(message_id) = message["message_id"].as_str() {
                message_ids.insert(key.clone(), message_id.trim_matches(['<', '>']).to_owned());
            }
            *seen.entry(key).or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (seen, message_ids),
        }
    }
}

/// Every event of the account of `kind`, in order, paging through `/v1/events`.
async fn events(server: &Postern, token: &str, id: &str, kind: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut after = 0;
    loop {
        let page = json_of(
            server,
            token,
            &format!("/v1/events?after={after}&limit=1000"),
        )
        .await;
        let batch = page["events"].as_array().unwrap();
        if batch.is_empty() {
            return found;
        }
        after = batch.last().unwrap()["id"].as_i64().unwrap();
        found.extend(
            batch
                .iter()
                .filter(|e| e["type"] == kind && e["account_id"] == id)
                .cloned(),
        );
    }
}

/// `message.new` events counted by (mailbox, UID).
async fn new_mail_events(server: &Postern, token: &str, id: &str) -> Seen {
    let mut seen = Seen::new();
    for event in events(server, token, id, "message.new").await {
        let key = (
            event["data"]["mailbox"].as_str().unwrap().to_owned(),
            event["data"]["uid"].as_u64().unwrap() as u32,
        );
        *seen.entry(key).or_default() += 1;
    }
    seen
}

/// What Dovecot holds now, read over a connection of the test's own.
async fn server_truth(email: &str, mailboxes: &[&str]) -> BTreeMap<(String, u32), usize> {
    let mut imap = ImapAppender::login(dovecot().imap_addr(), email, PASSWORD)
        .await
        .unwrap();
    let mut truth = BTreeMap::new();
    for mailbox in mailboxes {
        for uid in imap.uids(mailbox).await.unwrap() {
            truth.insert(((*mailbox).to_owned(), uid), 1);
        }
    }
    imap.logout().await.unwrap();
    truth
}

/// Fills each mailbox with `count` lean generated messages (no attachments) and returns them.
async fn fill(email: &str, mailboxes: &[(&str, usize)]) -> Appended {
    let mut appended = Appended::new();
    for (seed, (mailbox, count)) in (40u64..).zip(mailboxes) {
        let messages = MailGen::new(seed, email)
            .with_attachment_ratio(0.0)
            .messages(*count);
        let raw: Vec<Vec<u8>> = messages.iter().map(|m| m.raw.clone()).collect();
        imap_fill(dovecot().imap_addr(), email, PASSWORD, mailbox, &raw)
            .await
            .unwrap();
        appended.insert((*mailbox).to_owned(), messages);
    }
    appended
}

/// Asserts that the API lists exactly Dovecot's messages (none missing, none twice), each with
/// the Message-ID that was appended under its UID, and one `message.new` event for each.
async fn assert_exactly_the_servers(
    server: &Postern,
    token: &str,
    id: &str,
    email: &str,
    appended: &Appended,
) {
    let names: Vec<&str> = appended.keys().map(String::as_str).collect();
    let truth = server_truth(email, &names).await;
    let expected: usize = appended.values().map(Vec::len).sum();
    assert_eq!(
        truth.len(),
        expected,
        "Dovecot does not hold what was appended"
    );

    let (seen, message_ids) = listed(server, token, id).await;
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "listed more than once: {twice:?}");
    let missing: Vec<_> = truth
        .keys()
        .filter(|k| !seen.contains_key(*k))
        .take(20)
        .collect();
    assert!(
        missing.is_empty(),
        "missing from the API (first 20): {missing:?}"
    );
    let extra: Vec<_> = seen
        .keys()
        .filter(|k| !truth.contains_key(*k))
        .take(20)
        .collect();
    assert!(extra.is_empty(), "listed but not on the server: {extra:?}");
    for (mailbox, messages) in appended {
        for (uid, message) in (1u32..).zip(messages) {
            let key = (mailbox.clone(), uid);
            assert_eq!(message_ids.get(&key), Some(&message.message_id), "{key:?}");
        }
    }

    let new_mail = new_mail_events(server, token, id).await;
    assert_eq!(new_mail, truth, "one message.new event per message");
}

#[tokio::test]
async fn issue_4_kill_9_twice_mid_initial_sync_then_restart_ends_with_exactly_the_servers_messages()
{
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let email = unique_email("crash-sync");
    let body = password_account_body(&email, PASSWORD);
    let appended = fill(&email, &[("INBOX", 12_000), ("Archive", 8_000)]).await;
    eprintln!("filled 20,000 messages in {:?}", started.elapsed());

    let server = Postern::start(dir.path(), ENV).await;
    let admin = server.admin_token.clone().unwrap();
    let id = create_account(&server, &admin, &body).await;
    // First kill: a few batches into whichever mailbox the pass takes first.
    let before = wait_for_account(
        &server,
        &admin,
        &id,
        MID_SYNC,
        "mid-sync progress",
        |shown| mid_sync(shown, 2_000, None).is_some(),
    )
    .await;
    server.kill_hard().await;
    let first = mid_sync(&before, 2_000, None).unwrap();
    eprintln!(
        "first kill at {:?}, in {first}: {}",
        started.elapsed(),
        before["sync"]["mailboxes"]
    );

    // Second kill: on the restarted server, inside the other mailbox.
    let server = Postern::start(dir.path(), ENV).await;
    let before = wait_for_account(
        &server,
        &admin,
        &id,
        MID_SYNC,
        "mid-sync progress in another mailbox",
        |shown| mid_sync(shown, 1_000, Some(&first)).is_some(),
    )
    .await;
    server.kill_hard().await;
    let second = mid_sync(&before, 1_000, Some(&first)).unwrap();
    eprintln!(
        "second kill at {:?}, in {second}: {}",
        started.elapsed(),
        before["sync"]["mailboxes"]
    );

    let server = Postern::start(dir.path(), ENV).await;
    let mailboxes = wait_until_synced(&server, &admin, &id, Duration::from_secs(30)).await;
    eprintln!("synced at {:?}: {mailboxes}", started.elapsed());
    let shown = account(&server, &admin, &id).await;
    assert_eq!(shown["state"], "connected", "{shown}");
    assert_exactly_the_servers(&server, &admin, &id, &email, &appended).await;
    server.stop().await;
    eprintln!("checked at {:?}", started.elapsed());
}

/// The account's IMAP endpoint moved to `port` on localhost with `security`.
fn through_proxy(mut body: Value, port: u16, security: &str) -> Value {
    body["imap"]["port"] = json!(port);
    body["imap"]["security"] = json!(security);
    if security == "none" {
        body["imap"].as_object_mut().unwrap().remove("ca_file");
    }
    body
}

#[tokio::test]
async fn issue_4_a_connection_dropped_mid_fetch_is_survived_with_exactly_the_servers_messages() {
    let dir = tempfile::tempdir().unwrap();
    let email = unique_email("crash-cut");
    let proxy = FaultProxy::start(dovecot().imaps_addr()).await.unwrap();
    let body = through_proxy(password_account_body(&email, PASSWORD), proxy.port(), "tls");
    let appended = fill(&email, &[("INBOX", 3_000)]).await;
    let bytes: usize = appended["INBOX"].iter().map(|m| m.raw.len()).sum();
    assert!(
        bytes > 2_000_000,
        "the cut at 1 MB must land inside the FETCHes: {bytes} B"
    );

    let server = Postern::start(dir.path(), ENV).await;
    let admin = server.admin_token.clone().unwrap();
    // ~1 KB a message: 1 MB in is the third batch of 500 of the first FETCHes, well past the
    // greeting, login, LIST and SELECT (a few KB), and well before the end (~3 MB).
    proxy.cut_once_after_server_bytes(1_000_000);
    let id = create_account(&server, &admin, &body).await;
    let shown = wait_for_account(
        &server,
        &admin,
        &id,
        Duration::from_secs(20),
        "a reconnection",
        |shown| shown["sync"]["reconnects"].as_u64() >= Some(1),
    )
    .await;
    assert_eq!(proxy.byte_cuts(), 1, "{shown}");
    wait_until_synced(&server, &admin, &id, Duration::from_secs(20)).await;
    let shown = account(&server, &admin, &id).await;
    assert_eq!(shown["state"], "connected", "{shown}");
    assert!(proxy.accepted() >= 2, "no new connection after the cut");
    assert_exactly_the_servers(&server, &admin, &id, &email, &appended).await;
    server.stop().await;
}

#[tokio::test]
async fn issue_4_a_mailbox_deleted_between_list_and_select_is_skipped_and_the_rest_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let email = unique_email("crash-gone");
    // Plain text on loopback, so the proxy can see the SELECT go by.
    let proxy = FaultProxy::start(dovecot().imap_addr()).await.unwrap();
    let body = through_proxy(
        password_account_body(&email, PASSWORD),
        proxy.port(),
        "none",
    );
    let appended = fill(&email, &[("INBOX", 20), ("Doomed", 20), ("Keep", 20)]).await;
    let gone_email = email.clone();
    proxy.hold_client_bytes_until(
        "SELECT \"Doomed\"",
        Box::new(move || {
            Box::pin(async move {
                let mut imap = ImapAppender::login(dovecot().imap_addr(), &gone_email, PASSWORD)
                    .await
                    .unwrap();
                imap.delete_mailbox("Doomed").await.unwrap();
                imap.logout().await.unwrap();
            })
        }),
    );

    let server = Postern::start(
        dir.path(),
        &[ENV, &[("POSTERN_SYNC_RESYNC_INTERVAL_SECS", "10")]].concat(),
    )
    .await;
    let admin = server.admin_token.clone().unwrap();
    let id = create_account(&server, &admin, &body).await;
    let mailboxes = wait_until_synced(&server, &admin, &id, Duration::from_secs(20)).await;
    assert_eq!(proxy.holds_run(), 1, "the SELECT of Doomed never went by");
    let shown = account(&server, &admin, &id).await;
    assert_eq!(shown["state"], "connected", "{shown}");
    let names: Vec<&str> = mailboxes["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|n| **n == "Doomed").count(),
        0,
        "{mailboxes}"
    );
    let deleted = events(&server, &admin, &id, "mailbox.deleted").await;
    assert!(
        deleted.iter().any(|e| e["data"]["mailbox"] == "Doomed"),
        "{deleted:?}"
    );
    let kept: Appended = appended
        .into_iter()
        .filter(|(name, _)| name != "Doomed")
        .collect();
    assert_exactly_the_servers(&server, &admin, &id, &email, &kept).await;
    server.stop().await;
}

/// Deliberately broken messages, by subject: each must be listed, none may stop the account.
const BROKEN: &[(&str, &[u8])] = &[
    (
        "charset",
        b"From: a@example.com\r\nSubject: charset\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\nHello\r\n",
    ),
    (
        "mislabelled",
        b"From: a@example.com\r\nSubject: mislabelled\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n\x1b$B\xff\xfe\x1b(B broken escape\r\n",
    ),
    (
        "truncated",
        b"From: a@example.com\r\nSubject: truncated\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--zz\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x",
    ),
    (
        "8-bit headers",
        b"From: \xc9ric <eric@example.com>\r\nSubject: r\xe9union \xe0 midi\r\n\r\nCorps du message\r\n",
    ),
    ("no header", b"just some text without any header\r\nand a second line\r\n"),
    (
        "encodings",
        b"From: a@example.com\r\nSubject: encodings\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nbroken =ZZ soft=\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--b--\r\n",
    ),
    (
        "no boundary",
        b"From: a@example.com\r\nSubject: no boundary\r\nContent-Type: multipart/alternative\r\n\r\nwhat now?\r\n",
    ),
    (
        "bad utf8",
        b"From: a@example.com\r\nSubject: bad utf8\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xff\xfe\xfd bytes\r\n",
    ),
];
const BIG_ATTACHMENT: usize = 30 * 1024 * 1024;

#[tokio::test]
async fn issue_4_a_mailbox_of_broken_messages_and_a_30_mb_attachment_syncs_with_each_listed() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let email = unique_email("crash-broken");
    let body = password_account_body(&email, PASSWORD);
    let big: Vec<u8> = (0..BIG_ATTACHMENT as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut raw: Vec<Vec<u8>> = BROKEN.iter().map(|(_, m)| m.to_vec()).collect();
    let large = MailGen::new(77, &email).message_with_attachment(
        "big.bin",
        "application/octet-stream",
        big.clone(),
    );
    raw.push(large.raw.clone());
    imap_fill(dovecot().imap_addr(), &email, PASSWORD, "Broken", &raw)
        .await
        .unwrap();
    let inbox = MailGen::new(78, &email).messages(3);
    let inbox_raw: Vec<Vec<u8>> = inbox.iter().map(|m| m.raw.clone()).collect();
    imap_fill(dovecot().imap_addr(), &email, PASSWORD, "INBOX", &inbox_raw)
        .await
        .unwrap();
    eprintln!(
        "filled in {:?} ({} MB message)",
        started.elapsed(),
        large.raw.len() >> 20
    );

    let server = Postern::start(dir.path(), ENV).await;
    let admin = server.admin_token.clone().unwrap();
    let id = create_account(&server, &admin, &body).await;
    wait_until_synced(&server, &admin, &id, Duration::from_secs(30)).await;
    eprintln!("synced at {:?}", started.elapsed());
    let truth = server_truth(&email, &["Broken", "INBOX"]).await;
    let (seen, _) = listed(&server, &admin, &id).await;
    assert_eq!(seen, truth, "each message listed once");

    let page = json_of(
        &server,
        &admin,
        &format!("/v1/accounts/{id}/messages?mailbox=Broken&limit=50"),
    )
    .await;
    let messages = page["messages"].as_array().unwrap();
    let by_uid: BTreeMap<u64, &Value> = messages
        .iter()
        .map(|m| (m["uid"].as_u64().unwrap(), m))
        .collect();
    for (uid, (name, _)) in (1u64..).zip(BROKEN) {
        let message = by_uid[&uid];
        assert_eq!(message["body_stored"], true, "{name}: {message}");
        eprintln!(
            "{name}: subject {} problems {}",
            message["subject"], message["parse_problems"]
        );
    }
    let problems = |uid: u64| {
        by_uid[&uid]["parse_problems"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        problems(3).contains("boundary"),
        "truncated: {}",
        problems(3)
    );
    assert!(
        problems(4).contains("8-bit"),
        "8-bit headers: {}",
        problems(4)
    );
    assert_eq!(by_uid[&1]["snippet"], "Hello");

    let big_uid = BROKEN.len() as u64 + 1;
    let listed_big = by_uid[&big_uid];
    assert_eq!(listed_big["subject"], "big.bin attached", "{listed_big}");
    let attachment = &listed_big["attachments"][0];
    assert_eq!(attachment["filename"], "big.bin", "{listed_big}");
    assert_eq!(attachment["size"], BIG_ATTACHMENT, "{listed_big}");
    let message_id = listed_big["id"].as_i64().unwrap();
    let part = attachment["part"].as_str().unwrap();
    let download = server
        .get(
            &format!("/v1/accounts/{id}/messages/{message_id}/attachments/{part}"),
            Some(&admin),
        )
        .await;
    assert_eq!(download.status(), 200);
    let bytes = download.bytes().await.unwrap();
    assert!(
        bytes.as_ref() == big.as_slice(),
        "the 30 MB attachment came back altered ({} bytes)",
        bytes.len()
    );

    // The account still works: new mail arrives while it idles.
    let late = MailGen::new(79, &email).message();
    lmtp_deliver(
        dovecot().lmtp_addr(),
        &email,
        std::slice::from_ref(&late.raw),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (seen, ids) = listed(&server, &admin, &id).await;
        if ids.values().any(|m| *m == late.message_id) {
            assert_eq!(seen.len(), truth.len() + 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new mail did not arrive after the broken mailbox"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = account(&server, &admin, &id).await;
    assert_eq!(shown["state"], "connected", "{shown}");
    assert_eq!(shown["sync"]["last_error"], Value::Null, "{shown}");
    server.stop().await;
    eprintln!("done at {:?}", started.elapsed());
}
