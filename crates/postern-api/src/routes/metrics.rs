//! `GET /metrics`: the Prometheus scrape endpoint, for tokens with the `metrics` scope.
//!
//! Non-goal: deciding what is measured; that is [`crate::metrics`]. This module only authorizes
//! and answers with the text exposition format.
//!
//! Key decision: it lives at the root, where scrapers expect it, yet behind the same token
//! middleware as `/v1` (applied by [`crate::router`]), because metrics reveal account counts.

use crate::api_token::Scope;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Scope::Metrics)?;
    let body = state.metrics.render(&state.store).await?;
    Ok(([(CONTENT_TYPE, PROMETHEUS_TEXT)], body).into_response())
}
