//! `GET /v1/health`: liveness for load balancers and the test harness; needs no token.
//!
//! Non-goal: deep checks of mail servers (that is the doctor's job). It does check that the store
//! answers, because a server that cannot reach its database is not healthy.

use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// The server is up and its store answers.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
    /// The server's version.
    version: &'static str,
}

/// Liveness: the server is up and its store answers.
#[utoipa::path(
    get,
    path = "/v1/health",
    operation_id = "health",
    tag = "health",
    responses(
        (status = 200, description = "Healthy.", body = Health),
        (status = 500, description = "The store failed.", body = crate::error::ErrorBody),
        (status = 503, description = "The store is busy.", body = crate::error::ErrorBody),
    )
)]
async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.api_tokens().count_active().await?;
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    }))
}
