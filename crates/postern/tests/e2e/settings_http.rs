//! Per-account settings through the real binary: an account created to sync only INBOX stores
//! only INBOX although its other mailbox holds mail, widening the selection with `PATCH` syncs the
//! other mailbox at once, and a wrong `PATCH` or `POST` names each wrong field and changes nothing.

use crate::support::{Postern, dovecot};
use crate::support::{create_account, password_account_body, unique_email};
use postern_testkit::mailgen::{MailGen, imap_fill, lmtp_deliver};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const PASSWORD: &str = "settings-pw";

async fn json_of(server: &Postern, token: &str, path: &str) -> Value {
    server.get(path, Some(token)).await.json().await.unwrap()
}

/// The account's stored mailboxes: name → messages stored.
async fn mailboxes(server: &Postern, token: &str, id: &str) -> Vec<(String, i64)> {
    let listed = json_of(server, token, &format!("/v1/accounts/{id}/mailboxes")).await;
    listed["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["name"].as_str().unwrap().to_owned();
            (name, m["stored"].as_i64().unwrap_or(0))
        })
        .collect()
}

/// Waits until `done` holds for the account's mailboxes (or 10 s pass) and returns them.
async fn wait_for_mailboxes(
    server: &Postern,
    token: &str,
    id: &str,
    done: impl Fn(&[(String, i64)]) -> bool,
) -> Vec<(String, i64)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = mailboxes(server, token, id).await;
        if done(&listed) || Instant::now() > deadline {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the account's supervisor idles: its first full pass is over.
async fn wait_until_idle(server: &Postern, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = json_of(server, token, &format!("/v1/accounts/{id}")).await;
        if shown["sync"]["activity"] == "idling" || Instant::now() > deadline {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn patch(server: &Postern, token: &str, id: &str, body: &Value) -> (u16, Value) {
    let response = server
        .send_json(Method::PATCH, &format!("/v1/accounts/{id}"), token, body)
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The fields a 400 names, sorted.
fn wrong_fields(body: &Value) -> BTreeSet<String> {
    body["error"]["details"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no field details: {body}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_account_that_syncs_only_inbox_stores_only_inbox_until_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let email = unique_email("inbox-only");
    let mut body = password_account_body(&email, PASSWORD);
    body["settings"] = json!({"sync_mailboxes": ["INBOX"]});
    let projects: Vec<Vec<u8>> = MailGen::new(7, &email)
        .with_attachment_ratio(0.0)
        .raw_messages(2);
    imap_fill(
        dovecot().imap_addr(),
        &email,
        PASSWORD,
        "Projects",
        &projects,
    )
    .await
    .unwrap();
    let inbox = MailGen::new(8, &email)
        .with_attachment_ratio(0.0)
        .raw_messages(1);
    lmtp_deliver(dovecot().lmtp_addr(), &email, &inbox)
        .await
        .unwrap();

    let response = server
        .send_json(Method::POST, "/v1/accounts", &admin, &body)
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["state"], "connected", "{created}");
    assert_eq!(
        created["account"]["settings"]["sync_mailboxes"],
        json!(["INBOX"])
    );
    let id = created["id"].as_str().unwrap().to_owned();

    let shown = wait_until_idle(&server, &admin, &id).await;
    assert_eq!(shown["sync"]["activity"], "idling", "{shown}");
    assert_eq!(shown["settings"]["sync_mailboxes"], json!(["INBOX"]));
    assert_eq!(
        shown["effective_settings"]["sync_mailboxes"],
        json!(["INBOX"])
    );
    // localhost is no known provider: no preset, no limits, a Sent copy.
    assert_eq!(shown["effective_settings"]["provider_preset"], Value::Null);
    assert_eq!(shown["effective_settings"]["send_daily_limit"], Value::Null);
    assert_eq!(shown["effective_settings"]["copies_to_sent"], true);
    assert_eq!(
        mailboxes(&server, &admin, &id).await,
        [("INBOX".to_owned(), 1)],
        "only INBOX is stored, although Projects holds mail"
    );

    // Widening the selection applies at once: the supervisor restarts and syncs Projects.
    let (status, changed) = patch(
        &server,
        &admin,
        &id,
        &json!({"settings": {"sync_mailboxes": ["INBOX", "Proj*"]}}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        changed["settings"]["sync_mailboxes"],
        json!(["INBOX", "Proj*"])
    );
    let listed = wait_for_mailboxes(&server, &admin, &id, |listed| {
        listed
            .iter()
            .any(|(name, stored)| name == "Projects" && *stored == 2)
    })
    .await;
    let names: BTreeSet<&str> = listed.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["INBOX", "Projects"]), "{listed:?}");
    server.stop().await;
}

#[tokio::test]
async fn wrong_settings_name_each_field_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let body = password_account_body(&unique_email("tuned"), PASSWORD);
    let id = create_account(&server, &admin, &body).await;

    let (status, error) = patch(
        &server,
        &admin,
        &id,
        &json!({
            "settings": {"send_rate_per_minute": 0, "sent_copy": "maybe", "daily": 5,
                         "sync_mailboxes": []},
            "name": "renamed",
        }),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "invalid_request");
    assert_eq!(
        wrong_fields(&error),
        BTreeSet::from([
            "name".to_owned(),
            "settings.daily".to_owned(),
            "settings.send_rate_per_minute".to_owned(),
            "settings.sent_copy".to_owned(),
            "settings.sync_mailboxes".to_owned(),
        ])
    );
    let (status, error) = patch(&server, &admin, &id, &json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(
        wrong_fields(&error),
        BTreeSet::from(["settings".to_owned()])
    );
    let (status, error) = patch(&server, &admin, &id, &json!({"settings": [1]})).await;
    assert_eq!(status, 400);
    assert_eq!(
        wrong_fields(&error),
        BTreeSet::from(["settings".to_owned()])
    );
    let shown = json_of(&server, &admin, &format!("/v1/accounts/{id}")).await;
    assert_eq!(
        shown["settings"],
        json!({"sync_mailboxes": null, "sent_copy": null, "send_rate_per_minute": null,
               "send_daily_limit": null}),
        "nothing was changed"
    );

    // A good patch sets what it names; a later one with null resets only that.
    let (status, changed) = patch(
        &server,
        &admin,
        &id,
        &json!({"settings": {"send_daily_limit": 2000, "sent_copy": "never"}}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["settings"]["send_daily_limit"], 2000);
    assert_eq!(changed["effective_settings"]["send_daily_limit"], 2000);
    assert_eq!(changed["effective_settings"]["copies_to_sent"], false);
    let (status, changed) = patch(
        &server,
        &admin,
        &id,
        &json!({"settings": {"sent_copy": null}}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["settings"]["sent_copy"], Value::Null);
    assert_eq!(changed["settings"]["send_daily_limit"], 2000);
    assert_eq!(changed["effective_settings"]["copies_to_sent"], true);

    let audit = json_of(
        &server,
        &admin,
        &format!("/v1/audit?action=account.settings_changed&account={id}"),
    )
    .await;
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(2),
        "{audit}"
    );

    let unknown = "01a1feea-0000-7000-8000-000000000000";
    let (status, _) = patch(&server, &admin, unknown, &json!({"settings": {}})).await;
    assert_eq!(status, 404);

    // Creating with wrong settings stores nothing.
    let before = json_of(&server, &admin, "/v1/accounts").await["accounts"]
        .as_array()
        .unwrap()
        .len();
    let mut body = password_account_body(&unique_email("refused"), PASSWORD);
    body["settings"] = json!({"send_daily_limit": 0, "sent_copy": "always"});
    let response = server
        .send_json(Method::POST, "/v1/accounts", &admin, &body)
        .await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(
        wrong_fields(&error),
        BTreeSet::from(["settings.send_daily_limit".to_owned()])
    );
    let after = json_of(&server, &admin, "/v1/accounts").await["accounts"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before);
    server.stop().await;
}
