//! `/v1/oauth-apps`: register, list, show and remove OAuth clients. Secrets go in, never out.
//!
//! Non-goal: the OAuth logic itself (presets, validation), which is the account service's.

use crate::api_token::Scope;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use postern_accounts::NewAppInput;
use postern_store::OAuthApp;
use serde::Serialize;
use std::collections::BTreeMap;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth-apps", get(list).post(register))
        .route("/oauth-apps/{id}", get(show).patch(update).delete(remove))
}

/// An app as the API shows it: everything but the client secret, of which only its presence shows.
#[derive(Serialize)]
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
    status: String,
    /// Google's consent-screen status: `testing` apps get refresh tokens that die 7 days after
    /// consent, which Postern forecasts (`account.expiring`).
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

async fn register(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewAppInput>,
) -> Result<(StatusCode, Json<AppView>), ApiError> {
    caller.require(Scope::AccountsWrite)?;
    let registered = state
        .accounts
        .with_actor(&caller.token.name)
        .register_app(input)
        .await?;
    let view = view(&state, registered.app, registered.warnings).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Serialize)]
struct AppList {
    apps: Vec<AppView>,
}

async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<AppList>, ApiError> {
    caller.require(Scope::AccountsRead)?;
    let mut apps = Vec::new();
    for app in state.accounts.apps().await? {
        apps.push(view(&state, app, Vec::new()).await?);
    }
    Ok(Json(AppList { apps }))
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AppView>, ApiError> {
    caller.require(Scope::AccountsRead)?;
    let app = state.accounts.app(&id).await?;
    Ok(Json(view(&state, app, Vec::new()).await?))
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::AccountsWrite)?;
    state
        .accounts
        .with_actor(&caller.token.name)
        .remove_app(&id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /v1/oauth-apps/{id}`: what can change on a registered app.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AppUpdate {
    /// `testing` or `production` (Google's OAuth consent screen).
    publishing_status: Option<postern_store::PublishingStatus>,
}

async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(update): ApiJson<AppUpdate>,
) -> Result<Json<AppView>, ApiError> {
    caller.require(Scope::AccountsWrite)?;
    if let Some(status) = update.publishing_status {
        state.accounts.set_publishing_status(&id, status).await?;
    }
    let app = state.accounts.app(&id).await?;
    Ok(Json(view(&state, app, Vec::new()).await?))
}
