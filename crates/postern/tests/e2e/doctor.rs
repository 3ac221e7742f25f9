//! `postern doctor` and `POST /v1/accounts/{id}/diagnose` against the real Dovecot.

use crate::support::{Postern, run_postern};
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
