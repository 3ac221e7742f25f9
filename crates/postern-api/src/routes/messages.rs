//! `/v1/accounts/{id}/mailboxes` and `/v1/accounts/{id}/messages`: the local picture of an
//! account's mail, as the sync engine keeps it, and the operations that change it on the server.
//!
//! Listings are newest first with an opaque cursor that stays correct while the sync inserts mail
//! (it encodes the arrival time and id of the last message seen). Message bodies are rendered from
//! the raw message: the stored one, or, when only the summary is stored (bodies `on_demand` or
//! `cache`), fetched from the server on the first read and kept for the next. Attachments are found
//! by the IMAP part id the listing shows.
//!
//! Changes (`PATCH`, `DELETE`) and `?server_search=` live in [`changes`]: they act on the server
//! first, then the local picture follows with the same events a sync would emit.
//!
//! Non-goal: rendering HTML safely (callers sanitise), creating or renaming mailboxes.

use crate::auth::{Authorized, Caller, needs};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use postern_store::{
    AccountId, ListCursor, Mailbox, Message, MessageFilter, MessageId, MessageQuery,
};
use postern_sync::engine::view;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod changes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mailboxes))
        .routes(routes!(list))
        .routes(routes!(show, changes::update, changes::delete))
        .routes(routes!(raw))
        .routes(routes!(attachment))
}

/// The account id, checked against the caller's bindings (404 for ids it may not see); the scope
/// was checked by the handler's [`Authorized`].
fn visible(caller: &Caller, id: &str) -> Result<AccountId, ApiError> {
    let not_found = || ApiError::not_found(format!("account {id} not found"));
    if !caller.can_see(id) {
        return Err(not_found());
    }
    AccountId::from_str(id).map_err(|_| not_found())
}

/// A mailbox as the sync knows it.
#[derive(Serialize, ToSchema)]
struct MailboxView {
    id: i64,
    name: String,
    role: Option<String>,
    /// Messages on the server at the last sync (EXISTS).
    total: Option<u32>,
    /// Unseen messages on the server at the last sync.
    unseen: Option<u32>,
    /// Messages stored here.
    stored: u64,
    /// Whether the initial sync of this mailbox has finished.
    initial_sync_done: bool,
}

/// The account's mailboxes.
#[derive(Serialize, ToSchema)]
struct MailboxList {
    mailboxes: Vec<MailboxView>,
}

/// List an account's mailboxes, with what the sync has stored of each.
#[utoipa::path(
    get,
    path = "/accounts/{id}/mailboxes",
    operation_id = "list_mailboxes",
    tag = "messages",
    security(("bearer" = ["messages:read"])),
    params(("id" = String, Path, description = "The account's id.")),
    responses(
        (status = 200, description = "The mailboxes.", body = MailboxList),
        (status = 404, description = "No such account, or not one the token may see.", body = ErrorBody),
    )
)]
async fn mailboxes(
    caller: Authorized<needs::MessagesRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MailboxList>, ApiError> {
    let account_id = visible(&caller, &id)?;
    state.accounts.account(&id).await?;
    let mut views = Vec::new();
    for mailbox in state.store.mailboxes().list(&account_id).await? {
        let stored = state.store.messages().count(mailbox.id).await?;
        views.push(MailboxView {
            id: mailbox.id.0,
            role: mailbox.role.map(|role| role.as_str().to_owned()),
            total: mailbox.sync.as_ref().map(|sync| sync.exists),
            unseen: mailbox.sync.as_ref().and_then(|sync| sync.unseen),
            initial_sync_done: mailbox.sync.as_ref().is_some_and(|sync| sync.initial_done),
            name: mailbox.name,
            stored,
        });
    }
    Ok(Json(MailboxList { mailboxes: views }))
}

/// The listing's query string.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// A mailbox id, or a mailbox name (`INBOX`).
    mailbox: Option<String>,
    /// Messages per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only messages without `\Seen`.
    #[serde(default)]
    unseen: bool,
    /// Only messages whose From contains this text.
    from: Option<String>,
    /// Only messages that arrived at or after this time.
    since: Option<DateTime<Utc>>,
    /// Only messages that arrived before this time.
    before: Option<DateTime<Utc>>,
    /// Text to search for on the server (`UID SEARCH TEXT`) in `mailbox` (INBOX by default);
    /// cannot be combined with `cursor`, `unseen`, `from`, `since` or `before`.
    server_search: Option<String>,
}

/// One address of a From/To/Cc header.
#[derive(Serialize, ToSchema)]
pub(super) struct AddressView {
    /// The display name, decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The address; absent for a group name or a broken header.
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
}

impl AddressView {
    /// The addresses of a header, as the API shows them.
    pub(super) fn all(addresses: Vec<postern_store::EmailAddress>) -> Vec<Self> {
        addresses
            .into_iter()
            .map(|address| AddressView {
                name: address.name,
                address: address.address,
            })
            .collect()
    }
}

/// One attachment (or other non-body part) of a message.
#[derive(Serialize, ToSchema)]
struct AttachmentView {
    /// The IMAP part id, e.g. `2` or `1.3`: what the attachment route takes.
    part: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<String>,
    /// Lower-case, e.g. `application/pdf`.
    content_type: String,
    /// Its size in bytes (as transferred when only the server's structure was read).
    size: u64,
}

impl From<postern_store::AttachmentSummary> for AttachmentView {
    fn from(attachment: postern_store::AttachmentSummary) -> Self {
        AttachmentView {
            part: attachment.part,
            filename: attachment.filename,
            content_type: attachment.content_type,
            size: attachment.size,
        }
    }
}

/// A message as listings show it.
#[derive(Serialize, ToSchema)]
struct MessageSummary {
    id: i64,
    mailbox_id: i64,
    uid: u32,
    flags: Vec<String>,
    internaldate: DateTime<Utc>,
    size: u32,
    message_id: Option<String>,
    in_reply_to: Option<String>,
    references: Vec<String>,
    from: Vec<AddressView>,
    to: Vec<AddressView>,
    cc: Vec<AddressView>,
    subject: Option<String>,
    date: Option<DateTime<Utc>>,
    snippet: Option<String>,
    attachments: Vec<AttachmentView>,
    body_stored: bool,
    parse_problems: Option<String>,
}

impl From<Message> for MessageSummary {
    fn from(message: Message) -> Self {
        Self {
            id: message.id.0,
            mailbox_id: message.mailbox_id.0,
            uid: message.uid,
            flags: message.flags,
            internaldate: message.internaldate,
            size: message.size,
            message_id: message.envelope.message_id,
            in_reply_to: message.envelope.in_reply_to,
            references: message.envelope.references,
            from: AddressView::all(message.envelope.from),
            to: AddressView::all(message.envelope.to),
            cc: AddressView::all(message.envelope.cc),
            subject: message.envelope.subject,
            date: message.envelope.date,
            snippet: message.snippet,
            attachments: message
                .mime
                .attachments
                .into_iter()
                .map(AttachmentView::from)
                .collect(),
            body_stored: message.has_body,
            parse_problems: message.parse_problems,
        }
    }
}

/// A page of messages, newest first; with `server_search`, the server's matches instead.
#[derive(Serialize, ToSchema)]
struct MessageList {
    messages: Vec<MessageSummary>,
    /// The `cursor` of the next page; null on the last page (and always with `server_search`).
    next_cursor: Option<String>,
    /// With `server_search`: matches not stored (yet), as UIDs of the mailbox, descending.
    #[serde(skip_serializing_if = "Option::is_none")]
    unsynced_uids: Option<Vec<u32>>,
    /// With `server_search`: the server's matches in all; only the newest `limit` are listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
    /// With `server_search`: the mailbox searched.
    #[serde(skip_serializing_if = "Option::is_none")]
    mailbox: Option<changes::MailboxName>,
}

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// List an account's stored messages, newest first, or search its server.
///
/// Pages with an opaque cursor that stays correct while the sync inserts mail. With
/// `server_search`, the server is asked (`UID SEARCH TEXT`) and the answer lists its matches.
#[utoipa::path(
    get,
    path = "/accounts/{id}/messages",
    operation_id = "list_messages",
    tag = "messages",
    security(("bearer" = ["messages:read"])),
    params(("id" = String, Path, description = "The account's id."), ListParams),
    responses(
        (status = 200, description = "A page of messages.", body = MessageList),
        (status = 400, description = "A wrong limit or cursor, or `server_search` combined with a filter.", body = ErrorBody),
        (status = 404, description = "No such account (or not one the token may see), or no such mailbox.", body = ErrorBody),
        (status = 409, description = "`server_search`: the account does not sync now, or needs re-authorization.", body = ErrorBody),
        (status = 502, description = "`server_search`: the mail server failed or refused.", body = ErrorBody),
    )
)]
async fn list(
    caller: Authorized<needs::MessagesRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let account_id = visible(&caller, &id)?;
    state.accounts.account(&id).await?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    if params.server_search.is_some() {
        return changes::server_search(&state, &account_id, params, limit).await;
    }
    let after = params
        .cursor
        .as_deref()
        .map(ListCursor::from_str)
        .transpose()
        .map_err(|_| ApiError::bad_request("cursor is not one this server issued"))?;
    let mailbox_id = match params.mailbox.as_deref() {
        Some(wanted) => Some(find_mailbox(&state, &account_id, wanted).await?.id),
        None => None,
    };
    let query = MessageQuery {
        account_id,
        mailbox_id,
        limit,
        after,
        filter: MessageFilter {
            unseen: params.unseen,
            from: params.from,
            since: params.since,
            before: params.before,
        },
    };
    let page = state.store.messages().list(query).await?;
    Ok(Json(MessageList {
        messages: page
            .messages
            .into_iter()
            .map(MessageSummary::from)
            .collect(),
        next_cursor: page.next.map(|cursor| cursor.to_string()),
        unsynced_uids: None,
        total: None,
        mailbox: None,
    })
    .into_response())
}

/// A mailbox by id or by name.
async fn find_mailbox(
    state: &AppState,
    account_id: &AccountId,
    wanted: &str,
) -> Result<Mailbox, ApiError> {
    let mailboxes = state.store.mailboxes().list(account_id).await?;
    let by_id = wanted.parse::<i64>().ok();
    mailboxes
        .into_iter()
        .find(|mailbox| Some(mailbox.id.0) == by_id || mailbox.name == wanted)
        .ok_or_else(|| ApiError::not_found(format!("mailbox {wanted} not found")))
}

/// The message, if it belongs to the account.
async fn message_of(
    state: &AppState,
    account_id: &AccountId,
    message: &str,
) -> Result<Message, ApiError> {
    let not_found = || ApiError::not_found(format!("message {message} not found"));
    let id = message.parse::<i64>().map_err(|_| not_found())?;
    let found = state
        .store
        .messages()
        .get(MessageId(id))
        .await?
        .ok_or_else(not_found)?;
    if &found.account_id != account_id {
        return Err(not_found());
    }
    Ok(found)
}

/// The raw message: stored, or fetched from the server now (and stored for the next read).
async fn body_of(state: &AppState, message: &Message) -> Result<Vec<u8>, ApiError> {
    changes::ops(state)
        .body(message)
        .await
        .map_err(changes::ops_error)
}

/// A message with its header and bodies.
#[derive(Serialize, ToSchema)]
struct MessageDetail {
    #[serde(flatten)]
    summary: MessageSummary,
    /// Every header line, decoded and unfolded, in order.
    headers: Vec<HeaderView>,
    /// The plain-text body.
    text: Option<String>,
    /// The HTML body, as sent: sanitise before showing it.
    html: Option<String>,
}

/// One header line.
#[derive(Serialize, ToSchema)]
struct HeaderView {
    name: String,
    value: String,
}

/// The answers of a route that may fetch the message's body from the server first (when only its
/// summary is stored), documented once for all of them.
#[allow(dead_code)] // a documentation type: the handlers answer through `ApiError`
#[derive(utoipa::IntoResponses)]
enum BodyFetchFailures<'a> {
    /// Fetching the body: the account does not sync now, or needs re-authorization.
    #[response(status = 409)]
    NotSyncing(ErrorBody<'a>),
    /// Fetching the body: the message is gone from the server.
    #[response(status = 410)]
    Gone(ErrorBody<'a>),
    /// Fetching the body: the mail server failed.
    #[response(status = 502)]
    ServerFailed(ErrorBody<'a>),
}

/// Show a message with its header and bodies.
///
/// When only its summary is stored, the body is fetched from the server now and kept.
#[utoipa::path(
    get,
    path = "/accounts/{id}/messages/{message}",
    operation_id = "show_message",
    tag = "messages",
    security(("bearer" = ["messages:read"])),
    params(
        ("id" = String, Path, description = "The account's id."),
        ("message" = String, Path, description = "The message's id."),
    ),
    responses(
        (status = 200, description = "The message.", body = MessageDetail),
        (status = 404, description = "No such account or message (or not one the token may see).", body = ErrorBody),
        BodyFetchFailures,
    )
)]
async fn show(
    caller: Authorized<needs::MessagesRead>,
    State(state): State<AppState>,
    ApiPath((id, message)): ApiPath<(String, String)>,
) -> Result<Json<MessageDetail>, ApiError> {
    let account_id = visible(&caller, &id)?;
    let message = message_of(&state, &account_id, &message).await?;
    let raw = body_of(&state, &message).await?;
    let rendered = view::render(&raw).unwrap_or_else(|| view::MessageView {
        headers: Vec::new(),
        text: None,
        html: None,
        attachments: Vec::new(),
    });
    Ok(Json(MessageDetail {
        summary: MessageSummary::from(message),
        headers: rendered
            .headers
            .into_iter()
            .map(|header| HeaderView {
                name: header.name,
                value: header.value,
            })
            .collect(),
        text: rendered.text,
        html: rendered.html,
    }))
}

/// The message as the server has it (RFC 5322).
#[utoipa::path(
    get,
    path = "/accounts/{id}/messages/{message}/raw",
    operation_id = "raw_message",
    tag = "messages",
    security(("bearer" = ["messages:read"])),
    params(
        ("id" = String, Path, description = "The account's id."),
        ("message" = String, Path, description = "The message's id."),
    ),
    responses(
        (status = 200, description = "The message's bytes.", body = String, content_type = "message/rfc822"),
        (status = 404, description = "No such account or message (or not one the token may see).", body = ErrorBody),
        BodyFetchFailures,
    )
)]
async fn raw(
    caller: Authorized<needs::MessagesRead>,
    State(state): State<AppState>,
    ApiPath((id, message)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let account_id = visible(&caller, &id)?;
    let message = message_of(&state, &account_id, &message).await?;
    let raw = body_of(&state, &message).await?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], raw).into_response())
}

/// One attachment's decoded content, by the part id the message's `attachments` list.
#[utoipa::path(
    get,
    path = "/accounts/{id}/messages/{message}/attachments/{part}",
    operation_id = "message_attachment",
    tag = "messages",
    security(("bearer" = ["messages:read"])),
    params(
        ("id" = String, Path, description = "The account's id."),
        ("message" = String, Path, description = "The message's id."),
        ("part" = String, Path, description = "The IMAP part id, e.g. `2`."),
    ),
    responses(
        (status = 200, description = "The content, with the part's content type and file name.", body = String, content_type = "*/*"),
        (status = 404, description = "No such account, message or part (or not one the token may see).", body = ErrorBody),
        BodyFetchFailures,
    )
)]
async fn attachment(
    caller: Authorized<needs::MessagesRead>,
    State(state): State<AppState>,
    ApiPath((id, message, part)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let account_id = visible(&caller, &id)?;
    let message = message_of(&state, &account_id, &message).await?;
    let raw = body_of(&state, &message).await?;
    let found = view::attachment(&raw, &part)
        .ok_or_else(|| ApiError::not_found(format!("message has no part {part}")))?;
    let disposition = match &found.filename {
        Some(name) => format!(
            "attachment; filename=\"{}\"",
            name.replace(['"', '\\', '\r', '\n'], "_")
        ),
        None => "attachment".to_owned(),
    };
    let headers = [
        (header::CONTENT_TYPE, found.content_type),
        (header::CONTENT_DISPOSITION, disposition),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
    ];
    Ok((headers, found.bytes).into_response())
}
