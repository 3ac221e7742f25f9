//! `/v1/accounts`: create, list, show, remove and re-authorize mail accounts.
//!
//! Non-goal: anything beyond parsing, scope checks and rendering; the account service does the work.

use crate::api_token::Scope;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use postern_accounts::NewAccountInput;
use postern_auth::flows::AuthorizationLink;
use postern_store::{Account, AccountAuth, Endpoint, Grant};
use serde::Serialize;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/accounts", get(list).post(create))
        .route("/accounts/{id}", get(show).delete(remove))
        .route("/accounts/{id}/reauthorize", post(reauthorize))
        .route("/accounts/{id}/diagnose", post(diagnose))
}

#[derive(Serialize)]
struct AccountView {
    id: String,
    email: String,
    name: Option<String>,
    state: &'static str,
    last_error: Option<String>,
    imap: EndpointView,
    smtp: EndpointView,
    auth: AuthView,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<TokenView>,
    /// The IMAP supervisor's view: what it is doing and each mailbox's progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    sync: Option<SyncView>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct EndpointView {
    host: String,
    port: u16,
    security: &'static str,
    ca_file: Option<String>,
}

#[derive(Serialize)]
struct AuthView {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mechanism: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
}

/// What is known of the account's OAuth grant; never the tokens.
#[derive(Serialize)]
struct TokenView {
    access_token_expires_at: Option<DateTime<Utc>>,
    scope: Option<String>,
    authorized_at: Option<DateTime<Utc>>,
    last_refreshed_at: Option<DateTime<Utc>>,
    refresh_failures: u32,
}

fn endpoint_view(endpoint: Endpoint) -> EndpointView {
    EndpointView {
        host: endpoint.host,
        port: endpoint.port,
        security: endpoint.security.as_str(),
        ca_file: endpoint.ca_file,
    }
}

fn auth_view(auth: &AccountAuth) -> AuthView {
    let (app_id, mechanism, username) = match auth {
        AccountAuth::OAuth2 { app_id, mechanism }
        | AccountAuth::OAuth2App { app_id, mechanism } => {
            (Some(app_id.to_string()), Some(mechanism.as_str()), None)
        }
        AccountAuth::Password { username } => (None, None, username.clone()),
    };
    AuthView {
        kind: auth.kind(),
        app_id,
        mechanism,
        username,
    }
}

fn account_view(account: Account, grant: Option<Grant>) -> AccountView {
    AccountView {
        id: account.id.to_string(),
        email: account.email,
        name: account.name,
        state: account.state.as_str(),
        last_error: account.last_error,
        auth: auth_view(&account.auth),
        imap: endpoint_view(account.imap),
        smtp: endpoint_view(account.smtp),
        token: grant.map(|grant| TokenView {
            access_token_expires_at: grant.access_expires_at,
            scope: grant.scope,
            authorized_at: grant.consented_at,
            last_refreshed_at: grant.last_refreshed_at,
            refresh_failures: grant.refresh_failures,
        }),
        sync: None,
        created_at: account.created_at,
        updated_at: account.updated_at,
    }
}

#[derive(Serialize)]
struct SyncView {
    activity: &'static str,
    connected_since: Option<DateTime<Utc>>,
    reconnects: u32,
    last_error: Option<String>,
    mailboxes: std::collections::BTreeMap<String, postern_sync::supervisor::MailboxProgress>,
}

fn sync_view(progress: postern_sync::AccountProgress) -> SyncView {
    SyncView {
        activity: progress.activity.as_str(),
        connected_since: progress.connected_since,
        reconnects: progress.reconnects,
        last_error: progress.last_error,
        mailboxes: progress.mailboxes,
    }
}

/// Starts (or restarts) the account's IMAP supervisor when it is ready for one. A failure to start
/// is logged: the account's own state says what is wrong, and the reconcile loop retries.
pub(super) fn start_sync(state: &AppState, account: &Account) {
    if account.state != postern_store::AccountState::Connected {
        return;
    }
    let sync = state.sync.clone();
    let id = account.id.clone();
    tokio::spawn(async move {
        if let Err(error) = sync.restart(&id).await {
            tracing::warn!(account = %id, %error, "could not start the account's sync");
        }
    });
}

#[derive(Serialize)]
struct Created {
    id: String,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorize_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorize_url_expires_at: Option<DateTime<Utc>>,
    account: AccountView,
}

async fn create(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewAccountInput>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    caller.require(Scope::AccountsWrite)?;
    let created = state
        .accounts
        .with_actor(&caller.token.name)
        .create_account(input)
        .await?;
    start_sync(&state, &created.account);
    let grant = state.accounts.grant(&created.account).await?;
    let body = Created {
        id: created.account.id.to_string(),
        state: created.account.state.as_str(),
        authorize_url: created
            .authorization
            .as_ref()
            .map(|link| link.url.to_string()),
        authorize_url_expires_at: created.authorization.map(|link| link.expires_at),
        account: account_view(created.account, grant),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Serialize)]
struct AccountList {
    accounts: Vec<AccountView>,
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<AccountList>, ApiError> {
    caller.require(Scope::AccountsRead)?;
    let mut accounts = Vec::new();
    for account in state.accounts.accounts().await? {
        if caller.can_see(account.id.as_str()) {
            let grant = state.accounts.grant(&account).await?;
            accounts.push(account_view(account, grant));
        }
    }
    Ok(Json(AccountList { accounts }))
}

/// The account, or 404 for ids the caller may not see.
async fn visible(caller: &Caller, state: &AppState, id: &str) -> Result<Account, ApiError> {
    if !caller.can_see(id) {
        return Err(ApiError::not_found(format!("account {id} not found")));
    }
    Ok(state.accounts.account(id).await?)
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    caller.require(Scope::AccountsRead)?;
    let account = visible(&caller, &state, &id).await?;
    let grant = state.accounts.grant(&account).await?;
    let sync = state.sync.progress(&account.id).map(sync_view);
    let mut view = account_view(account, grant);
    view.sync = sync;
    Ok(Json(view))
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::AccountsWrite)?;
    let account = visible(&caller, &state, &id).await?;
    state.sync.stop(&account.id).await;
    state
        .accounts
        .with_actor(&caller.token.name)
        .remove_account(&id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct Reauthorization {
    authorize_url: String,
    expires_at: DateTime<Utc>,
}

async fn reauthorize(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Reauthorization>, ApiError> {
    caller.require(Scope::AccountsWrite)?;
    visible(&caller, &state, &id).await?;
    let AuthorizationLink { url, expires_at } = state
        .accounts
        .with_actor(&caller.token.name)
        .reauthorize(&id)
        .await?;
    Ok(Json(Reauthorization {
        authorize_url: url.to_string(),
        expires_at,
    }))
}

/// `POST /v1/accounts/{id}/diagnose`: the doctor's step-by-step report (DNS, TCP, TLS, capabilities,
/// token, IMAP login, mailbox, SMTP, send path), each step with evidence and a fix. Never a secret.
async fn diagnose(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<postern_doctor::Report>, ApiError> {
    caller.require(Scope::AccountsWrite)?;
    let account = visible(&caller, &state, &id).await?;
    let deps = postern_doctor::DoctorDeps::new(state.accounts.flows().context().clone())
        .with_tokens(state.accounts.tokens().clone());
    Ok(Json(
        postern_doctor::diagnose_account(&account, &deps).await,
    ))
}
