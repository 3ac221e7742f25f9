//! The route table: which paths exist and which need a token. One file per resource.
//!
//! Non-goal: logic. Each resource module offers a `router()`; this module only composes them.

mod accounts;
mod audit;
mod callback;
mod health;
mod messages;
mod metrics;
mod oauth_apps;
mod search;
mod send;
mod tokens;
mod webhooks;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;

/// Routes anyone may call, mounted at the root.
pub(crate) fn public() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(callback::router())
}

/// `/metrics`: at the root, but needing a token; [`crate::router`] puts the token middleware on it.
pub(crate) fn metrics() -> Router<AppState> {
    metrics::router()
}

/// Routes mounted under `/v1` behind the token middleware. The explicit fallback makes unknown
/// `/v1` paths pass through that middleware too, so they answer 401 before 404.
pub(crate) fn protected() -> Router<AppState> {
    Router::new()
        .merge(tokens::router())
        .merge(audit::router())
        .merge(oauth_apps::router())
        .merge(accounts::router())
        .merge(messages::router())
        .merge(send::router())
        .merge(search::router())
        .merge(webhooks::router())
        .fallback(not_found)
}

/// The JSON 404 for any path nothing answers.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}
