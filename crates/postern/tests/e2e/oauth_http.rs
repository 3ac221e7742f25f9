//! The whole OAuth2 connection over HTTP, against the real `postern` binary, the real Dovecot and
//! the test provider: register an app, create an account, let a real browser (headless Chromium)
//! follow the link through the provider's consent back to Postern's result page, then remove the
//! account. Also the HTTP-level failures a user can cause.

use crate::support::Postern;
use postern_testkit::browser;
use postern_testkit::dovecot::Dovecot;
use postern_testkit::oauth_provider::{ClientConfig, TestOAuthProvider};
use reqwest::Method;
use serde_json::{Value, json};

fn provider() -> &'static TestOAuthProvider {
    TestOAuthProvider::shared()
}

fn dovecot() -> &'static Dovecot {
    crate::support::dovecot()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos:x}")
}

/// Registers a provider client whose redirect is this server's callback, and the app in Postern.
async fn app(server: &Postern, token: &str) -> (String, String, String) {
    let client_id = unique("e2e-client");
    let client_secret = unique("e2e-secret");
    let callback = format!("http://{}/oauth/callback", server.address);
    provider().register_client(ClientConfig::confidential(
        client_id.clone(),
        &client_secret,
        callback,
    ));
    let response = server
        .send_json(
            Method::POST,
            "/v1/oauth-apps",
            token,
            &json!({
                "name": "e2e", "provider": "generic", "client_id": client_id, "client_secret": client_secret,
                "scopes": ["mail"], "authorize_url": provider().authorize_url(), "token_url": provider().token_url(),
                "revoke_url": provider().revoke_url(),
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["has_client_secret"], true);
    assert!(
        !body.to_string().contains(&client_secret),
        "the API returned the client secret"
    );
    (
        body["id"].as_str().unwrap().to_owned(),
        client_id,
        client_secret,
    )
}

fn account_body(email: &str, app_id: &str) -> Value {
    let ca_file = dovecot().ca_file().display().to_string();
    json!({
        "email": email,
        "imap": {"host": "localhost", "port": dovecot().imaps_addr().port(), "security": "tls", "ca_file": ca_file},
        "smtp": {"host": "localhost", "port": 1, "security": "tls", "ca_file": ca_file},
        "auth": {"type": "oauth2", "app_id": app_id},
    })
}

#[tokio::test]
async fn a_browser_connects_an_account_through_the_provider_and_the_callback_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let token = server.admin_token.clone().unwrap();
    let (app_id, client_id, client_secret) = app(&server, &token).await;
    let email = format!("{}@example.test", unique("browser"));

    let created = server
        .send_json(
            Method::POST,
            "/v1/accounts",
            &token,
            &account_body(&email, &app_id),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["state"], "pending_authorization");
    let authorize_url = created["authorize_url"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();

    // A real browser follows the link: provider consent, redirect to Postern, the result page.
    let screenshot = browser::screenshot_path("account-connected");
    let url = authorize_url.clone();
    let shot = screenshot.clone();
    let dom = tokio::task::spawn_blocking(move || browser::load_page(&url, Some(&shot)))
        .await
        .unwrap()
        .unwrap();
    assert!(
        dom.contains("<h1 id=\"title\">Account connected</h1>"),
        "{dom}"
    );
    assert!(dom.contains(&email), "{dom}");
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 1000,
        "no screenshot was written"
    );

    let shown: Value = server
        .get(&format!("/v1/accounts/{id}"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["state"], "connected", "{shown}");
    assert!(
        shown["token"]["access_token_expires_at"].is_string(),
        "{shown}"
    );
    assert!(shown["last_error"].is_null());

    let removed = server
        .send_json(
            Method::DELETE,
            &format!("/v1/accounts/{id}"),
            &token,
            &json!({}),
        )
        .await;
    assert_eq!(removed.status(), 204);
    assert_eq!(
        provider().counters_for(&client_id).revoke,
        1,
        "the grant was not revoked at the provider"
    );
    assert_eq!(
        server
            .get(&format!("/v1/accounts/{id}"), Some(&token))
            .await
            .status(),
        404
    );

    // The audit log tells who did what: the API token, the user's browser, the server itself.
    let audit: Value = server
        .get(&format!("/v1/audit?account={id}"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let done: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (action, actor) in [
        ("account.created", "admin"),
        ("authorize.completed", "browser"),
        ("account.removed", "admin"),
    ] {
        assert!(
            done.contains(&(action.to_owned(), actor.to_owned())),
            "{action} by {actor} missing: {done:?}"
        );
    }
    assert!(!audit.to_string().contains(&client_secret));

    let logs = server.stop().await;
    assert!(
        !logs.contains(&client_secret),
        "the client secret reached the log"
    );
    for bytes in Postern::database_bytes(dir.path()) {
        assert!(
            !bytes
                .windows(client_secret.len())
                .any(|w| w == client_secret.as_bytes())
        );
    }
}

#[tokio::test]
async fn a_replayed_or_forged_callback_gets_a_400_page_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let token = server.admin_token.clone().unwrap();
    let (app_id, _, _) = app(&server, &token).await;
    let email = format!("{}@example.test", unique("replay"));
    let created: Value = server
        .send_json(
            Method::POST,
            "/v1/accounts",
            &token,
            &account_body(&email, &app_id),
        )
        .await
        .json()
        .await
        .unwrap();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = no_redirects
        .get(created["authorize_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();

    let first = server.client.get(&callback).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let replay = server.client.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(replay.headers()["content-type"], "text/html; charset=utf-8");
    assert!(replay.text().await.unwrap().contains("already used"));

    let forged = server
        .client
        .get(server.url("/oauth/callback?state=forged&code=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let id = created["id"].as_str().unwrap();
    let shown: Value = server
        .get(&format!("/v1/accounts/{id}"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    // The replay changed nothing: the account keeps its grant (its supervisor may be syncing).
    assert!(
        ["connecting", "syncing", "connected"].contains(&shown["state"].as_str().unwrap()),
        "{shown}"
    );
    assert!(shown["last_error"].is_null(), "{shown}");
    assert!(shown["token"]["authorized_at"].is_string(), "{shown}");
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors_that_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let token = server.admin_token.clone().unwrap();

    let malformed = server
        .client
        .post(server.url("/v1/accounts"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");

    let unknown_field = server
        .send_json(
            Method::POST,
            "/v1/oauth-apps",
            &token,
            &json!({"name": "x", "provider": "google", "client_id": "c", "colour": 1}),
        )
        .await;
    assert_eq!(unknown_field.status(), 400);
    let body: Value = unknown_field.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );

    let invalid = server
        .send_json(
            Method::POST,
            "/v1/accounts",
            &token,
            &json!({"email": "nope", "imap": {"host": "mail.example.com", "port": 143, "security": "none"},
                    "auth": {"type": "oauth2", "app_id": "missing"}}),
        )
        .await;
    assert_eq!(invalid.status(), 400);
    let body: Value = invalid.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
    let fields: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["email", "auth.app_id", "imap.security", "smtp"],
        "{body}"
    );

    let wrong_provider = server
        .send_json(
            Method::POST,
            "/v1/oauth-apps",
            &token,
            &json!({"name": "x", "provider": "gmail", "client_id": "c"}),
        )
        .await;
    assert_eq!(wrong_provider.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn a_google_app_can_be_marked_as_testing_for_the_seven_day_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let token = server.admin_token.clone().unwrap();
    let created: Value = server
        .send_json(
            Method::POST,
            "/v1/oauth-apps",
            &token,
            &json!({"name": "gmail", "provider": "google", "client_id": "c.apps.googleusercontent.com", "client_secret": "s"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["publishing_status"], "production", "{created}");
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/oauth-apps/{id}");
    let updated = server
        .send_json(
            Method::PATCH,
            &path,
            &token,
            &json!({"publishing_status": "testing"}),
        )
        .await;
    assert_eq!(updated.status(), 200);
    let shown: Value = server.get(&path, Some(&token)).await.json().await.unwrap();
    assert_eq!(shown["publishing_status"], "testing");
    let bad = server
        .send_json(
            Method::PATCH,
            &path,
            &token,
            &json!({"publishing_status": "beta"}),
        )
        .await;
    assert_eq!(bad.status(), 400);
    server.stop().await;
}
