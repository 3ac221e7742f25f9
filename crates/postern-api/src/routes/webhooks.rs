//! `/v1/webhooks` and `/v1/events`: how integrations consume Postern's event log — pushed to signed
//! webhooks, or pulled with a cursor (long-poll).
//!
//! Non-goal: delivery itself (signing, retries, ordering); `postern-events` does that.

use crate::auth::{Authorized, Caller, needs};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use postern_events::{AccountScope, EventBody, NewWebhookInput, WebhookError, WebhookUpdateInput};
use postern_store::{Delivery, DeliveryStatus, Webhook};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod docs;

use docs::{EventDoc, WebhookChange, WebhookRequest};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(test))
        .routes(routes!(deliveries))
        .routes(routes!(redeliver))
        .routes(routes!(events))
}

/// The path of one webhook.
const WEBHOOK_ID: &str = "The webhook's id.";

/// A webhook: where events go, which ones, and for which accounts. Never its secret.
#[derive(Serialize, ToSchema)]
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

/// The webhook, or 404 when the caller may not manage it; the scope was checked by the handler's
/// [`Authorized`].
async fn visible(caller: &Caller, state: &AppState, id: &str) -> Result<Webhook, ApiError> {
    let webhook = state.webhooks.get(id).await.map_err(webhook_error)?;
    if !may_manage(caller, webhook.account_ids.as_ref()) {
        return Err(ApiError::not_found(format!("webhook {id} not found")));
    }
    Ok(webhook)
}

/// The creation answer: the webhook and, this once, its signing secret.
#[derive(Serialize, ToSchema)]
struct Created {
    #[serde(flatten)]
    webhook: WebhookView,
    /// The signing secret, shown this once.
    secret: String,
}

/// Add a webhook: Postern POSTs each matching event to it, signed, with retries.
#[utoipa::path(
    post,
    path = "/webhooks",
    operation_id = "create_webhook",
    tag = "webhooks",
    security(("bearer" = ["webhooks"])),
    request_body = WebhookRequest,
    responses(
        (status = 201, description = "Created, with its signing secret.", body = Created),
        (status = 400, description = "The request names wrong fields (`details.fields`).", body = ErrorBody),
        (status = 403, description = "An account-bound token asked for a webhook beyond its accounts.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    )
)]
async fn create(
    caller: Authorized<needs::Webhooks>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewWebhookInput>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
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

/// The webhooks the token may manage.
#[derive(Serialize, ToSchema)]
struct WebhookList {
    webhooks: Vec<WebhookView>,
}

/// List the webhooks the token may manage.
#[utoipa::path(
    get,
    path = "/webhooks",
    operation_id = "list_webhooks",
    tag = "webhooks",
    security(("bearer" = ["webhooks"])),
    responses((status = 200, description = "The webhooks.", body = WebhookList))
)]
async fn list(
    caller: Authorized<needs::Webhooks>,
    State(state): State<AppState>,
) -> Result<Json<WebhookList>, ApiError> {
    let webhooks: Vec<WebhookView> = state
        .webhooks
        .list()
        .await
        .map_err(webhook_error)?
        .into_iter()
        .filter(|webhook| may_manage(&caller, webhook.account_ids.as_ref()))
        .map(WebhookView::from)
        .collect();
    Ok(Json(WebhookList { webhooks }))
}

/// Show one webhook.
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    operation_id = "show_webhook",
    tag = "webhooks",
    security(("bearer" = ["webhooks"])),
    params(("id" = String, Path, description = WEBHOOK_ID)),
    responses(
        (status = 200, description = "The webhook.", body = WebhookView),
        (status = 404, description = "No such webhook, or not one the token may manage.", body = ErrorBody),
    )
)]
async fn show(
    caller: Authorized<needs::Webhooks>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(WebhookView::from(
        visible(&caller, &state, &id).await?,
    )))
}

/// Change a webhook; omitted fields stay as they are.
#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    operation_id = "update_webhook",
    tag = "webhooks",
    security(("bearer" = ["webhooks"])),
    params(("id" = String, Path, description = WEBHOOK_ID)),
    request_body = WebhookChange,
    responses(
        (status = 200, description = "The webhook as it is now.", body = WebhookView),
        (status = 400, description = "The request names wrong fields (`details.fields`).", body = ErrorBody),
        (status = 403, description = "An account-bound token asked to bind it beyond its accounts.", body = ErrorBody),
        (status = 404, description = "No such webhook, or not one the token may manage.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    )
)]
async fn update(
    caller: Authorized<needs::Webhooks>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
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

/// Remove a webhook; its pending deliveries are dropped.
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    operation_id = "remove_webhook",
    tag = "webhooks",
    security(("bearer" = ["webhooks"])),
    params(("id" = String, Path, description = WEBHOOK_ID)),
    responses(
        (status = 204, description = "Removed."),
        (status = 404, description = "No such webhook, or not one the token may manage.", body = ErrorBody),
    )
)]
async fn remove(
    caller: Authorized<needs::Webhooks>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    visible(&caller, &state, &id).await?;
    state.webhooks.delete(&id).await.map_err(webhook_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The test event queued for one webhook.
#[derive(Serialize, ToSchema)]
struct TestQueued {
    /// The `webhook.test` event's id.
    event_id: i64,
}

/// Queue a `webhook.test` event for this webhook alone.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/test",
    operation_id = "test_webhook",
    tag = "webhooks",
    security(("bearer" = ["webhooks"])),
    params(("id" = String, Path, description = WEBHOOK_ID)),
    responses(
        (status = 202, description = "Queued; its delivery shows in the deliveries.", body = TestQueued),
        (status = 404, description = "No such webhook, or not one the token may manage.", body = ErrorBody),
        (status = 409, description = "The webhook is disabled (`webhook_disabled`).", body = ErrorBody),
    )
)]
async fn test(
    caller: Authorized<needs::Webhooks>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<TestQueued>), ApiError> {
    visible(&caller, &state, &id).await?;
    let event = state.webhooks.send_test(&id).await.map_err(webhook_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TestQueued {
            event_id: event.id.0,
        }),
    ))
}

fn delivery_statuses() -> utoipa::openapi::schema::Schema {
    crate::openapi::one_of(DeliveryStatus::ALL.iter().map(|status| status.as_str()))
}

/// One event's delivery to one webhook.
#[derive(Serialize, ToSchema)]
struct DeliveryView {
    id: String,
    event_id: i64,
    account_id: Option<String>,
    #[schema(schema_with = delivery_statuses)]
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

/// The deliveries listing's query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeliveryParams {
    /// Only deliveries of events before this event id.
    before: Option<i64>,
    /// Deliveries per page, 1 to 500 (default 100; others are clamped).
    limit: Option<u32>,
}

/// A page of deliveries, newest first.
#[derive(Serialize, ToSchema)]
struct DeliveryList {
    deliveries: Vec<DeliveryView>,
}

/// List a webhook's deliveries, newest first.
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    security(("bearer" = ["webhooks"])),
    params(("id" = String, Path, description = WEBHOOK_ID), DeliveryParams),
    responses(
        (status = 200, description = "A page of deliveries.", body = DeliveryList),
        (status = 400, description = "A wrong query.", body = ErrorBody),
        (status = 404, description = "No such webhook, or not one the token may manage.", body = ErrorBody),
    )
)]
async fn deliveries(
    caller: Authorized<needs::Webhooks>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<Json<DeliveryList>, ApiError> {
    visible(&caller, &state, &id).await?;
    let limit = params.limit.unwrap_or(100).clamp(1, 500);
    let found = state
        .webhooks
        .deliveries(&id, params.before, limit)
        .await
        .map_err(webhook_error)?;
    let views: Vec<DeliveryView> = found.into_iter().map(DeliveryView::from).collect();
    Ok(Json(DeliveryList { deliveries: views }))
}

/// Deliver an event to the webhook again, as a new attempt now.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/deliveries/{delivery}/redeliver",
    operation_id = "redeliver_webhook_delivery",
    tag = "webhooks",
    security(("bearer" = ["webhooks"])),
    params(
        ("id" = String, Path, description = WEBHOOK_ID),
        ("delivery" = String, Path, description = "The delivery's id."),
    ),
    responses(
        (status = 200, description = "The delivery, queued again.", body = DeliveryView),
        (status = 404, description = "No such webhook or delivery, or not one the token may manage.", body = ErrorBody),
        (status = 409, description = "The webhook is disabled (`webhook_disabled`).", body = ErrorBody),
    )
)]
async fn redeliver(
    caller: Authorized<needs::Webhooks>,
    State(state): State<AppState>,
    ApiPath((id, delivery)): ApiPath<(String, String)>,
) -> Result<Json<DeliveryView>, ApiError> {
    visible(&caller, &state, &id).await?;
    let delivery = state
        .webhooks
        .redeliver(&id, &delivery)
        .await
        .map_err(webhook_error)?;
    Ok(Json(DeliveryView::from(delivery)))
}

/// The event stream's query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EventParams {
    /// The last event id already seen (0 for the beginning): the `next_after` of the previous page.
    after: Option<i64>,
    /// Events per page, 1 to 1000 (default 100; others are clamped).
    limit: Option<u32>,
    /// Seconds to wait for new events when there are none (long-poll); at most 25.
    wait: Option<u64>,
}

/// A page of events, in id order.
#[derive(Serialize, ToSchema)]
struct EventPage<'a> {
    /// The events, each as webhooks receive it.
    #[schema(value_type = Vec<EventDoc>)]
    events: Vec<EventBody<'a>>,
    /// The `after` of the next call: the last event id examined.
    next_after: i64,
}

/// The longest long-poll: below the default request timeout (30 s) so the wait ends first.
const MAX_WAIT_SECS: u64 = 25;

/// Pull events after a cursor, waiting for new ones (long-poll) when asked.
///
/// An account-bound token gets only its accounts' events.
#[utoipa::path(
    get,
    path = "/events",
    operation_id = "list_events",
    tag = "webhooks",
    security(("bearer" = ["webhooks"])),
    params(EventParams),
    responses(
        (status = 200, description = "A page of events (empty when none came within `wait`).", body = EventPage),
        (status = 400, description = "A wrong query.", body = ErrorBody),
    )
)]
async fn events(
    caller: Authorized<needs::Webhooks>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<EventParams>,
) -> Result<Response, ApiError> {
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
    let events = page.events.iter().map(EventBody::of).collect();
    let body = EventPage {
        events,
        next_after: page.next_after,
    };
    // Rendered here: the page borrows the events read above.
    Ok(Json(body).into_response())
}
