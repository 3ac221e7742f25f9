//! `POST /v1/accounts/{id}/send` and `/v1/outbox`: sending mail as an account through the durable
//! outbox.
//!
//! The message is checked, built and stored before the 202 answer, so an accepted request is never
//! lost; workers send it with retries. An `Idempotency-Key` header makes a retried request return
//! the first answer instead of queueing a second message.
//!
//! Non-goal: SMTP. The outbox service does that; this module parses and renders.

use crate::auth::{Authorized, Caller, needs};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use postern_outbox::{CancelError, Submission, SubmitError};
use postern_store::{
    AccountId, MessageId, OutboxId, OutboxItem, OutboxQuery, OutboxStatus, RecipientResult,
    RecipientStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::str::FromStr;
use utoipa::openapi::schema::Schema;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod docs;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send))
        .routes(routes!(list))
        .routes(routes!(show, cancel))
}

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

fn outbox_statuses() -> Schema {
    crate::openapi::one_of(OutboxStatus::ALL.iter().map(|status| status.as_str()))
}

fn recipient_statuses() -> Schema {
    crate::openapi::one_of(RecipientStatus::ALL.iter().map(|status| status.as_str()))
}

/// The answer to a send: the queued item.
#[derive(Serialize, ToSchema)]
struct Queued {
    /// The outbox item's id.
    id: String,
    /// The Message-ID, without angle brackets.
    message_id: String,
    #[schema(schema_with = outbox_statuses)]
    status: &'static str,
    /// False when the idempotency key returned an earlier item and nothing new was queued.
    created: bool,
}

/// Send a message as the account, through the durable outbox.
///
/// The message is checked, built and stored before the answer, so an accepted request is never
/// lost; workers send it with retries. A structured request, or `raw_base64` for a message as is.
#[utoipa::path(
    post,
    path = "/accounts/{id}/send",
    operation_id = "send_message",
    tag = "send",
    security(("bearer" = ["send"])),
    params(
        ("id" = String, Path, description = "The account's id."),
        ("Idempotency-Key" = Option<String>, Header,
            description = "1 to 255 characters: a retry with the same key answers the first item instead of queueing a second."),
    ),
    request_body = docs::Submission,
    responses(
        (status = 202, description = "Queued (or, with a known idempotency key, the earlier item).", body = Queued),
        (status = 400, description = "The message names wrong fields (`details.fields`), or a wrong Idempotency-Key.", body = ErrorBody),
        (status = 404, description = "No such account, or not one the token may see.", body = ErrorBody),
        (status = 409, description = "The account cannot send now (`account_not_ready`).", body = ErrorBody),
        (status = 413, description = "The message is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    )
)]
async fn send(
    caller: Authorized<needs::Send>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
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

/// An outbox item: one message and where its sending stands.
#[derive(Serialize, ToSchema)]
struct ItemView {
    id: String,
    account_id: String,
    #[schema(schema_with = outbox_statuses)]
    status: &'static str,
    /// The Message-ID, without angle brackets.
    message_id: String,
    /// `MAIL FROM`.
    from: String,
    /// Each recipient's outcome.
    recipients: Vec<RecipientView>,
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
            recipients: item
                .recipients
                .into_iter()
                .map(RecipientView::from)
                .collect(),
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

/// One recipient's outcome.
#[derive(Serialize, ToSchema)]
struct RecipientView {
    /// The envelope address (`RCPT TO`).
    address: String,
    #[schema(schema_with = recipient_statuses)]
    status: &'static str,
    /// The SMTP reply code that decided it, if one did.
    code: Option<u16>,
    /// The server's words, if it answered.
    reply: Option<String>,
}

impl From<RecipientResult> for RecipientView {
    fn from(result: RecipientResult) -> Self {
        Self {
            address: result.address,
            status: result.status.as_str(),
            code: result.code,
            reply: result.reply,
        }
    }
}

/// The outbox listing's query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Only this account's items (404 for an account the token may not see).
    account: Option<String>,
    /// Only items in this state.
    #[param(schema_with = outbox_statuses)]
    status: Option<OutboxStatus>,
    /// Items per page, 1 to 500 (default 100; others are clamped).
    limit: Option<u32>,
    /// The id of the last item of the previous page.
    before: Option<String>,
}

/// A page of outbox items, newest first.
#[derive(Serialize, ToSchema)]
struct ItemList {
    items: Vec<ItemView>,
}

/// List outbox items of the accounts the token may see, newest first.
#[utoipa::path(
    get,
    path = "/outbox",
    operation_id = "list_outbox",
    tag = "send",
    security(("bearer" = ["send"])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of items.", body = ItemList),
        (status = 400, description = "A wrong query.", body = ErrorBody),
        (status = 404, description = "An account the token may not see, or no such account id.", body = ErrorBody),
    )
)]
async fn list(
    caller: Authorized<needs::Send>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<ItemList>, ApiError> {
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
    let not_found = || ApiError::not_found(format!("outbox item {id} not found"));
    let outbox_id = OutboxId::from_str(id).map_err(|_| not_found())?;
    let item = state.outbox.get(&outbox_id).await?.ok_or_else(not_found)?;
    if !caller.can_see(item.account_id.as_str()) {
        return Err(not_found());
    }
    Ok(item)
}

/// Show one outbox item.
#[utoipa::path(
    get,
    path = "/outbox/{id}",
    operation_id = "show_outbox_item",
    tag = "send",
    security(("bearer" = ["send"])),
    params(("id" = String, Path, description = "The item's id.")),
    responses(
        (status = 200, description = "The item.", body = ItemView),
        (status = 404, description = "No such item, or not one the token may see.", body = ErrorBody),
    )
)]
async fn show(
    caller: Authorized<needs::Send>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ItemView>, ApiError> {
    Ok(Json(ItemView::from(item(&caller, &state, &id).await?)))
}

/// Cancel an outbox item that is not being sent or sent already.
#[utoipa::path(
    delete,
    path = "/outbox/{id}",
    operation_id = "cancel_outbox_item",
    tag = "send",
    security(("bearer" = ["send"])),
    params(("id" = String, Path, description = "The item's id.")),
    responses(
        (status = 200, description = "The cancelled item.", body = ItemView),
        (status = 404, description = "No such item, or not one the token may see.", body = ErrorBody),
        (status = 409, description = "Sending or sent already (`not_cancellable`).", body = ErrorBody),
    )
)]
async fn cancel(
    caller: Authorized<needs::Send>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
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
