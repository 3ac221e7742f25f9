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

use crate::api_token::Scope;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use postern_store::{
    AccountId, ListCursor, Mailbox, Message, MessageFilter, MessageId, MessageQuery,
};
use postern_sync::engine::view;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

mod changes;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/accounts/{id}/mailboxes", get(mailboxes))
        .route("/accounts/{id}/messages", get(list))
        .route(
            "/accounts/{id}/messages/{message}",
            get(show).patch(changes::update).delete(changes::delete),
        )
        .route("/accounts/{id}/messages/{message}/raw", get(raw))
        .route(
            "/accounts/{id}/messages/{message}/attachments/{part}",
            get(attachment),
        )
}

/// The account id, checked against the caller's bindings and scope (404 for ids it may not see).
fn readable(caller: &Caller, id: &str) -> Result<AccountId, ApiError> {
    visible(caller, id, Scope::MessagesRead)
}

/// The account id, for a caller that must hold `scope` (404 for ids it may not see).
fn visible(caller: &Caller, id: &str, scope: Scope) -> Result<AccountId, ApiError> {
    caller.require(scope)?;
    let not_found = || ApiError::not_found(format!("account {id} not found"));
    if !caller.can_see(id) {
        return Err(not_found());
    }
    AccountId::from_str(id).map_err(|_| not_found())
}

#[derive(Serialize)]
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

#[derive(Serialize)]
struct MailboxList {
    mailboxes: Vec<MailboxView>,
}

async fn mailboxes(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MailboxList>, ApiError> {
    let account_id = readable(&caller, &id)?;
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// A mailbox id, or a mailbox name (`INBOX`).
    mailbox: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
    #[serde(default)]
    unseen: bool,
    from: Option<String>,
    since: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    /// Text to search for on the server (`UID SEARCH TEXT`) in `mailbox` (INBOX by default).
    server_search: Option<String>,
}

#[derive(Serialize)]
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
    from: Vec<postern_store::EmailAddress>,
    to: Vec<postern_store::EmailAddress>,
    cc: Vec<postern_store::EmailAddress>,
    subject: Option<String>,
    date: Option<DateTime<Utc>>,
    snippet: Option<String>,
    attachments: Vec<postern_store::AttachmentSummary>,
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
            from: message.envelope.from,
            to: message.envelope.to,
            cc: message.envelope.cc,
            subject: message.envelope.subject,
            date: message.envelope.date,
            snippet: message.snippet,
            attachments: message.mime.attachments,
            body_stored: message.has_body,
            parse_problems: message.parse_problems,
        }
    }
}

#[derive(Serialize)]
struct MessageList {
    messages: Vec<MessageSummary>,
    next_cursor: Option<String>,
}

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let account_id = readable(&caller, &id)?;
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

#[derive(Serialize)]
struct MessageDetail {
    #[serde(flatten)]
    summary: MessageSummary,
    headers: Vec<view::Header>,
    text: Option<String>,
    html: Option<String>,
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, message)): Path<(String, String)>,
) -> Result<Json<MessageDetail>, ApiError> {
    let account_id = readable(&caller, &id)?;
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
        headers: rendered.headers,
        text: rendered.text,
        html: rendered.html,
    }))
}

async fn raw(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, message)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let account_id = readable(&caller, &id)?;
    let message = message_of(&state, &account_id, &message).await?;
    let raw = body_of(&state, &message).await?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], raw).into_response())
}

async fn attachment(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, message, part)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let account_id = readable(&caller, &id)?;
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
