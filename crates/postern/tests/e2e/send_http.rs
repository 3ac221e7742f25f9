//! Sending over HTTP through the real binary: the outbox queues before answering, the workers send
//! through Dovecot's submission service, and the sink receives exactly what was asked.

use crate::support::Postern;
use crate::support::{create_account, password_account_body, unique_email};
use postern_testkit::smtp_sink::SmtpSink;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn sender_account(server: &Postern, admin: &str) -> (String, String) {
    let email = unique_email("sender");
    let id = create_account(server, admin, &password_account_body(&email, "send-pw")).await;
    (id, email)
}

#[tokio::test]
async fn a_send_request_is_queued_sent_and_arrives_with_bcc_hidden_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let (id, email) = sender_account(&server, &admin).await;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let to = format!("to-{nanos:x}@example.test");
    let bcc = format!("bcc-{nanos:x}@example.test");
    let request = json!({
        "to": [to], "bcc": [bcc], "subject": "Quarterly figures",
        "text": "Attached.",
        "attachments": [{"filename": "figures.csv", "content_type": "text/csv", "content_base64": "YSxiCjEsMgo="}],
    });
    let send = |key: &'static str| {
        server
            .client
            .post(server.url(&format!("/v1/accounts/{id}/send")))
            .bearer_auth(&admin)
            .header("idempotency-key", key)
            .json(&request)
            .send()
    };
    let first = send("report-1").await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "queued");
    assert_eq!(first["created"], true);

    let sink = SmtpSink::shared().unwrap();
    let arrived = sink
        .wait_for_rcpt(&bcc, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(arrived.mail_from, email);
    assert!(arrived.rcpt_to.contains(&to) && arrived.rcpt_to.contains(&bcc));
    let data = String::from_utf8_lossy(&arrived.data);
    assert!(
        !data.to_ascii_lowercase().contains("bcc:") && !data.contains(&bcc),
        "Bcc leaked:\n{data}"
    );
    assert!(
        data.contains("Subject: Quarterly figures") && data.contains("figures.csv"),
        "{data}"
    );

    let replay: Value = send("report-1").await.unwrap().json().await.unwrap();
    assert_eq!(replay["id"], first["id"]);
    assert_eq!(replay["created"], false);
    // The sink has it; the outbox records the server's acceptance right after.
    let item_id = first["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let item = loop {
        let item: Value = server
            .get(&format!("/v1/outbox/{item_id}"), Some(&admin))
            .await
            .json()
            .await
            .unwrap();
        if item["status"] != "sending" || std::time::Instant::now() > deadline {
            break item;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(item["status"], "sent", "{item}");
    let recipients = item["recipients"].as_array().unwrap();
    assert!(
        recipients.iter().all(|r| r["status"] == "accepted"),
        "{item}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let copies = sink
        .messages()
        .iter()
        .filter(|m| m.rcpt_to.contains(&bcc))
        .count();
    assert_eq!(copies, 1, "the idempotent replay sent a second copy");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_send_request_names_its_fields_and_queues_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let (id, _) = sender_account(&server, &admin).await;
    let bad = json!({"to": ["not an address"], "subject": "x", "attachments": [{"filename": "a", "content_type": "text/plain", "content_base64": "%%%"}]});
    let response = server
        .send_json(
            Method::POST,
            &format!("/v1/accounts/{id}/send"),
            &admin,
            &bad,
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(fields.iter().any(|f| f.starts_with("to")), "{body}");
    assert!(
        fields.iter().any(|f| f.starts_with("attachments")),
        "{body}"
    );
    let listed: Value = server
        .get(&format!("/v1/outbox?account={id}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 0);
    server.stop().await;
}

/// Waits until the outbox item is queued for about a day from now: held by the daily limit.
async fn wait_until_held_for_a_day(server: &Postern, admin: &str, item_id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let item: Value = server
            .get(&format!("/v1/outbox/{item_id}"), Some(admin))
            .await
            .json()
            .await
            .unwrap();
        let due = item["next_attempt_at"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok());
        let tomorrow_ish = chrono::Utc::now() + chrono::TimeDelta::hours(23);
        if item["status"] == "queued" && due.is_some_and(|due| due > tomorrow_ish) {
            assert_eq!(item["attempts"], 0, "{item:#}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "not held: {item:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn raising_the_daily_limit_over_http_sends_what_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let (id, _) = sender_account(&server, &admin).await;
    let set_daily_limit = |limit: u32| {
        server
            .client
            .patch(server.url(&format!("/v1/accounts/{id}")))
            .bearer_auth(&admin)
            .json(&json!({"settings": {"send_daily_limit": limit}}))
            .send()
    };
    assert_eq!(set_daily_limit(1).await.unwrap().status(), 200);
    let send = |to: String| {
        server
            .client
            .post(server.url(&format!("/v1/accounts/{id}/send")))
            .bearer_auth(&admin)
            .json(&json!({"to": [to], "subject": "Counted", "text": "One of the day's."}))
            .send()
    };
    let sink = SmtpSink::shared().unwrap();
    let first_to = unique_email("first-of-day");
    assert_eq!(send(first_to.clone()).await.unwrap().status(), 202);
    sink.wait_for_rcpt(&first_to, Duration::from_secs(10))
        .await
        .unwrap();
    let second_to = unique_email("held-until-raised");
    let second: Value = send(second_to.clone()).await.unwrap().json().await.unwrap();
    wait_until_held_for_a_day(&server, &admin, second["id"].as_str().unwrap()).await;

    assert_eq!(set_daily_limit(2).await.unwrap().status(), 200);
    let arrived = sink
        .wait_for_rcpt(&second_to, Duration::from_secs(10))
        .await;
    assert!(
        arrived.is_ok(),
        "the held message was not sent: {arrived:?}"
    );
}
