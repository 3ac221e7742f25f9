//! `/metrics` over HTTP: guarded by the `metrics` scope, valid Prometheus text, and counting requests.

use crate::support::{Postern, metric_sample, new_token};
use crate::support::{create_account, password_account_body, unique_email};
use reqwest::Method;
use serde_json::json;

async fn scrape(server: &Postern, token: &str) -> String {
    let response = server.get("/metrics", Some(token)).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// Checks the exposition format line by line: comments are `# HELP`/`# TYPE`, every other line is
/// `name{labels} value` or `name value` with a number for the value.
fn assert_prometheus_text(body: &str) {
    assert!(
        body.lines().any(|line| line.starts_with("# TYPE ")),
        "{body}"
    );
    for line in body.lines().filter(|line| !line.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                "bad comment: {line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "bad value: {line}");
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                assert!(labels.ends_with('}'), "bad labels: {line}");
                name
            }
            None => series,
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
    }
}

#[tokio::test]
async fn metrics_need_the_scope_parse_as_prometheus_text_and_count_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    assert_eq!(server.get("/metrics", None).await.status(), 401);
    let reader = new_token(&server, &admin, &["accounts:read"], None).await;
    assert_eq!(server.get("/metrics", Some(&reader)).await.status(), 403);
    let scraper = new_token(&server, &admin, &["metrics"], None).await;

    let before = scrape(&server, &scraper).await;
    assert_prometheus_text(&before);
    for state in [
        "pending_authorization",
        "connected",
        "needs_reauth",
        "disabled",
    ] {
        assert!(
            before.contains(&format!("postern_accounts{{state=\"{state}\"}} 0")),
            "{before}"
        );
    }
    assert!(before.contains("# TYPE postern_http_request_duration_seconds histogram"));
    assert!(before.contains("postern_events_total "), "{before}");
    let tokens_ok = ["route=\"/v1/tokens\"", "method=\"GET\"", "status=\"200\""];
    let listed_before = metric_sample(&before, "postern_http_requests_total", &tokens_ok);
    for _ in 0..3 {
        assert_eq!(server.get("/v1/tokens", Some(&admin)).await.status(), 200);
    }
    server
        .get("/v1/tokens/tok_does_not_exist_0123", Some(&admin))
        .await;

    let after = scrape(&server, &scraper).await;
    assert_prometheus_text(&after);
    let listed_after = metric_sample(&after, "postern_http_requests_total", &tokens_ok);
    assert_eq!(listed_after - listed_before, 3.0, "{after}");
    assert!(
        !after.contains("tok_does_not_exist_0123"),
        "a raw path reached a label: {after}"
    );
    let refused = metric_sample(
        &after,
        "postern_http_requests_total",
        &["route=\"/metrics\"", "status=\"403\""],
    );
    assert_eq!(refused, 1.0, "{after}");
    server.stop().await;
}

/// The sum of every `postern_accounts{state=…}` series.
fn accounts_total(body: &str) -> f64 {
    body.lines()
        .filter(|line| line.starts_with("postern_accounts{"))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn events_total(body: &str) -> f64 {
    body.lines()
        .find_map(|line| line.strip_prefix("postern_events_total "))
        .and_then(|value| value.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn account_and_event_gauges_move_when_an_account_connects() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let before = scrape(&server, &admin).await;
    assert_eq!(accounts_total(&before), 0.0, "{before}");
    assert_eq!(events_total(&before), 0.0, "{before}");

    let body = password_account_body(&unique_email("gauged"), "gauge-pw");
    create_account(&server, &admin, &body).await;

    let after = scrape(&server, &admin).await;
    assert_eq!(accounts_total(&after), 1.0, "{after}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let body = scrape(&server, &admin).await;
        if events_total(&body) > 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no event counted: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    server.stop().await;
}

/// Scrapes until `ready` holds for the body (bounded), and returns that body.
async fn scrape_until(
    server: &Postern,
    token: &str,
    what: &str,
    ready: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let body = scrape(server, token).await;
        if ready(&body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never showed: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn sync_connection_and_outbox_figures_move_when_an_account_syncs_and_sends() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let before = scrape(&server, &admin).await;
    assert_eq!(
        metric_sample(&before, "postern_outbox_items", &["status=\"queued\""]),
        0.0
    );
    assert!(before.contains("postern_sync_lag_seconds "), "{before}");

    let email = unique_email("figures");
    let id = create_account(
        &server,
        &admin,
        &password_account_body(&email, "figures-pw"),
    )
    .await;
    let synced = scrape_until(
        &server,
        &admin,
        "a finished pass and an IDLE session",
        |body| {
            metric_sample(body, "postern_sync_passes_total", &["result=\"ok\""]) >= 1.0
                && metric_sample(body, "postern_mail_connections", &["protocol=\"imap\""]) >= 1.0
                && metric_sample(body, "postern_sync_supervisors", &["activity=\"idling\""]) >= 1.0
        },
    )
    .await;
    assert_prometheus_text(&synced);

    let send = json!({"to": [email], "subject": "counted", "text": "hello"});
    let response = server
        .send_json(
            Method::POST,
            &format!("/v1/accounts/{id}/send"),
            &admin,
            &send,
        )
        .await;
    assert_eq!(response.status(), 202);
    let sent = scrape_until(&server, &admin, "a sent outbox item", |body| {
        metric_sample(body, "postern_outbox_items", &["status=\"sent\""]) == 1.0
            && metric_sample(body, "postern_outbox_attempts_total", &["outcome=\"sent\""]) == 1.0
    })
    .await;
    assert_eq!(
        metric_sample(&sent, "postern_outbox_items", &["status=\"queued\""]),
        0.0,
        "{sent}"
    );
    server.stop().await;
}
