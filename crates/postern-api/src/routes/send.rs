//! `POST /v1/accounts/{id}/send` and `/v1/outbox`: sending mail as an account through the durable
//! outbox.
//!
//! The message is checked, built and stored before the 202 answer, so an accepted request is never
//! lost; workers send it with retries. An `Idempotency-Key` header makes a retried request return
//! the first answer instead of queueing a second message.
//!
//! Non-goal: SMTP. The outbox service does that; this module parses and renders.

use crate::api_token::Scope;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use postern_outbox::{CancelError, Submission, SubmitError};
use postern_store::{
    AccountId, MessageId, OutboxId, OutboxItem, OutboxQuery, OutboxStatus, RecipientResult,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::str::FromStr;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/accounts/{id}/send", post(send))
        .route("/outbox", get(list))
        .route("/outbox/{id}", get(show).delete(cancel))
}

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

#[derive(Serialize)]
struct Queued {
    id: String,
    message_id: String,
    status: &'static str,
    /// False when the idempotency key returned an earlier item and nothing new was queued.
    created: bool,
}

async fn send(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    caller.require(Scope::Send)?;
    let account_id = visible_account(&caller, &id)?;
    let send_at = take_send_at(&mut body)?;
    resolve_reply(&state, &account_id, &mut body).await?;
    let idempotency_key = idempotency_key(&headers)?;
    let submission = Submission::from_json(body).map_err(|fields| invalid(&fields))?;
    let queued = state
        .outbox
        .submit(&account_id, submission, idempotency_key, send_at)
        .await
        .map_err(submit_error)?;
    let body = Queued {
        id: queued.id.to_string(),
        message_id: queued.message_id,
        status: queued.status.as_str(),
        created: queued.created,
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

fn visible_account(caller: &Caller, id: &str) -> Result<AccountId, ApiError> {
    let not_found = || ApiError::not_found(format!("account {id} not found"));
    if !caller.can_see(id) {
        return Err(not_found());
    }
    AccountId::from_str(id).map_err(|_| not_found())
}

fn take_send_at(body: &mut Value) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(value) = body
        .as_object_mut()
        .and_then(|object| object.remove("send_at"))
    else {
        return Ok(None);
    };
    serde_json::from_value(value).map(Some).map_err(|_| {
        invalid_field(
            "send_at",
            "must be an RFC 3339 time, e.g. 2026-12-01T09:00:00Z",
        )
    })
}

/// `in_reply_to_message` names a message Postern stored: it becomes In-Reply-To and References.
async fn resolve_reply(
    state: &AppState,
    account_id: &AccountId,
    body: &mut Value,
) -> Result<(), ApiError> {
    let Some(object) = body.as_object_mut() else {
        return Ok(());
    };
    let Some(original) = object.remove("in_reply_to_message") else {
        return Ok(());
    };
    let not_found = || {
        invalid_field(
            "in_reply_to_message",
            "no message with this id in this account",
        )
    };
    let id = original
        .as_i64()
        .or_else(|| original.as_str()?.parse().ok())
        .ok_or_else(not_found)?;
    let message = state
        .store
        .messages()
        .get(MessageId(id))
        .await?
        .ok_or_else(not_found)?;
    if &message.account_id != account_id {
        return Err(not_found());
    }
    let message_id = message.envelope.message_id.ok_or_else(|| {
        invalid_field(
            "in_reply_to_message",
            "the original has no Message-ID to reply to",
        )
    })?;
    object.insert(
        "in_reply_to".into(),
        json!({ "message_id": message_id, "references": message.envelope.references }),
    );
    Ok(())
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible characters")
        })?;
    Ok(Some(key.to_owned()))
}

fn invalid_field(field: &str, message: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!("{field}: {message}"),
    )
    .with_details(json!({ "fields": [{ "field": field, "message": message }] }))
}

fn invalid(fields: &[postern_auth::FieldError]) -> ApiError {
    let details: Vec<Value> = fields
        .iter()
        .map(|f| json!({ "field": f.field, "message": f.message }))
        .collect();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "the message is invalid",
    )
    .with_details(json!({ "fields": details }))
}

fn submit_error(error: SubmitError) -> ApiError {
    let message = error.to_string();
    match error {
        SubmitError::Invalid(fields) => invalid(&fields),
        SubmitError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
        }
        SubmitError::AccountNotFound(_) => ApiError::not_found(message),
        SubmitError::AccountNotReady { .. } => {
            ApiError::new(StatusCode::CONFLICT, "account_not_ready", message)
        }
        SubmitError::Store(store) => ApiError::from(store),
        other => ApiError::internal(&other, false),
    }
}

#[derive(Serialize)]
struct ItemView {
    id: String,
    account_id: String,
    status: &'static str,
    message_id: String,
    from: String,
    recipients: Vec<RecipientResult>,
    size: u64,
    send_at: DateTime<Utc>,
    attempts: u32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    sent_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<OutboxItem> for ItemView {
    fn from(item: OutboxItem) -> Self {
        Self {
            id: item.id.to_string(),
            account_id: item.account_id.to_string(),
            status: item.status.as_str(),
            message_id: item.message_id,
            from: item.envelope.from,
            recipients: item.recipients,
            size: item.size,
            send_at: item.send_at,
            attempts: item.attempts,
            next_attempt_at: item.next_attempt_at,
            last_error: item.last_error,
            sent_at: item.sent_at,
            created_at: item.created_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    account: Option<String>,
    status: Option<OutboxStatus>,
    limit: Option<u32>,
    before: Option<String>,
}

#[derive(Serialize)]
struct ItemList {
    items: Vec<ItemView>,
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<ItemList>, ApiError> {
    caller.require(Scope::Send)?;
    let account_id = params
        .account
        .as_deref()
        .map(|id| visible_account(&caller, id))
        .transpose()?;
    let before = params
        .before
        .as_deref()
        .map(|id| {
            OutboxId::from_str(id).map_err(|_| ApiError::bad_request("before is not an outbox id"))
        })
        .transpose()?;
    let query = OutboxQuery {
        account_id,
        status: params.status,
        before,
        limit: params.limit.unwrap_or(100).clamp(1, 500),
    };
    let items = state.outbox.list(&query).await?;
    let items = items
        .into_iter()
        .filter(|item| caller.can_see(item.account_id.as_str()))
        .map(ItemView::from)
        .collect();
    Ok(Json(ItemList { items }))
}

async fn item(caller: &Caller, state: &AppState, id: &str) -> Result<OutboxItem, ApiError> {
    caller.require(Scope::Send)?;
    let not_found = || ApiError::not_found(format!("outbox item {id} not found"));
    let outbox_id = OutboxId::from_str(id).map_err(|_| not_found())?;
    let item = state.outbox.get(&outbox_id).await?.ok_or_else(not_found)?;
    if !caller.can_see(item.account_id.as_str()) {
        return Err(not_found());
    }
    Ok(item)
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ItemView>, ApiError> {
    Ok(Json(ItemView::from(item(&caller, &state, &id).await?)))
}

async fn cancel(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ItemView>, ApiError> {
    let found = item(&caller, &state, &id).await?;
    match state.outbox.cancel(&found.id).await {
        Ok(cancelled) => Ok(Json(ItemView::from(cancelled))),
        Err(CancelError::NotFound(_)) => {
            Err(ApiError::not_found(format!("outbox item {id} not found")))
        }
        Err(error @ CancelError::NotCancellable { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_cancellable",
            error.to_string(),
        )),
        Err(other) => Err(ApiError::internal(&other, false)),
    }
}
