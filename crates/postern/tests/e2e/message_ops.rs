//! Message operations through the real binary, checked on the shared Dovecot with a separate IMAP
//! client: bodies fetched on demand and kept, flags changed, messages moved, trashed and expunged
//! (one UID only), IMAP SEARCH on the server; bad flags and other accounts' ids refused.

use crate::support::{Postern, dovecot, new_token};
use crate::support::{create_account, password_account_body, unique_email, wait_for_listing};
use postern_sync::{ImapEndpoint, ImapSession, Login, Security, Timeouts, authenticate, connect};
use postern_testkit::mailgen::lmtp_deliver;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const PASSWORD: &str = "ops-pw";

/// A message with a unique subject, Message-ID and body word.
fn message(to: &str, tag: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Ada <ada@example.test>\r\nTo: {to}\r\nSubject: {tag}\r\nMessage-ID: <{tag}@example.test>\r\n\
         Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         {body}\r\n--b1\r\nContent-Type: text/csv; name=figures.csv\r\n\
         Content-Disposition: attachment; filename=figures.csv\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         YSxiCjEsMgo=\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// A fresh Dovecot user with `subjects` delivered to its INBOX, connected as a password account
/// of `server`; returns the email and the account id once every message is listed.
async fn account_with(
    server: &Postern,
    admin: &str,
    name: &str,
    subjects: &[&str],
) -> (String, String) {
    let email = unique_email(name);
    let body = password_account_body(&email, PASSWORD);
    let messages: Vec<Vec<u8>> = subjects
        .iter()
        .map(|subject| message(&email, subject, &format!("Body of {subject}.")))
        .collect();
    lmtp_deliver(dovecot().lmtp_addr(), &email, &messages)
        .await
        .unwrap();
    let id = create_account(server, admin, &body).await;
    let listed = wait_for_listing(server, admin, &id, "INBOX", |messages| {
        messages.len() == subjects.len()
    })
    .await;
    assert_eq!(listed.len(), subjects.len(), "{listed:?}");
    (email, id)
}

fn by_subject<'a>(messages: &'a [Value], subject: &str) -> Option<&'a Value> {
    messages.iter().find(|m| m["subject"] == subject)
}

async fn listed(server: &Postern, token: &str, id: &str, mailbox: &str) -> Vec<Value> {
    wait_for_listing(server, token, id, mailbox, |_| true).await
}

async fn events_of(server: &Postern, admin: &str, kind: &str, message_id: i64) -> Vec<Value> {
    let events: Value = server
        .get("/v1/events?after=0&limit=1000", Some(admin))
        .await
        .json()
        .await
        .unwrap();
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind && e["data"]["message_id"] == message_id)
        .cloned()
        .collect()
}

/// Another IMAP client on the same Dovecot account.
async fn imap_client(email: &str) -> ImapSession {
    let endpoint = ImapEndpoint::new("localhost", dovecot().imaps_addr().port(), Security::Tls)
        .with_ca_file(dovecot().ca_file());
    let client = connect(&endpoint, &Timeouts::default()).await.unwrap();
    let login = Login::Password {
        user: email.to_owned(),
        password: PASSWORD.to_owned().into(),
    };
    authenticate(client, &login).await.unwrap()
}

/// The UIDs of `mailbox` matching `criteria`, as another client sees them.
async fn search(client: &mut ImapSession, mailbox: &str, criteria: &str) -> HashSet<u32> {
    client.inner_mut().examine(mailbox).await.unwrap();
    client.inner_mut().uid_search(criteria).await.unwrap()
}

/// `DELETE` of a message, with `query` (`""` or `?expunge=true`).
async fn delete(
    server: &Postern,
    token: &str,
    id: &str,
    mid: i64,
    query: &str,
) -> reqwest::Response {
    let url = server.url(&format!("/v1/accounts/{id}/messages/{mid}{query}"));
    server
        .client
        .delete(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Successful logins of `email` in Dovecot's log so far.
fn logins(email: &str) -> usize {
    let needle = format!("Login: user=<{email}>");
    dovecot().log().matches(&needle).count()
}

#[tokio::test]
async fn a_body_is_fetched_on_demand_once_then_served_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[("POSTERN_SYNC_BODIES", "on_demand")]).await;
    let admin = server.admin_token.clone().unwrap();
    let (email, id) = account_with(&server, &admin, "ondemand", &["On demand"]).await;
    let summary = listed(&server, &admin, &id, "INBOX").await[0].clone();
    assert_eq!(
        summary["body_stored"], false,
        "on_demand syncs headers only: {summary}"
    );
    let mid = summary["id"].as_i64().unwrap();

    let before = logins(&email);
    let detail: Value = server
        .get(&format!("/v1/accounts/{id}/messages/{mid}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        detail["text"].as_str().map(str::trim),
        Some("Body of On demand."),
        "{detail}"
    );
    let summary = listed(&server, &admin, &id, "INBOX").await[0].clone();
    assert_eq!(
        summary["body_stored"], true,
        "the fetched body is kept: {summary}"
    );
    assert_eq!(
        summary["flags"],
        json!([]),
        "BODY.PEEK leaves \\Seen alone: {summary}"
    );
    // Dovecot logs each login as it happens; give its log process a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_first = logins(&email);
    assert_eq!(after_first, before + 1, "the first read opened one session");

    let raw = server
        .get(
            &format!("/v1/accounts/{id}/messages/{mid}/raw"),
            Some(&admin),
        )
        .await;
    assert_eq!(raw.status(), StatusCode::OK);
    let raw = String::from_utf8(raw.bytes().await.unwrap().to_vec()).unwrap();
    assert!(raw.contains("Subject: On demand\r\n"), "{raw}");
    let part = detail["attachments"][0]["part"].as_str().unwrap();
    let attachment = server
        .get(
            &format!("/v1/accounts/{id}/messages/{mid}/attachments/{part}"),
            Some(&admin),
        )
        .await;
    assert_eq!(attachment.bytes().await.unwrap().as_ref(), b"a,b\n1,2\n");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        logins(&email),
        after_first,
        "later reads come from the store, no session"
    );
    server.stop().await;
}

#[tokio::test]
async fn flags_change_on_the_server_first_then_here_with_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[("POSTERN_SYNC_BODIES", "on_demand")]).await;
    let admin = server.admin_token.clone().unwrap();
    let (email, id) = account_with(&server, &admin, "flags", &["Flag me"]).await;
    let mid = listed(&server, &admin, &id, "INBOX").await[0]["id"]
        .as_i64()
        .unwrap();
    let path = format!("/v1/accounts/{id}/messages/{mid}");

    let patch = json!({"add_flags": ["\\flagged", "$Work"]});
    let response = server.send_json(Method::PATCH, &path, &admin, &patch).await;
    assert_eq!(response.status(), StatusCode::OK);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["flags"], json!(["$Work", "\\Flagged"]), "{changed}");
    assert_eq!(changed["moved"], false);
    let mut client = imap_client(&email).await;
    let flagged = search(&mut client, "INBOX", "FLAGGED KEYWORD $Work").await;
    assert_eq!(flagged.len(), 1, "the server has both flags");
    let here = listed(&server, &admin, &id, "INBOX").await;
    assert_eq!(here[0]["flags"], json!(["$Work", "\\Flagged"]), "{here:?}");
    let updated = events_of(&server, &admin, "message.updated", mid).await;
    assert_eq!(updated.len(), 1, "exactly one message.updated: {updated:?}");
    assert_eq!(updated[0]["data"]["flags"], json!(["$Work", "\\Flagged"]));

    let patch = json!({"remove_flags": ["\\Flagged"]});
    let changed: Value = server
        .send_json(Method::PATCH, &path, &admin, &patch)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["flags"], json!(["$Work"]), "{changed}");
    assert!(search(&mut client, "INBOX", "FLAGGED").await.is_empty());
    let _ = client.logout().await;

    // Bad input is refused field by field, before anything reaches the server.
    let bad = json!({"add_flags": ["\\Bogus", "ok"], "remove_flags": ["two words", "ok"], "move_to": "Nowhere"});
    let response = server.send_json(Method::PATCH, &path, &admin, &bad).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    let fields: Vec<&str> = error["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "add_flags[0]",
            "remove_flags[0]",
            "remove_flags[1]",
            "move_to"
        ],
        "{error}"
    );
    let nothing = server
        .send_json(Method::PATCH, &path, &admin, &json!({}))
        .await;
    assert_eq!(nothing.status(), StatusCode::BAD_REQUEST);

    // A token that may only read cannot change; another account's id does not find the message.
    let reader = new_token(&server, &admin, &["messages:read"], None).await;
    let reader = reader.as_str();
    let refused = server
        .send_json(
            Method::PATCH,
            &path,
            reader,
            &json!({"add_flags": ["\\Seen"]}),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (_, other) = account_with(&server, &admin, "other", &["Someone else's"]).await;
    let elsewhere = format!("/v1/accounts/{other}/messages/{mid}");
    let response = server
        .send_json(
            Method::PATCH,
            &elsewhere,
            &admin,
            &json!({"add_flags": ["\\Seen"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = server
        .client
        .delete(server.url(&elsewhere))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        server.get(&elsewhere, Some(&admin)).await.status(),
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test]
async fn messages_move_to_archive_and_trash_and_expunge_only_their_own_uid() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[("POSTERN_SYNC_BODIES", "on_demand")]).await;
    let admin = server.admin_token.clone().unwrap();
    let subjects = [
        "Keep for later",
        "Throw away",
        "Expunge me",
        "Marked elsewhere",
    ];
    let (email, id) = account_with(&server, &admin, "moves", &subjects).await;
    let inbox = listed(&server, &admin, &id, "INBOX").await;
    let mid = |subject: &str| by_subject(&inbox, subject).unwrap()["id"].as_i64().unwrap();
    let mut client = imap_client(&email).await;

    // PATCH move_to: gone from INBOX here at once, in Archive on the server, then here too.
    let archived = mid("Keep for later");
    let path = format!("/v1/accounts/{id}/messages/{archived}");
    let changed: Value = server
        .send_json(
            Method::PATCH,
            &path,
            &admin,
            &json!({"add_flags": ["\\Seen"], "move_to": "Archive"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (changed["moved"].clone(), changed["mailbox"]["name"].clone()),
        (json!(true), json!("Archive")),
        "{changed}"
    );
    assert!(
        by_subject(
            &listed(&server, &admin, &id, "INBOX").await,
            "Keep for later"
        )
        .is_none()
    );
    assert_eq!(
        events_of(&server, &admin, "message.deleted", archived)
            .await
            .len(),
        1
    );
    assert_eq!(
        search(&mut client, "Archive", "SEEN SUBJECT \"Keep for later\"")
            .await
            .len(),
        1
    );
    assert!(
        search(&mut client, "INBOX", "SUBJECT \"Keep for later\"")
            .await
            .is_empty()
    );
    let archive = wait_for_listing(&server, &admin, &id, "Archive", |m| {
        by_subject(m, "Keep for later").is_some()
    })
    .await;
    let moved = by_subject(&archive, "Keep for later")
        .unwrap_or_else(|| panic!("not synced into Archive: {archive:?}"));
    assert_eq!(moved["flags"], json!(["\\Seen"]));

    // DELETE: to the Trash; from the Trash: expunged.
    let trashed = mid("Throw away");
    let answer: Value = delete(&server, &admin, &id, trashed, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (answer["action"].clone(), answer["mailbox"]["name"].clone()),
        (json!("moved_to_trash"), json!("Trash")),
        "{answer}"
    );
    assert_eq!(
        search(&mut client, "Trash", "SUBJECT \"Throw away\"")
            .await
            .len(),
        1
    );
    assert!(by_subject(&listed(&server, &admin, &id, "INBOX").await, "Throw away").is_none());
    assert_eq!(
        events_of(&server, &admin, "message.deleted", trashed)
            .await
            .len(),
        1
    );
    let trash = wait_for_listing(&server, &admin, &id, "Trash", |m| {
        by_subject(m, "Throw away").is_some()
    })
    .await;
    let in_trash = by_subject(&trash, "Throw away")
        .unwrap_or_else(|| panic!("not synced into Trash: {trash:?}"))["id"]
        .as_i64()
        .unwrap();
    let answer: Value = delete(&server, &admin, &id, in_trash, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["action"], "expunged", "{answer}");
    assert!(search(&mut client, "Trash", "ALL").await.is_empty());

    // DELETE ?expunge=true removes that UID only: another client's \Deleted message stays.
    client.inner_mut().select("INBOX").await.unwrap();
    client
        .inner_mut()
        .run_command_and_check_ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
        .await
        .unwrap();
    let expunged = mid("Expunge me");
    let response = delete(&server, &admin, &id, expunged, "?expunge=true").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap()["action"],
        "expunged"
    );
    assert!(
        search(&mut client, "INBOX", "SUBJECT \"Expunge me\"")
            .await
            .is_empty()
    );
    let marked = search(&mut client, "INBOX", "DELETED SUBJECT \"Marked elsewhere\"").await;
    assert_eq!(
        marked,
        HashSet::from([4]),
        "the other \\Deleted message survives"
    );
    let inbox_now = listed(&server, &admin, &id, "INBOX").await;
    assert!(
        by_subject(&inbox_now, "Expunge me").is_none(),
        "{inbox_now:?}"
    );
    assert!(
        by_subject(&inbox_now, "Marked elsewhere").is_some(),
        "{inbox_now:?}"
    );
    assert_eq!(
        events_of(&server, &admin, "message.deleted", expunged)
            .await
            .len(),
        1
    );
    let _ = client.logout().await;
    server.stop().await;
}

#[tokio::test]
async fn server_search_finds_messages_by_their_body_text() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[("POSTERN_SYNC_BODIES", "on_demand")]).await;
    let admin = server.admin_token.clone().unwrap();
    let (email, id) = account_with(&server, &admin, "search", &["Plain one", "Other one"]).await;
    let needle = format!("zebra{}", email.len());
    let extra = message(&email, "Striped", &format!("A {needle} crossed the road."));
    let french = message(&email, "Pause", "Un caf\u{e9} noir.");
    lmtp_deliver(dovecot().lmtp_addr(), &email, &[extra, french])
        .await
        .unwrap();
    wait_for_listing(&server, &admin, &id, "INBOX", |m| m.len() == 4).await;

    let found: Value = server
        .get(
            &format!("/v1/accounts/{id}/messages?server_search={needle}"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["messages"][0]["subject"], "Striped", "{found}");
    assert_eq!(found["unsynced_uids"], json!([]));
    assert_eq!(found["mailbox"]["name"], "INBOX");
    // Text that looks like IMAP syntax is searched for as text, not run.
    let tricky: Value = server
        .get(
            &format!("/v1/accounts/{id}/messages?server_search=%22%20OR%20ALL%20%22&mailbox=INBOX"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tricky["total"], 0, "{tricky}");
    // Non-ASCII text goes as a UTF-8 literal.
    let cafe: Value = server
        .get(
            &format!("/v1/accounts/{id}/messages?server_search=caf%C3%A9"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            cafe["total"].clone(),
            cafe["messages"][0]["subject"].clone()
        ),
        (json!(1), json!("Pause")),
        "{cafe}"
    );
    let body_words: Value = server
        .get(
            &format!("/v1/accounts/{id}/messages?server_search=Body%20of&limit=2"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body_words["total"], 2, "{body_words}");
    assert_eq!(body_words["messages"].as_array().unwrap().len(), 2);

    let combined = server
        .get(
            &format!("/v1/accounts/{id}/messages?server_search=x&unseen=true"),
            Some(&admin),
        )
        .await;
    assert_eq!(combined.status(), StatusCode::BAD_REQUEST);
    let blank = server
        .get(
            &format!("/v1/accounts/{id}/messages?server_search=%20"),
            Some(&admin),
        )
        .await;
    assert_eq!(blank.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}
