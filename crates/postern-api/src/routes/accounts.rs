//! `/v1/accounts`: create, list, show, change the settings of, remove and re-authorize mail
//! accounts.
//!
//! Non-goal: anything beyond parsing, scope checks and rendering; the account service does the work.
//! Key decision: an account's settings are written by the store right after the account service
//! created the account (and before its sync starts), since that service takes no settings; a
//! change of `sync_mailboxes` restarts the account's running supervisor, so it applies at once,
//! while the outbox reads the settings again for every message, and a change of the sending
//! limits makes the messages they held due at once (`OutboxService::limits_changed`).

use crate::auth::{Authorized, Caller, needs};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use postern_accounts::{AuthInput, EndpointInput, NewAccountInput};
use postern_auth::flows::AuthorizationLink;
use postern_store::{
    Account, AccountAuth, AccountSettings, AccountState, AuditAction, AuditOutcome, Endpoint,
    Grant, NewAuditEntry, SaslMechanism, Security,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::num::NonZeroU32;
use utoipa::ToSchema;
use utoipa::openapi::schema::Schema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod docs;
mod settings;

use docs::{AccountChange, AccountRequest, Diagnosis};
use settings::{EffectiveView, SettingsView, changed_settings, new_account_settings};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(reauthorize))
        .routes(routes!(diagnose))
}

fn account_states() -> Schema {
    crate::openapi::one_of(AccountState::ALL.iter().map(|state| state.as_str()))
}

fn securities() -> Schema {
    crate::openapi::one_of(Security::ALL.iter().map(|security| security.as_str()))
}

fn mechanisms() -> Schema {
    crate::openapi::one_of(
        SaslMechanism::ALL
            .iter()
            .map(|mechanism| mechanism.as_str()),
    )
}

fn auth_kinds() -> Schema {
    crate::openapi::one_of(["oauth2", "oauth2_app", "password"])
}

/// A mail account as the API shows it: never a password or a token.
#[derive(Serialize, ToSchema)]
struct AccountView {
    id: String,
    email: String,
    name: Option<String>,
    /// Where the account stands: `connected` accounts sync and send.
    #[schema(schema_with = account_states)]
    state: &'static str,
    last_error: Option<String>,
    imap: EndpointView,
    smtp: EndpointView,
    auth: AuthView,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<TokenView>,
    /// The account's own settings, as set (`null`: the default).
    settings: SettingsView,
    /// The settings in force, defaults and provider presets applied (shown for one account, not
    /// in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_settings: Option<EffectiveView>,
    /// The IMAP supervisor's view: what it is doing and each mailbox's progress (shown for one
    /// account, not in listings).
    #[serde(skip_serializing_if = "Option::is_none")]
    sync: Option<SyncView>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A mail server.
#[derive(Serialize, ToSchema)]
struct EndpointView {
    host: String,
    port: u16,
    #[schema(schema_with = securities)]
    security: &'static str,
    ca_file: Option<String>,
}

/// How the account authenticates.
#[derive(Serialize, ToSchema)]
struct AuthView {
    #[serde(rename = "type")]
    #[schema(schema_with = auth_kinds)]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = mechanisms)]
    mechanism: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
}

/// What is known of the account's OAuth grant; never the tokens.
#[derive(Serialize, ToSchema)]
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
        settings: SettingsView::from(&account.settings),
        effective_settings: None,
        sync: None,
        created_at: account.created_at,
        updated_at: account.updated_at,
    }
}

/// The IMAP supervisor's view of the account.
#[derive(Serialize, ToSchema)]
struct SyncView {
    /// `connecting`, `syncing`, `idling`, `polling`, `retrying`, ...
    activity: &'static str,
    connected_since: Option<DateTime<Utc>>,
    reconnects: u32,
    last_error: Option<String>,
    /// Each mailbox's progress, by name.
    mailboxes: std::collections::BTreeMap<String, MailboxProgressView>,
}

/// One mailbox's sync since the supervisor started.
#[derive(Serialize, ToSchema)]
struct MailboxProgressView {
    /// Messages stored (initial sync and new mail).
    stored: u64,
    /// Flag changes applied.
    updated: u64,
    /// Messages deleted.
    deleted: u64,
    /// The server's message count at the last committed batch.
    exists: u32,
    /// Where the initial sync has reached, going down (the lowest UID fetched).
    lowest_uid: u32,
    /// The UIDNEXT up to which new mail is stored.
    uidnext: u32,
    /// Whether the initial sync (within its window) is complete.
    initial_done: bool,
}

impl From<postern_sync::supervisor::MailboxProgress> for MailboxProgressView {
    fn from(progress: postern_sync::supervisor::MailboxProgress) -> Self {
        Self {
            stored: progress.stored,
            updated: progress.updated,
            deleted: progress.deleted,
            exists: progress.exists,
            lowest_uid: progress.lowest_uid,
            uidnext: progress.uidnext,
            initial_done: progress.initial_done,
        }
    }
}

fn sync_view(progress: postern_sync::AccountProgress) -> SyncView {
    SyncView {
        activity: progress.activity.as_str(),
        connected_since: progress.connected_since,
        reconnects: progress.reconnects,
        last_error: progress.last_error,
        mailboxes: progress
            .mailboxes
            .into_iter()
            .map(|(name, progress)| (name, MailboxProgressView::from(progress)))
            .collect(),
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

/// Restarts the account's IMAP supervisor if one is running, so it reads the account afresh.
fn restart_running_sync(state: &AppState, account: &Account) {
    if !state.sync.running().contains(&account.id) {
        return;
    }
    let sync = state.sync.clone();
    let id = account.id.clone();
    tokio::spawn(async move {
        if let Err(error) = sync.restart(&id).await {
            tracing::warn!(account = %id, %error, "could not restart the account's sync");
        }
    });
}

/// The creation answer: the account and, for OAuth accounts, the link that authorizes it.
#[derive(Serialize, ToSchema)]
struct Created {
    id: String,
    #[schema(schema_with = account_states)]
    state: &'static str,
    /// For `oauth2` accounts: where to send the user for consent.
    #[serde(skip_serializing_if = "Option::is_none")]
    authorize_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorize_url_expires_at: Option<DateTime<Utc>>,
    account: AccountView,
}

/// `POST /v1/accounts` as read: the account service's input, plus the settings (JSON, checked
/// field by field). Described by [`AccountRequest`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccountBody {
    email: String,
    name: Option<String>,
    imap: Option<EndpointInput>,
    smtp: Option<EndpointInput>,
    auth: AuthInput,
    settings: Option<Value>,
}

impl CreateAccountBody {
    /// The account service's input, and the settings (400 naming each wrong one).
    fn split(self) -> Result<(NewAccountInput, AccountSettings), ApiError> {
        let settings = new_account_settings(self.settings.as_ref())?;
        let input = NewAccountInput {
            email: self.email,
            name: self.name,
            imap: self.imap,
            smtp: self.smtp,
            auth: self.auth,
        };
        Ok((input, settings))
    }
}

/// Add a mail account.
///
/// A password account is logged in to before it is stored (422 when the server refuses). An
/// `oauth2` account answers with the `authorize_url` to send its user to. `settings` are checked
/// before anything is stored.
#[utoipa::path(
    post,
    path = "/accounts",
    operation_id = "create_account",
    tag = "accounts",
    security(("bearer" = ["accounts:write"])),
    request_body = AccountRequest,
    responses(
        (status = 201, description = "Created.", body = Created),
        (status = 400, description = "The request names wrong fields (`details.fields`).", body = ErrorBody),
        (status = 404, description = "No such OAuth app.", body = ErrorBody),
        (status = 409, description = "The app cannot be used this way.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The mail server refused the login (`login_refused`); nothing was stored.", body = ErrorBody),
        (status = 502, description = "The mail server or the provider could not be reached (`mail_server_unavailable`); nothing was stored.", body = ErrorBody),
    )
)]
async fn create(
    caller: Authorized<needs::AccountsWrite>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateAccountBody>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let (input, settings) = body.split()?;
    let service = state.accounts.with_actor(&caller.token.name);
    let created = service
        .create_account_with_settings(input, &settings)
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

/// The accounts the token may see.
#[derive(Serialize, ToSchema)]
struct AccountList {
    accounts: Vec<AccountView>,
}

/// List the mail accounts the token may see.
#[utoipa::path(
    get,
    path = "/accounts",
    operation_id = "list_accounts",
    tag = "accounts",
    security(("bearer" = ["accounts:read"])),
    responses((status = 200, description = "The accounts.", body = AccountList))
)]
async fn list(
    caller: Authorized<needs::AccountsRead>,
    State(state): State<AppState>,
) -> Result<Json<AccountList>, ApiError> {
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

/// Show one mail account, with its sync's progress.
#[utoipa::path(
    get,
    path = "/accounts/{id}",
    operation_id = "show_account",
    tag = "accounts",
    security(("bearer" = ["accounts:read"])),
    params(("id" = String, Path, description = "The account's id.")),
    responses(
        (status = 200, description = "The account.", body = AccountView),
        (status = 404, description = "No such account, or not one the token may see.", body = ErrorBody),
    )
)]
async fn show(
    caller: Authorized<needs::AccountsRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AccountView>, ApiError> {
    let account = visible(&caller, &state, &id).await?;
    Ok(Json(full_view(&state, account).await?))
}

/// One account as `show` renders it: with its settings in force and its sync's progress.
async fn full_view(state: &AppState, account: Account) -> Result<AccountView, ApiError> {
    let grant = state.accounts.grant(&account).await?;
    let sync = state.sync.progress(&account.id).map(sync_view);
    let policy = state.outbox.policy(&account);
    let effective = EffectiveView::new(&account, state.sync.config(), &policy);
    let mut view = account_view(account, grant);
    view.sync = sync;
    view.effective_settings = Some(effective);
    Ok(view)
}

/// Change an account's settings.
///
/// `settings` is a JSON merge patch of the stored settings: a setting given is set, `null` returns
/// it to its default, an omitted one stays. The outbox applies a change from the next message on;
/// a change of `sync_mailboxes` restarts the account's sync, and a mailbox no longer selected is
/// dropped from the store with its messages.
#[utoipa::path(
    patch,
    path = "/accounts/{id}",
    operation_id = "update_account",
    tag = "accounts",
    security(("bearer" = ["accounts:write"])),
    params(("id" = String, Path, description = "The account's id.")),
    request_body = AccountChange,
    responses(
        (status = 200, description = "The account as it is now.", body = AccountView),
        (status = 400, description = "The request names wrong fields (`details.fields`).", body = ErrorBody),
        (status = 404, description = "No such account, or not one the token may see.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    )
)]
async fn update(
    caller: Authorized<needs::AccountsWrite>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<AccountView>, ApiError> {
    let account = visible(&caller, &state, &id).await?;
    let settings = changed_settings(&account.settings, &body)?;
    let updated = state
        .store
        .accounts()
        .update_settings(&account.id, &settings)
        .await?;
    let detail = format!(
        "settings of account {} set to {}",
        updated.email,
        serde_json::to_string(&updated.settings).unwrap_or_default()
    );
    let entry = NewAuditEntry::new(
        &*caller.token.name,
        AuditAction::AccountSettingsChanged,
        AuditOutcome::Ok,
    )
    .with_account(&updated.id)
    .with_detail(detail);
    state.store.audit().record_or_warn(entry).await;
    if updated.settings.sync_mailboxes != account.settings.sync_mailboxes {
        restart_running_sync(&state, &updated);
    }
    if sending_limits(&updated.settings) != sending_limits(&account.settings)
        && let Err(error) = state.outbox.limits_changed(&updated.id).await
    {
        // The settings are stored; held messages still go out when their wait ends.
        tracing::warn!(account = %updated.id, %error, "releasing messages held by the old limits failed");
    }
    Ok(Json(full_view(&state, updated).await?))
}

/// The settings that limit how fast an account sends.
fn sending_limits(settings: &AccountSettings) -> (Option<NonZeroU32>, Option<NonZeroU32>) {
    (settings.send_daily_limit, settings.send_rate_per_minute)
}

/// Remove a mail account and everything stored for it.
#[utoipa::path(
    delete,
    path = "/accounts/{id}",
    operation_id = "remove_account",
    tag = "accounts",
    security(("bearer" = ["accounts:write"])),
    params(("id" = String, Path, description = "The account's id.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 404, description = "No such account, or not one the token may see.", body = ErrorBody),
    )
)]
async fn remove(
    caller: Authorized<needs::AccountsWrite>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let account = visible(&caller, &state, &id).await?;
    state.sync.stop(&account.id).await;
    state
        .accounts
        .with_actor(&caller.token.name)
        .remove_account(&id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new consent link for an OAuth account.
#[derive(Serialize, ToSchema)]
struct Reauthorization {
    authorize_url: String,
    expires_at: DateTime<Utc>,
}

/// Start a new consent for an OAuth account (e.g. one that `needs_reauth`).
#[utoipa::path(
    post,
    path = "/accounts/{id}/reauthorize",
    operation_id = "reauthorize_account",
    tag = "accounts",
    security(("bearer" = ["accounts:write"])),
    params(("id" = String, Path, description = "The account's id.")),
    responses(
        (status = 200, description = "The link to send the user to.", body = Reauthorization),
        (status = 404, description = "No such account, or not one the token may see.", body = ErrorBody),
        (status = 409, description = "Not an account with a user's OAuth grant (`not_applicable`).", body = ErrorBody),
    )
)]
async fn reauthorize(
    caller: Authorized<needs::AccountsWrite>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Reauthorization>, ApiError> {
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

/// Diagnose an account, step by step.
///
/// The doctor's report (DNS, TCP, TLS, capabilities, token, IMAP login, mailbox, SMTP, send path),
/// each step with evidence and a fix. Never a secret.
#[utoipa::path(
    post,
    path = "/accounts/{id}/diagnose",
    operation_id = "diagnose_account",
    tag = "accounts",
    security(("bearer" = ["accounts:write"])),
    params(("id" = String, Path, description = "The account's id.")),
    responses(
        (status = 200, description = "The report; `overall` is the worst step's status.", body = Diagnosis),
        (status = 404, description = "No such account, or not one the token may see.", body = ErrorBody),
    )
)]
async fn diagnose(
    caller: Authorized<needs::AccountsWrite>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<postern_doctor::Report>, ApiError> {
    let account = visible(&caller, &state, &id).await?;
    let deps = postern_doctor::DoctorDeps::new(state.accounts.flows().context().clone())
        .with_tokens(state.accounts.tokens().clone());
    Ok(Json(
        postern_doctor::diagnose_account(&account, &deps).await,
    ))
}
