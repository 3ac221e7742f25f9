//! `/v1/webhooks` and `/v1/events`: how integrations consume Postern's event log — pushed to signed
//! webhooks, or pulled with a cursor (long-poll).
//!
//! Non-goal: delivery itself (signing, retries, ordering); `postern-events` does that.

use crate::api_token::Scope;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use postern_events::{AccountScope, EventBody, NewWebhookInput, WebhookError, WebhookUpdateInput};
use postern_store::{Delivery, Webhook};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/webhooks/{id}/test", post(test))
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route(
            "/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(redeliver),
        )
        .route("/events", get(events))
}

#[derive(Serialize)]
struct WebhookView {
    id: String,
    url: String,
    events: Vec<String>,
    account_ids: Option<Vec<String>>,
    enabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookView {
    fn from(webhook: Webhook) -> Self {
        Self {
            id: webhook.id.to_string(),
            url: webhook.url,
            events: webhook.events,
            account_ids: webhook.account_ids,
            enabled: webhook.enabled,
            created_at: webhook.created_at,
            updated_at: webhook.updated_at,
        }
    }
}

fn webhook_error(error: WebhookError) -> ApiError {
    let message = error.to_string();
    match error {
        WebhookError::Invalid(fields) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
                .with_details(json!({ "fields": fields }))
        }
        WebhookError::NotFound { .. } => ApiError::not_found(message),
        WebhookError::Disabled { .. } => {
            ApiError::new(StatusCode::CONFLICT, "webhook_disabled", message)
        }
        WebhookError::Store(store) => ApiError::from(store),
        other => ApiError::internal(&other, false),
    }
}

/// Account-bound tokens manage only webhooks bound to a subset of their accounts.
fn may_manage(caller: &Caller, account_ids: Option<&Vec<String>>) -> bool {
    match (&caller.token.account_ids, account_ids) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(_), Some(ids)) => ids.iter().all(|id| caller.can_see(id)),
    }
}

async fn visible(caller: &Caller, state: &AppState, id: &str) -> Result<Webhook, ApiError> {
    caller.require(Scope::Webhooks)?;
    let webhook = state.webhooks.get(id).await.map_err(webhook_error)?;
    if !may_manage(caller, webhook.account_ids.as_ref()) {
        return Err(ApiError::not_found(format!("webhook {id} not found")));
    }
    Ok(webhook)
}

#[derive(Serialize)]
struct Created {
    #[serde(flatten)]
    webhook: WebhookView,
    /// The signing secret, shown this once.
    secret: String,
}

async fn create(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewWebhookInput>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    caller.require(Scope::Webhooks)?;
    if !may_manage(&caller, input.account_ids.as_ref()) {
        return Err(ApiError::forbidden(
            "this token may only create webhooks bound to its own accounts",
        ));
    }
    let created = state.webhooks.create(input).await.map_err(webhook_error)?;
    let body = Created {
        webhook: WebhookView::from(created.webhook),
        secret: created.secret.expose_secret().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Webhooks)?;
    let webhooks: Vec<WebhookView> = state
        .webhooks
        .list()
        .await
        .map_err(webhook_error)?
        .into_iter()
        .filter(|webhook| may_manage(&caller, webhook.account_ids.as_ref()))
        .map(WebhookView::from)
        .collect();
    Ok(Json(json!({ "webhooks": webhooks })))
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(WebhookView::from(
        visible(&caller, &state, &id).await?,
    )))
}

async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<WebhookUpdateInput>,
) -> Result<Json<WebhookView>, ApiError> {
    visible(&caller, &state, &id).await?;
    if let Some(account_ids) = &input.account_ids
        && !may_manage(&caller, account_ids.as_ref())
    {
        return Err(ApiError::forbidden(
            "this token may only bind webhooks to its own accounts",
        ));
    }
    let updated = state
        .webhooks
        .update(&id, input)
        .await
        .map_err(webhook_error)?;
    Ok(Json(WebhookView::from(updated)))
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    visible(&caller, &state, &id).await?;
    state.webhooks.delete(&id).await.map_err(webhook_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    visible(&caller, &state, &id).await?;
    let event = state.webhooks.send_test(&id).await.map_err(webhook_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "event_id": event.id.0 })),
    ))
}

#[derive(Serialize)]
struct DeliveryView {
    id: String,
    event_id: i64,
    account_id: Option<String>,
    status: &'static str,
    attempts: u32,
    next_attempt_at: DateTime<Utc>,
    last_attempt_at: Option<DateTime<Utc>>,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryView {
    fn from(delivery: Delivery) -> Self {
        Self {
            id: delivery.id.to_string(),
            event_id: delivery.event_id.0,
            account_id: delivery.account_id,
            status: delivery.status.as_str(),
            attempts: delivery.attempts,
            next_attempt_at: delivery.next_attempt_at,
            last_attempt_at: delivery.last_attempt_at,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error,
            created_at: delivery.created_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryParams {
    before: Option<i64>,
    limit: Option<u32>,
}

async fn deliveries(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<DeliveryParams>,
) -> Result<Json<Value>, ApiError> {
    visible(&caller, &state, &id).await?;
    let limit = params.limit.unwrap_or(100).clamp(1, 500);
    let found = state
        .webhooks
        .deliveries(&id, params.before, limit)
        .await
        .map_err(webhook_error)?;
    let views: Vec<DeliveryView> = found.into_iter().map(DeliveryView::from).collect();
    Ok(Json(json!({ "deliveries": views })))
}

async fn redeliver(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Json<DeliveryView>, ApiError> {
    visible(&caller, &state, &id).await?;
    let delivery = state
        .webhooks
        .redeliver(&id, &delivery)
        .await
        .map_err(webhook_error)?;
    Ok(Json(DeliveryView::from(delivery)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventParams {
    /// The last event id already seen (0 for the beginning).
    after: Option<i64>,
    limit: Option<u32>,
    /// Seconds to wait for new events when there are none (long-poll); at most 25.
    wait: Option<u64>,
}

/// The longest long-poll: below the default request timeout (30 s) so the wait ends first.
const MAX_WAIT_SECS: u64 = 25;

async fn events(
    caller: Caller,
    State(state): State<AppState>,
    Query(params): Query<EventParams>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Webhooks)?;
    let scope = match &caller.token.account_ids {
        None => AccountScope::All,
        Some(ids) => AccountScope::Only(ids.clone()),
    };
    let wait = Duration::from_secs(params.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let page = state
        .webhooks
        .stream()
        .events_after(params.after.unwrap_or(0), limit, &scope, wait)
        .await?;
    let events: Vec<EventBody<'_>> = page.events.iter().map(EventBody::of).collect();
    Ok(Json(
        json!({ "events": events, "next_after": page.next_after }),
    ))
}
