//! The sync pipeline through the real binary: an account's supervisor syncs its mailbox, new mail
//! delivered by LMTP shows up in the message API and the event stream, attachments download.

use crate::support::{Postern, dovecot};
use crate::support::{create_account, password_account_body, unique_email, wait_for_listing};
use postern_testkit::mailgen::lmtp_deliver;
use serde_json::Value;
use std::time::Duration;

const MESSAGE: &str = "From: Ada <ada@example.test>\r\nTo: {to}\r\nSubject: Figures for {to}\r\n\
Message-ID: <figures-{to}>\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
The figures are attached.\r\n--b1\r\nContent-Type: text/csv; name=figures.csv\r\n\
Content-Disposition: attachment; filename=figures.csv\r\nContent-Transfer-Encoding: base64\r\n\r\nYSxiCjEsMgo=\r\n--b1--\r\n";

#[tokio::test]
async fn delivered_mail_appears_in_the_api_with_its_event_and_attachment() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[("POSTERN_SYNC_BODIES", "full")]).await;
    let admin = server.admin_token.clone().unwrap();
    let email = unique_email("synced");
    let body = password_account_body(&email, "sync-pw");
    let first = MESSAGE.replace("{to}", &email);
    lmtp_deliver(dovecot().lmtp_addr(), &email, &[first.into_bytes()])
        .await
        .unwrap();
    let id = create_account(&server, &admin, &body).await;

    // The initial sync brings the message that was already there.
    let listed = wait_for_listing(&server, &admin, &id, "INBOX", |m| !m.is_empty()).await;
    let message = &listed[0];
    assert_eq!(
        message["subject"],
        format!("Figures for {email}"),
        "{listed:?}"
    );
    assert_eq!(message["attachments"][0]["filename"], "figures.csv");

    // New mail while the supervisor idles.
    let second = MESSAGE
        .replace("{to}", &email)
        .replace("Figures for", "More figures for")
        .replace("<figures-", "<more-");
    lmtp_deliver(dovecot().lmtp_addr(), &email, &[second.into_bytes()])
        .await
        .unwrap();
    let listed = wait_for_listing(&server, &admin, &id, "INBOX", |m| m.len() >= 2).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(
        listed[0]["subject"],
        format!("More figures for {email}"),
        "newest first"
    );
    let events: Value = server
        .get("/v1/events?after=0", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let new_mail = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message.new" && e["account_id"] == id.as_str())
        .count();
    assert_eq!(new_mail, 2, "{events}");

    let message_id = listed[0]["id"].as_i64().unwrap();
    let detail: Value = server
        .get(
            &format!("/v1/accounts/{id}/messages/{message_id}"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        detail["text"].as_str().map(str::trim),
        Some("The figures are attached."),
        "{detail}"
    );
    let part = detail["attachments"][0]["part"].as_str().unwrap();
    let attachment = server
        .get(
            &format!("/v1/accounts/{id}/messages/{message_id}/attachments/{part}"),
            Some(&admin),
        )
        .await;
    assert_eq!(attachment.headers()["content-type"], "text/csv");
    assert_eq!(attachment.bytes().await.unwrap().as_ref(), b"a,b\n1,2\n");
    let raw = server
        .get(
            &format!("/v1/accounts/{id}/messages/{message_id}/raw"),
            Some(&admin),
        )
        .await;
    assert_eq!(raw.headers()["content-type"], "message/rfc822");

    // Local full-text search finds it by a word of its body (indexed because bodies are stored).
    let found: Value = server
        .get(&format!("/v1/search?q=attached&account={id}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        found["messages"].as_array().map(Vec::len),
        Some(2),
        "{found}"
    );
    let nothing: Value = server
        .get(&format!("/v1/search?q=zebra&account={id}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        nothing["messages"].as_array().map(Vec::len),
        Some(0),
        "{nothing}"
    );

    let shown: Value = server
        .get(&format!("/v1/accounts/{id}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["sync"]["activity"], "idling", "{shown}");
    let mailboxes: Value = server
        .get(&format!("/v1/accounts/{id}/mailboxes"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let inbox = mailboxes["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "INBOX")
        .unwrap()
        .clone();
    assert_eq!(inbox["stored"], 2, "{mailboxes}");
    assert_eq!(inbox["role"], "inbox");
    server.stop().await;
}

#[tokio::test]
async fn the_cli_shows_sync_progress_per_mailbox_and_watch_ends_when_it_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let email = unique_email("progress");
    let body = password_account_body(&email, "progress-pw");
    let messages: Vec<Vec<u8>> = (0..3)
        .map(|n| {
            MESSAGE
                .replace("{to}", &email)
                .replace("<figures-", &format!("<figures-{n}-"))
                .into_bytes()
        })
        .collect();
    lmtp_deliver(dovecot().lmtp_addr(), &email, &messages)
        .await
        .unwrap();
    let id = create_account(&server, &admin, &body).await;
    wait_for_listing(&server, &admin, &id, "INBOX", |m| m.len() >= 3).await;

    // `--watch` follows until every mailbox is done, then prints the final figures and exits.
    let watch = tokio::task::spawn_blocking({
        let (dir, id) = (dir.path().to_owned(), id.clone());
        move || crate::support::run_postern(&dir, &["account", "progress", &id, "--watch"], &[])
    });
    let output = tokio::time::timeout(Duration::from_secs(20), watch)
        .await
        .expect("--watch did not end once the sync was done")
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let inbox = text
        .lines()
        .find(|line| line.starts_with("INBOX"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(inbox.contains("3 / 3") && inbox.ends_with("done"), "{text}");
    assert!(
        text.lines()
            .last()
            .is_some_and(|line| line.starts_with("total") && line.ends_with("done")),
        "{text}"
    );

    let once = crate::support::run_postern(dir.path(), &["account", "progress", "not-an-id"], &[]);
    assert!(!once.status.success());
    assert!(String::from_utf8_lossy(&once.stderr).contains("is not an account id"));
    server.stop().await;
}
