//! The OpenAPI document, walked against the real server: it is the list of `/v1` routes, and every
//! one of them refuses a caller without a token (401), a token without the route's scope (403) and a
//! token bound to another account (404, for routes that take an account).
//!
//! A route missing from the document cannot be served at all: the router and the document are
//! built from the same `routes!` declarations (`utoipa_axum::router::OpenApiRouter`). The tests
//! still hold the served document to the router: the served `/openapi.json` is the one the route
//! builder produces (`postern_api::openapi()`), every documented operation reaches a handler (its
//! scope check answers, not the fallback), and at every documented path the methods the document
//! does not list answer 405.

use crate::support::{Postern, create_account, new_token, password_account_body, unique_email};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Every scope a token can hold, as the document's security requirements name them.
const SCOPES: [&str; 8] = [
    "admin",
    "accounts:read",
    "accounts:write",
    "messages:read",
    "messages:write",
    "send",
    "webhooks",
    "metrics",
];

/// One operation of the document.
struct Operation {
    method: Method,
    path: String,
    scope: String,
    has_body: bool,
    /// Query parameters the document marks required, and whether there is an `account` one.
    required_query: Vec<String>,
    account_query: bool,
}

impl Operation {
    fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Whether the route names an account: `/v1/accounts/{id}/...` or an `account` query.
    fn takes_account(&self) -> bool {
        self.path.starts_with("/v1/accounts/{id}") || self.account_query
    }

    /// The request path with every parameter filled: `{id}` of an account route is `account`,
    /// other path parameters are ids that exist nowhere; required query parameters get a word, and
    /// `account` (when asked for) is `account`.
    fn url(&self, account: &str, with_account_query: bool) -> String {
        let mut path = String::new();
        for segment in self.path.split('/').skip(1) {
            path.push('/');
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some("id") if self.path.starts_with("/v1/accounts/") => path.push_str(account),
                Some(_) => path.push_str("01a1feea-0000-7000-8000-000000000000"),
                None => path.push_str(segment),
            }
        }
        let mut query: Vec<String> = self
            .required_query
            .iter()
            .filter(|name| name.as_str() != "account")
            .map(|name| format!("{name}=word"))
            .collect();
        if self.account_query && with_account_query {
            query.push(format!("account={account}"));
        }
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        path
    }
}

/// The `/v1` operations of the document, `/v1/health` (public) aside.
fn v1_operations(doc: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") || path == "/v1/health" {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            let scopes = &operation["security"][0]["bearer"];
            let scope = scopes[0]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} names no scope: {operation}"));
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let query: Vec<&Value> = parameters.iter().filter(|p| p["in"] == "query").collect();
            found.push(Operation {
                method: Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                path: path.clone(),
                scope: scope.to_owned(),
                has_body: !operation["requestBody"].is_null(),
                required_query: query
                    .iter()
                    .filter(|p| p["required"] == true)
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect(),
                account_query: query.iter().any(|p| p["name"] == "account"),
            });
        }
    }
    found
}

async fn call(server: &Postern, operation: &Operation, url: &str, token: Option<&str>) -> u16 {
    let mut request = server
        .client
        .request(operation.method.clone(), server.url(url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if operation.has_body {
        // `{}` parses as every body whose fields are optional, so the routes that read one reach
        // their account check; the others are past their scope check before the body is read.
        request = request.json(&json!({}));
    }
    request.send().await.unwrap().status().as_u16()
}

/// Every scope but `scope` (and but `admin`, which implies it).
fn all_but(scope: &str) -> Vec<&'static str> {
    SCOPES
        .into_iter()
        .filter(|held| *held != scope && *held != "admin")
        .collect()
}

#[tokio::test]
async fn every_v1_route_in_the_document_refuses_no_token_a_missing_scope_and_another_account() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let doc: Value = server
        .get("/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let operations = v1_operations(&doc);
    let labels: BTreeSet<String> = operations.iter().map(Operation::label).collect();
    assert!(
        operations.len() >= 30,
        "only {} operations: {labels:#?}",
        operations.len()
    );
    for known in [
        "GET /v1/accounts/{id}/messages",
        "POST /v1/accounts/{id}/send",
        "DELETE /v1/tokens/{id}",
        "GET /v1/events",
    ] {
        assert!(labels.contains(known), "{known} is not in the document");
    }

    let own = create_account(
        &server,
        &admin,
        &password_account_body(&unique_email("oa"), "pw-a"),
    )
    .await;
    let other = create_account(
        &server,
        &admin,
        &password_account_body(&unique_email("ob"), "pw-b"),
    )
    .await;
    let mut lacking: BTreeMap<&str, String> = BTreeMap::new();
    for scope in SCOPES {
        lacking.insert(
            scope,
            new_token(&server, &admin, &all_but(scope), None).await,
        );
    }
    let bound_elsewhere = new_token(&server, &admin, &SCOPES, Some(&[other.as_str()])).await;

    let mut wrong = Vec::new();
    let mut account_routes = 0;
    for operation in &operations {
        let url = operation.url(&own, true);
        let status = call(&server, operation, &url, None).await;
        if status != 401 {
            wrong.push(format!(
                "{} without a token: {status}, not 401",
                operation.label()
            ));
        }
        let token = &lacking[operation.scope.as_str()];
        let status = call(&server, operation, &url, Some(token)).await;
        if status != 403 {
            let scope = &operation.scope;
            wrong.push(format!(
                "{} without `{scope}`: {status}, not 403",
                operation.label()
            ));
        }
        if operation.takes_account() {
            account_routes += 1;
            let status = call(&server, operation, &url, Some(&bound_elsewhere)).await;
            if status != 404 {
                wrong.push(format!(
                    "{} bound to another account: {status}, not 404",
                    operation.label()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} routes answered wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        account_routes >= 12,
        "only {account_routes} routes take an account"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_served_document_is_the_routers_and_lists_every_method_each_path_serves() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    let served: Value = server
        .get("/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let built = serde_json::to_value(postern_api::openapi()).unwrap();
    assert_eq!(
        served, built,
        "/openapi.json is not the route builder's document"
    );

    let docs = server.get("/docs/", None).await;
    assert_eq!(docs.status(), 200);
    let page = docs.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page loads from elsewhere: {page}"
    );

    let mut wrong = Vec::new();
    for (path, item) in served["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        let listed: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        let url: String = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "x"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if listed.contains(method) {
                continue;
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let response = server
                .client
                .request(method.clone(), server.url(&url))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            if response.status() != 405 {
                wrong.push(format!(
                    "{method} {path}: {} (undocumented, yet not 405)",
                    response.status()
                ));
                continue;
            }
            let body: Value = response.json().await.unwrap();
            if body["error"]["code"] != "method_not_allowed" {
                wrong.push(format!(
                    "{method} {path}: 405 without the error shape: {body}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    let unknown = server.get("/v1/no-such-route", Some(&admin)).await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    server.stop().await;
}
