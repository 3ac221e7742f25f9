//! `postern doctor` and `POST /v1/accounts/{id}/diagnose` against the real Dovecot.

use crate::support::{Postern, metric_sample, run_postern};
use crate::support::{create_account, password_account_body, unique_email};
use postern_testkit::dovecot::Dovecot;
use reqwest::Method;
use serde_json::{Value, json};

fn dovecot() -> &'static Dovecot {
    crate::support::dovecot()
}

#[test]
fn the_doctor_passes_a_trusted_server_and_names_the_tls_step_for_an_untrusted_one() {
    let dir = tempfile::tempdir().unwrap();
    let imap = format!("localhost:{}", dovecot().imaps_addr().port());
    let ca_file = dovecot().ca_file().display().to_string();

    let trusted = run_postern(
        dir.path(),
        &["doctor", "--imap", &imap, "--ca-file", &ca_file, "--json"],
        &[],
    );
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stdout)
    );
    let report: Value = serde_json::from_slice(&trusted.stdout).unwrap();
    let tls = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "imap.tls")
        .unwrap();
    assert_eq!(tls["status"], "pass", "{tls}");

    let untrusted = run_postern(dir.path(), &["doctor", "--imap", &imap], &[]);
    assert_eq!(untrusted.status.code(), Some(1));
    let text = String::from_utf8_lossy(&untrusted.stdout);
    assert!(text.contains("imap.tls"), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

#[tokio::test]
async fn the_diagnose_route_reports_every_step_of_a_password_account_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let email = unique_email("doctor");
    let password = unique_email("secret");
    let mut body = password_account_body(&email, &password);
    // Wrong on purpose (see the SMTP assertion below).
    body["smtp"]["port"] = dovecot().imap_addr().port().into();
    let id = &create_account(&server, &admin, &body).await;

    let response = server
        .send_json(
            Method::POST,
            &format!("/v1/accounts/{id}/diagnose"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(&password),
        "the report contains the password"
    );
    let report: Value = serde_json::from_str(&text).unwrap();
    let status_of = |name: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["status"].clone())
    };
    assert_eq!(status_of("imap.login"), Some(json!("pass")), "{report}");
    assert_eq!(status_of("imap.mailbox"), Some(json!("pass")), "{report}");
    // SMTP points at the IMAP port on purpose: the doctor must say the SMTP side is wrong.
    assert!(
        report["steps"].as_array().unwrap().iter().any(|s| s["name"]
            .as_str()
            .unwrap()
            .starts_with("smtp")
            && s["status"] == "fail"),
        "{report}"
    );
    server.stop().await;
}

/// Plays the browser at the provider and back at Postern's callback page.
async fn consent(authorize_url: &str) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let at_provider = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(at_provider.status(), 302);
    let location = at_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = browser.get(&location).send().await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
}

/// Waits (bounded) until `/metrics` counts a successful token refresh.
async fn assert_refresh_counted(server: &Postern, admin: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let metrics = server
            .get("/metrics", Some(admin))
            .await
            .text()
            .await
            .unwrap();
        let refreshed = metric_sample(
            &metrics,
            "postern_token_refreshes_total",
            &["outcome=\"ok\""],
        );
        if refreshed >= 1.0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refresh counted: {metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Asserts `output` holds neither the client secret nor a token of the test provider.
fn assert_no_secret(output: &str, client_secret: &str) {
    assert!(
        !output.contains(client_secret),
        "the client secret leaked: {output}"
    );
    assert!(
        !output.contains("pat_") && !output.contains("prt_"),
        "a token leaked: {output}"
    );
}

#[tokio::test]
async fn a_client_secret_expiring_in_three_days_is_a_warning_from_the_route_and_the_cli() {
    use postern_testkit::oauth_provider::{ClientConfig, TestOAuthProvider};
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let provider = TestOAuthProvider::shared();
    let client_id = unique_email("doctor-client");
    let client_secret = unique_email("doctor-client-secret");
    let callback = format!("http://{}/oauth/callback", server.address);
    // Access tokens shorter-lived than the refresh margin (300 s): the account's first IMAP login
    // goes through a token refresh, which /metrics must count (checked at the end).
    let mut client = ClientConfig::confidential(&client_id, &client_secret, callback);
    client.access_ttl = std::time::Duration::from_secs(60);
    provider.register_client(client);
    let expires_at = chrono::Utc::now() + chrono::Duration::days(3) + chrono::Duration::hours(1);
    let app: Value = server
        .send_json(
            Method::POST,
            "/v1/oauth-apps",
            &admin,
            &json!({
                "name": "expiring", "provider": "generic", "client_id": client_id,
                "client_secret": client_secret, "scopes": ["mail"],
                "authorize_url": provider.authorize_url(), "token_url": provider.token_url(),
                "secret_expires_at": expires_at,
            }),
        )
        .await
        .json()
        .await
        .unwrap();
    // IMAPS and submission of the shared Dovecot: every step but the forecast passes.
    let mut body = password_account_body(&unique_email("expiring"), "unused-password");
    body["auth"] = json!({"type": "oauth2", "app_id": app["id"]});
    let created = server
        .send_json(Method::POST, "/v1/accounts", &admin, &body)
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    consent(created["authorize_url"].as_str().unwrap()).await;
    let id = created["id"].as_str().unwrap().to_owned();

    let response = server
        .send_json(
            Method::POST,
            &format!("/v1/accounts/{id}/diagnose"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert_no_secret(&text, &client_secret);
    let report: Value = serde_json::from_str(&text).unwrap();
    let expiry = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "token.expiry")
        .unwrap_or_else(|| panic!("no token.expiry step: {report}"));
    assert_eq!(expiry["status"], "warn", "{report}");
    let summary = expiry["summary"].as_str().unwrap();
    assert!(
        summary.contains("the client secret of app \"expiring\" expires in 3 days"),
        "{summary}"
    );
    assert!(
        expiry["fix"]
            .as_str()
            .unwrap()
            .contains("new client secret")
    );
    assert_eq!(report["overall"], "warn", "{report}");
    assert_refresh_counted(&server, &admin).await;
    server.stop().await;

    // A warning is not a failure: the command exits 0, in text and in JSON.
    let cli = run_postern(dir.path(), &["doctor", &id], &[]);
    let stdout = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(stdout.contains("WARN  token.expiry"), "{stdout}");
    assert!(stdout.contains("Overall: WARN"), "{stdout}");
    assert_no_secret(&stdout, &client_secret);
    assert_no_secret(&String::from_utf8_lossy(&cli.stderr), &client_secret);
    let json = run_postern(dir.path(), &["doctor", &id, "--json"], &[]);
    assert!(json.status.success());
    let stdout = String::from_utf8_lossy(&json.stdout);
    assert_no_secret(&stdout, &client_secret);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["overall"], "warn", "{report}");
}
