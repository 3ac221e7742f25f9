//! `/v1/tokens`: create, list and revoke API tokens. A new token's secret is in the creation answer
//! and nowhere else, ever: the server keeps only its SHA-256.
//!
//! Creating and revoking are written to the audit log (`token.created`, `token.revoked`) with the
//! caller's token name as the actor; the entry names the token and its scopes, never its secret.
//!
//! Non-goal: rotating a token in place; create a new one, switch, revoke the old.

use crate::api_token::{ApiTokenSecret, Scope};
use crate::auth::{Authorized, Caller, needs};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use postern_store::{ApiToken, ApiTokenId, AuditAction, AuditOutcome, NewApiToken, NewAuditEntry};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// `POST /v1/tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewToken {
    /// A name for people; it is the actor in the audit log.
    #[schema(min_length = 1, pattern = r"\S")]
    name: String,
    /// What the token may do; at least one.
    #[schema(min_items = 1)]
    scopes: Vec<Scope>,
    /// Only these accounts; omit for every account.
    #[schema(min_items = 1)]
    account_ids: Option<Vec<String>>,
    /// When it stops working; omit for never.
    expires_at: Option<DateTime<Utc>>,
}

/// The creation answer: the token's record and, this once, its secret.
#[derive(Serialize, ToSchema)]
struct CreatedToken {
    /// The secret (`pst_...`): shown this once, never again.
    token: String,
    #[serde(flatten)]
    record: TokenView,
}

/// Create an API token; its secret is in this answer and nowhere else, ever.
#[utoipa::path(
    post,
    path = "/tokens",
    operation_id = "create_token",
    tag = "tokens",
    security(("bearer" = ["admin"])),
    request_body = NewToken,
    responses(
        (status = 201, description = "Created.", body = CreatedToken),
        (status = 400, description = "The request names wrong fields (`details.fields`).", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    )
)]
async fn create(
    caller: Authorized<needs::Admin>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let mut problems = Vec::new();
    if input.name.trim().is_empty() {
        problems.push(json!({"field": "name", "message": "must not be empty"}));
    }
    if input.scopes.is_empty() {
        problems.push(json!({"field": "scopes", "message": "must name at least one scope"}));
    }
    if input.expires_at.is_some_and(|at| at <= Utc::now()) {
        problems.push(json!({"field": "expires_at", "message": "must be in the future"}));
    }
    if input.account_ids.as_ref().is_some_and(Vec::is_empty) {
        problems.push(json!({"field": "account_ids", "message": "an empty list would see nothing; omit it for every account"}));
    }
    if !problems.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the token request is invalid",
        )
        .with_details(json!({ "fields": problems })));
    }
    let secret = ApiTokenSecret::generate().map_err(|e| ApiError::internal(&e, false))?;
    let record = state
        .store
        .api_tokens()
        .create(NewApiToken {
            name: input.name.trim().to_owned(),
            token_hash: secret.hash(),
            scopes: input.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            account_ids: input.account_ids,
            expires_at: input.expires_at,
        })
        .await?;
    tracing::info!(token = %record.id, by = %caller.token.name, "API token created");
    let bound = match &record.account_ids {
        Some(ids) => format!("bound to {} account(s)", ids.len()),
        None => "for every account".to_owned(),
    };
    let detail = format!(
        "token {:?} ({}) created with scopes {}, {bound}",
        record.name,
        record.id,
        record.scopes.join(" ")
    );
    audit(&state, &caller, AuditAction::TokenCreated, detail).await;
    let created = CreatedToken {
        token: secret.expose().to_owned(),
        record: TokenView::from(record),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revoke an API token: it stops working at once.
#[utoipa::path(
    delete,
    path = "/tokens/{id}",
    operation_id = "revoke_token",
    tag = "tokens",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The token's id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "No such token, or revoked already.", body = ErrorBody),
    )
)]
async fn revoke(
    caller: Authorized<needs::Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::not_found(format!("token {id} not found"));
    let token_id = id.parse::<ApiTokenId>().map_err(|_| not_found())?;
    if state.store.api_tokens().revoke(&token_id).await? {
        tracing::info!(token = %token_id, by = %caller.token.name, "API token revoked");
        let detail = format!("token {token_id} revoked");
        audit(&state, &caller, AuditAction::TokenRevoked, detail).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

/// Writes an audit entry naming the caller's token as the actor (never failing the request).
async fn audit(state: &AppState, caller: &Caller, action: AuditAction, detail: String) {
    let entry =
        NewAuditEntry::new(&*caller.token.name, action, AuditOutcome::Ok).with_detail(detail);
    state.store.audit().record_or_warn(entry).await;
}

/// A token as the API shows it: never its secret.
#[derive(Serialize, ToSchema)]
struct TokenView {
    id: String,
    name: String,
    /// Its scopes (`admin`, `accounts:read`, ...).
    scopes: Vec<String>,
    /// The accounts it is bound to; `null` for every account.
    account_ids: Option<Vec<String>>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    /// When it was last used, to the minute.
    last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenView {
    fn from(token: ApiToken) -> Self {
        Self {
            id: token.id.to_string(),
            name: token.name,
            scopes: token.scopes,
            account_ids: token.account_ids,
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used_at: token.last_used_at,
        }
    }
}

/// Every API token.
#[derive(Serialize, ToSchema)]
struct TokenList {
    tokens: Vec<TokenView>,
}

/// List the API tokens, without their secrets.
#[utoipa::path(
    get,
    path = "/tokens",
    operation_id = "list_tokens",
    tag = "tokens",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The tokens.", body = TokenList))
)]
async fn list(
    _caller: Authorized<needs::Admin>,
    State(state): State<AppState>,
) -> Result<Json<TokenList>, ApiError> {
    let tokens = state.store.api_tokens().list().await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }))
}
