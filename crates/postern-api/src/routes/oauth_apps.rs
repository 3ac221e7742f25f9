//! `/v1/oauth-apps`: register, list, show and remove OAuth clients. Secrets go in, never out.
//!
//! Non-goal: the OAuth logic itself (presets, validation), which is the account service's.

use crate::auth::{Authorized, needs};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use postern_accounts::NewAppInput;
use postern_store::{AppStatus, OAuthApp, PublishingStatus};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa::openapi::schema::Schema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, register))
        .routes(routes!(show, update, remove))
}

fn publishing_statuses() -> Schema {
    crate::openapi::one_of(PublishingStatus::ALL.iter().map(|status| status.as_str()))
}

fn providers() -> Schema {
    crate::openapi::one_of(["google", "microsoft", "yahoo", "generic"])
}

fn app_statuses() -> Schema {
    crate::openapi::one_of(AppStatus::ALL.iter().map(|status| status.as_str()))
}

/// `POST /v1/oauth-apps` (read as [`NewAppInput`]; this describes it).
#[derive(ToSchema)]
#[allow(dead_code)] // only describes the body
struct AppRegistration {
    /// A name for people.
    name: String,
    /// `google`, `microsoft`, `yahoo` or `generic`.
    #[schema(schema_with = providers)]
    provider: String,
    /// The client id the provider issued.
    client_id: String,
    /// The client secret: sealed at once, never returned.
    client_secret: Option<String>,
    /// The redirect URI registered with the provider; default: Postern's `/oauth/callback`.
    redirect_uri: Option<String>,
    /// Scopes; default: the preset's least-privilege IMAP and SMTP scopes.
    scopes: Option<Vec<String>>,
    /// Microsoft's tenant.
    tenant: Option<String>,
    /// The authorization endpoint (required for `generic`).
    authorize_url: Option<String>,
    /// The token endpoint (required for `generic`).
    token_url: Option<String>,
    /// The revocation endpoint.
    revoke_url: Option<String>,
    /// The RFC 8628 device authorization endpoint.
    device_authorization_url: Option<String>,
    /// Extra authorization-request parameters.
    extra_params: Option<BTreeMap<String, String>>,
    /// When the client secret expires, if known (for expiry warnings).
    secret_expires_at: Option<DateTime<Utc>>,
}

/// An app as the API shows it: everything but the client secret, of which only its presence shows.
#[derive(Serialize, ToSchema)]
struct AppView {
    id: String,
    name: String,
    provider: String,
    client_id: String,
    has_client_secret: bool,
    redirect_uri: Option<String>,
    scopes: Vec<String>,
    tenant: Option<String>,
    authorize_url: String,
    token_url: String,
    revoke_url: Option<String>,
    device_authorization_url: Option<String>,
    extra_params: BTreeMap<String, String>,
    imap_host: Option<String>,
    imap_port: Option<u16>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    secret_expires_at: Option<DateTime<Utc>>,
    #[schema(schema_with = app_statuses)]
    status: String,
    /// Google's consent-screen status: `testing` apps get refresh tokens that die 7 days after
    /// consent, which Postern forecasts (`account.expiring`).
    #[schema(schema_with = publishing_statuses)]
    publishing_status: &'static str,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

async fn view(state: &AppState, app: OAuthApp, warnings: Vec<String>) -> Result<AppView, ApiError> {
    let has_client_secret = state
        .store
        .secrets()
        .get(&app.id.client_secret_ref())
        .await?
        .is_some();
    let publishing_status = state
        .accounts
        .publishing_status(app.id.as_str())
        .await?
        .as_str();
    Ok(AppView {
        id: app.id.to_string(),
        name: app.name,
        provider: app.provider,
        client_id: app.client_id,
        has_client_secret,
        redirect_uri: app.redirect_uri,
        scopes: app.scopes,
        tenant: app.tenant,
        authorize_url: app.authorize_url,
        token_url: app.token_url,
        revoke_url: app.revoke_url,
        device_authorization_url: app.device_authorization_url,
        extra_params: app.extra_params,
        imap_host: app.imap_host,
        imap_port: app.imap_port,
        smtp_host: app.smtp_host,
        smtp_port: app.smtp_port,
        secret_expires_at: app.secret_expires_at,
        status: app.status.as_str().to_owned(),
        publishing_status,
        last_error: app.last_error,
        created_at: app.created_at,
        warnings,
    })
}

/// Register an OAuth client; its secret goes in and never comes out.
#[utoipa::path(
    post,
    path = "/oauth-apps",
    operation_id = "register_oauth_app",
    tag = "oauth-apps",
    security(("bearer" = ["accounts:write"])),
    request_body = AppRegistration,
    responses(
        (status = 201, description = "Registered; `warnings` says what may need attention.", body = AppView),
        (status = 400, description = "The request names wrong fields (`details.fields`).", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    )
)]
async fn register(
    caller: Authorized<needs::AccountsWrite>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewAppInput>,
) -> Result<(StatusCode, Json<AppView>), ApiError> {
    let registered = state
        .accounts
        .with_actor(&caller.token.name)
        .register_app(input)
        .await?;
    let view = view(&state, registered.app, registered.warnings).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Every registered app.
#[derive(Serialize, ToSchema)]
struct AppList {
    apps: Vec<AppView>,
}

/// List the registered OAuth clients.
#[utoipa::path(
    get,
    path = "/oauth-apps",
    operation_id = "list_oauth_apps",
    tag = "oauth-apps",
    security(("bearer" = ["accounts:read"])),
    responses((status = 200, description = "The apps.", body = AppList))
)]
async fn list(
    _caller: Authorized<needs::AccountsRead>,
    State(state): State<AppState>,
) -> Result<Json<AppList>, ApiError> {
    let mut apps = Vec::new();
    for app in state.accounts.apps().await? {
        apps.push(view(&state, app, Vec::new()).await?);
    }
    Ok(Json(AppList { apps }))
}

/// Show one OAuth client.
#[utoipa::path(
    get,
    path = "/oauth-apps/{id}",
    operation_id = "show_oauth_app",
    tag = "oauth-apps",
    security(("bearer" = ["accounts:read"])),
    params(("id" = String, Path, description = "The app's id.")),
    responses(
        (status = 200, description = "The app.", body = AppView),
        (status = 404, description = "No such app.", body = ErrorBody),
    )
)]
async fn show(
    _caller: Authorized<needs::AccountsRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AppView>, ApiError> {
    let app = state.accounts.app(&id).await?;
    Ok(Json(view(&state, app, Vec::new()).await?))
}

/// Remove an OAuth client that no account uses any more.
#[utoipa::path(
    delete,
    path = "/oauth-apps/{id}",
    operation_id = "remove_oauth_app",
    tag = "oauth-apps",
    security(("bearer" = ["accounts:write"])),
    params(("id" = String, Path, description = "The app's id.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 404, description = "No such app.", body = ErrorBody),
        (status = 409, description = "Accounts still use it (`in_use`).", body = ErrorBody),
    )
)]
async fn remove(
    caller: Authorized<needs::AccountsWrite>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .with_actor(&caller.token.name)
        .remove_app(&id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /v1/oauth-apps/{id}`: what can change on a registered app.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AppUpdate {
    /// `testing` or `production` (Google's OAuth consent screen).
    #[schema(schema_with = publishing_statuses)]
    publishing_status: Option<PublishingStatus>,
}

/// Change a registered OAuth client (today: its publishing status).
#[utoipa::path(
    patch,
    path = "/oauth-apps/{id}",
    operation_id = "update_oauth_app",
    tag = "oauth-apps",
    security(("bearer" = ["accounts:write"])),
    params(("id" = String, Path, description = "The app's id.")),
    request_body = AppUpdate,
    responses(
        (status = 200, description = "The app as it is now.", body = AppView),
        (status = 400, description = "A wrong field.", body = ErrorBody),
        (status = 404, description = "No such app.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    )
)]
async fn update(
    _caller: Authorized<needs::AccountsWrite>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(update): ApiJson<AppUpdate>,
) -> Result<Json<AppView>, ApiError> {
    if let Some(status) = update.publishing_status {
        state.accounts.set_publishing_status(&id, status).await?;
    }
    let app = state.accounts.app(&id).await?;
    Ok(Json(view(&state, app, Vec::new()).await?))
}
