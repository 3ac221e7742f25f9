//! `GET /v1/health`: liveness for load balancers and the test harness; needs no token.
//!
//! Non-goal: deep checks of mail servers (that is the doctor's job). It does check that the store
//! answers, because a server that cannot reach its database is not healthy.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/health", get(health))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
}

async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.api_tokens().count_active().await?;
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    }))
}
