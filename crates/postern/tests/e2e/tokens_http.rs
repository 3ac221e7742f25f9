//! API tokens over HTTP: created with scopes, bound to accounts, revoked, and rate limited.

use crate::support::Postern;
use crate::support::{create_account, password_account_body, unique_email};
use reqwest::Method;
use serde_json::{Value, json};

async fn create_token(server: &Postern, admin: &str, body: Value) -> (reqwest::StatusCode, Value) {
    let response = server
        .send_json(Method::POST, "/v1/tokens", admin, &body)
        .await;
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_token_is_shown_once_holds_its_scopes_and_stops_working_when_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let (status, created) = create_token(
        &server,
        &admin,
        json!({"name": "reader", "scopes": ["accounts:read"]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let reader = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["scopes"], json!(["accounts:read"]));

    let listed: Value = server
        .get("/v1/tokens", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains(&reader),
        "a listing showed a token's secret"
    );
    assert_eq!(
        server.get("/v1/accounts", Some(&reader)).await.status(),
        200
    );
    assert_eq!(server.get("/v1/tokens", Some(&reader)).await.status(), 403);

    let id = created["id"].as_str().unwrap();
    let revoked = server
        .send_json(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        server.get("/v1/accounts", Some(&reader)).await.status(),
        401
    );
    let again = server
        .send_json(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(again.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn bad_token_requests_name_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let (status, body) = create_token(
        &server,
        &admin,
        json!({"name": " ", "scopes": [], "expires_at": "2001-01-01T00:00:00Z", "account_ids": []}),
    )
    .await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "scopes", "expires_at", "account_ids"]);
    let (status, body) =
        create_token(&server, &admin, json!({"name": "x", "scopes": ["root"]})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("root"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_token_bound_to_accounts_sees_only_those_and_gets_404_for_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let mine = password_account(&server, &admin, "bound-mine").await;
    let theirs = password_account(&server, &admin, "bound-theirs").await;
    let (_, created) = create_token(
        &server,
        &admin,
        json!({"name": "bound", "scopes": ["accounts:read", "accounts:write"], "account_ids": [mine]}),
    )
    .await;
    let bound = created["token"].as_str().unwrap().to_owned();

    assert_eq!(
        server
            .get(&format!("/v1/accounts/{mine}"), Some(&bound))
            .await
            .status(),
        200
    );
    assert_eq!(
        server
            .get(&format!("/v1/accounts/{theirs}"), Some(&bound))
            .await
            .status(),
        404
    );
    let listed: Value = server
        .get("/v1/accounts", Some(&bound))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    let delete_theirs = server
        .send_json(
            Method::DELETE,
            &format!("/v1/accounts/{theirs}"),
            &bound,
            &json!({}),
        )
        .await;
    assert_eq!(delete_theirs.status(), 404);
    assert_eq!(
        server
            .get(&format!("/v1/accounts/{theirs}"), Some(&admin))
            .await
            .status(),
        200,
        "the other account was touched"
    );
    server.stop().await;
}

/// A connected password account on the shared Dovecot; returns its id.
async fn password_account(server: &Postern, admin: &str, name: &str) -> String {
    let body = password_account_body(&unique_email(name), "secret-pw");
    create_account(server, admin, &body).await
}

#[tokio::test]
async fn a_token_over_its_rate_limit_gets_429_with_retry_after_and_others_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("POSTERN_API_RATE_LIMIT_PER_SECOND", "1"),
        ("POSTERN_API_RATE_LIMIT_BURST", "3"),
    ];
    let server = Postern::start(dir.path(), &env).await;
    let admin = server.admin_token.clone().unwrap();
    let (_, created) = create_token(
        &server,
        &admin,
        json!({"name": "busy", "scopes": ["accounts:read"]}),
    )
    .await;
    let busy = created["token"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = server.get("/v1/accounts", Some(&busy)).await;
        if response.status() == 429 {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
            statuses.push(429);
        } else {
            statuses.push(response.status().as_u16());
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(
        server.get("/v1/tokens", Some(&admin)).await.status(),
        200,
        "another token was limited too"
    );
    server.stop().await;
}
