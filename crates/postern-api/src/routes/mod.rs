//! The route table: which paths exist and which need a token. One file per resource.
//!
//! Each resource module offers a `router()`: an [`OpenApiRouter`] whose routes are registered with
//! `routes!`, so every route arrives with its OpenAPI operation. [`surface`] composes them once, for
//! both the served router and the document ([`crate::openapi()`]), so the two cannot disagree.
//!
//! Non-goal: logic; this module only composes.

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
use crate::openapi::ApiDoc;
use crate::state::AppState;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::Route;
use std::convert::Infallible;
use tower::{Layer, Service};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

/// Every documented route: the public ones, `/metrics` and `/v1` with `authenticate` applied to the
/// last two (the document is the same whatever the layer; [`crate::openapi()`] passes none).
pub(crate) fn surface<L>(authenticate: L) -> OpenApiRouter<AppState>
where
    L: Layer<Route> + Clone + Send + Sync + 'static,
    L::Service: Service<Request> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request>>::Response: IntoResponse + 'static,
    <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
    <L::Service as Service<Request>>::Future: Send + 'static,
{
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(json_405(public()))
        .merge(json_405(metrics::router()).route_layer(authenticate.clone()))
        .nest("/v1", protected().layer(authenticate))
}

/// Routes anyone may call, mounted at the root.
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(callback::router())
}

/// Routes mounted under `/v1` behind the token middleware. The explicit fallback makes unknown
/// `/v1` paths pass through that middleware too, so they answer 401 before 404; a known path asked
/// with a method it does not serve answers 405 also only after the token.
fn protected() -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .merge(tokens::router())
        .merge(audit::router())
        .merge(oauth_apps::router())
        .merge(accounts::router())
        .merge(messages::router())
        .merge(send::router())
        .merge(search::router())
        .merge(webhooks::router());
    json_405(routes).fallback(not_found)
}

/// `routes`, answering a method a path does not serve with the JSON 405 (axum's own has no body).
/// Applied before any layer, so the layer runs first for those requests too.
fn json_405(routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let (router, doc) = routes.split_for_parts();
    let mut routes = OpenApiRouter::from(router.method_not_allowed_fallback(method_not_allowed));
    *routes.get_openapi_mut() = doc;
    routes
}

/// The JSON 404 for any path nothing answers.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// The JSON 405 for a known path asked with a method it does not serve (axum adds `Allow`).
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not serve this method; `Allow` lists those it does",
    )
}
