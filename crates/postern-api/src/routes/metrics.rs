//! `GET /metrics`: the Prometheus scrape endpoint, for tokens with the `metrics` scope.
//!
//! Non-goal: deciding what is measured; that is [`crate::metrics`]. This module only authorizes
//! and answers with the text exposition format.
//!
//! Key decision: it lives at the root, where scrapers expect it, yet behind the same token
//! middleware as `/v1` (applied by [`crate::router`]), because metrics reveal account counts.

use crate::auth::{Authorized, needs};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(scrape))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "metrics",
    security(("bearer" = ["metrics"])),
    responses(
        (status = 200, description = "The metrics.", body = String,
            content_type = "text/plain; version=0.0.4; charset=utf-8"),
    )
)]
async fn scrape(
    _caller: Authorized<needs::Metrics>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let body = state.metrics.render(&state.store, &state.sync).await?;
    Ok(([(CONTENT_TYPE, PROMETHEUS_TEXT)], body).into_response())
}
