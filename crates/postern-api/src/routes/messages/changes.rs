//! What changes mail on the server: `PATCH` and `DELETE /v1/accounts/{id}/messages/{mid}`, and
//! `GET /v1/accounts/{id}/messages?server_search=` (IMAP SEARCH on the server).
//!
//! - `PATCH {add_flags?, remove_flags?, move_to?}` (scope `messages:write`): flags are system flags
//!   (`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`) or keyword atoms (`$Important`);
//!   `move_to` is a mailbox id or name of the same account. Flags change first, then the message
//!   moves. A flag change answers with the flags the server reports and emits `message.updated`.
//!   A moved message is gone from its mailbox here at once (`message.deleted`) and appears in the
//!   target mailbox, with a new id and a `message.new` event, when that mailbox syncs: right away
//!   when the target's initial sync is complete, else at its next sync (IDLE or the periodic
//!   resync).
//! - `DELETE ?expunge=false|true`: by default the message moves to the account's `\Trash` mailbox
//!   (409 `no_trash_mailbox` when it has none); with `expunge=true`, or when it is in the Trash
//!   already, it is marked `\Deleted` and that UID alone is expunged (`UID EXPUNGE`, UIDPLUS), so
//!   other `\Deleted` messages of the mailbox stay. `message.deleted` follows.
//! - `?server_search=<text>&mailbox=<id or name, default INBOX>&limit=`: the server's matches for
//!   the text anywhere in the header or body (`UID SEARCH TEXT`), the newest `limit` by UID: the
//!   stored ones as in a listing, and `unsynced_uids` for those not stored yet.
//!
//! Non-goal: the work itself, which `postern_sync::ops` does; this module parses, validates (with
//! field-level 400s) and maps each failure to a status.
//!
//! Key decision: every change happens on the server first; a server that refuses, or a mailbox
//! reset under the message (409 `mailbox_reset`), leaves the local picture untouched.

use super::{ListParams, Message, MessageList, MessageSummary, find_mailbox, message_of, visible};
use crate::auth::{Authorized, needs};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use postern_auth::token_manager::TokenError;
use postern_store::{AccountId, Mailbox};
use postern_sync::account::SessionError;
use postern_sync::ops::{
    ChangeOutcome, DeleteMode, DeleteOutcome, Flag, MessageChange, MessageOps, OpsError, SearchText,
};
use postern_sync::{ImapError, ServiceError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

/// The message operations over the state's sync service and store.
pub(super) fn ops(state: &AppState) -> MessageOps {
    MessageOps::new(state.sync.clone(), state.store.clone())
}

/// A mailbox named by its id or its name.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
enum MailboxRef {
    Id(i64),
    Name(String),
}

impl MailboxRef {
    fn text(&self) -> String {
        match self {
            MailboxRef::Id(id) => id.to_string(),
            MailboxRef::Name(name) => name.clone(),
        }
    }
}

/// The body of `PATCH .../messages/{mid}`: at least one of the three.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MessagePatch {
    /// System flags (`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`) or keywords
    /// (`$Important`) to set.
    #[serde(default)]
    add_flags: Vec<String>,
    /// Flags to clear.
    #[serde(default)]
    remove_flags: Vec<String>,
    /// A mailbox of the same account, by id or name, to move the message to (after the flags).
    move_to: Option<MailboxRef>,
}

/// A mailbox as the answers name it.
#[derive(Serialize, ToSchema)]
pub(super) struct MailboxName {
    id: i64,
    name: String,
}

impl From<&Mailbox> for MailboxName {
    fn from(mailbox: &Mailbox) -> Self {
        MailboxName {
            id: mailbox.id.0,
            name: mailbox.name.clone(),
        }
    }
}

/// The answer to a `PATCH`.
#[derive(Serialize, ToSchema)]
pub(super) struct Changed {
    id: i64,
    /// The flags on the server now.
    flags: Vec<String>,
    /// Where the message is on the server now.
    mailbox: MailboxName,
    /// Whether it moved (it then has a new id once its new mailbox syncs).
    moved: bool,
}

/// Change a message's flags, or move it, on the server first.
#[utoipa::path(
    patch,
    path = "/accounts/{id}/messages/{message}",
    operation_id = "update_message",
    tag = "messages",
    security(("bearer" = ["messages:write"])),
    params(
        ("id" = String, Path, description = "The account's id."),
        ("message" = String, Path, description = "The message's id."),
    ),
    request_body = MessagePatch,
    responses(
        (status = 200, description = "The flags and mailbox on the server now.", body = Changed),
        (status = 400, description = "Wrong flags or target, or nothing to do (`details.fields`).", body = ErrorBody),
        (status = 404, description = "No such account or message (or not one the token may see).", body = ErrorBody),
        (status = 409, description = "The mailbox was reset, the server lacks a needed extension, or the account does not sync now.", body = ErrorBody),
        (status = 410, description = "The message is gone from the server.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 502, description = "The mail server failed or refused.", body = ErrorBody),
    )
)]
pub(super) async fn update(
    caller: Authorized<needs::MessagesWrite>,
    State(state): State<AppState>,
    ApiPath((id, message)): ApiPath<(String, String)>,
    ApiJson(patch): ApiJson<MessagePatch>,
) -> Result<Json<Changed>, ApiError> {
    let account_id = visible(&caller, &id)?;
    let message = message_of(&state, &account_id, &message).await?;
    let change = checked_change(&state, &account_id, &message, patch).await?;
    let outcome = ops(&state)
        .change(&message, &change)
        .await
        .map_err(ops_error)?;
    let (flags, mailbox, moved) = match outcome {
        ChangeOutcome::Updated { flags } => {
            let here = state.store.mailboxes().get(message.mailbox_id).await?;
            let name = here.map_or_else(String::new, |mailbox| mailbox.name);
            let mailbox = MailboxName {
                id: message.mailbox_id.0,
                name,
            };
            (flags, mailbox, false)
        }
        ChangeOutcome::Moved { to, flags } => (flags, MailboxName::from(&to), true),
    };
    Ok(Json(Changed {
        id: message.id.0,
        flags,
        mailbox,
        moved,
    }))
}

/// The patch as checked values; every wrong field is named in one 400.
async fn checked_change(
    state: &AppState,
    account_id: &AccountId,
    message: &Message,
    patch: MessagePatch,
) -> Result<MessageChange, ApiError> {
    let mut problems: Vec<Value> = Vec::new();
    let add_flags = checked_flags("add_flags", &patch.add_flags, &mut problems);
    let remove_flags = checked_flags("remove_flags", &patch.remove_flags, &mut problems);
    for (index, flag) in &remove_flags {
        if add_flags.iter().any(|(_, added)| added == flag) {
            problems.push(field(
                &format!("remove_flags[{index}]"),
                &format!("{flag} is also in add_flags"),
            ));
        }
    }
    let move_to = match &patch.move_to {
        Some(wanted) => checked_target(state, account_id, message, wanted, &mut problems).await?,
        None => None,
    };
    if patch.add_flags.is_empty() && patch.remove_flags.is_empty() && patch.move_to.is_none() {
        problems.push(field(
            "",
            "nothing to do: give add_flags, remove_flags or move_to",
        ));
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok(MessageChange {
        add_flags: add_flags.into_iter().map(|(_, flag)| flag).collect(),
        remove_flags: remove_flags.into_iter().map(|(_, flag)| flag).collect(),
        move_to,
    })
}

/// The valid flags of a list, each with its index in the request (repeats dropped); every invalid
/// one is added to `problems`.
fn checked_flags(name: &str, given: &[String], problems: &mut Vec<Value>) -> Vec<(usize, Flag)> {
    let mut flags: Vec<(usize, Flag)> = Vec::new();
    for (index, text) in given.iter().enumerate() {
        match Flag::parse(text) {
            Ok(flag) if flags.iter().all(|(_, known)| *known != flag) => flags.push((index, flag)),
            Ok(_) => {}
            Err(error) => problems.push(field(&format!("{name}[{index}]"), &error.to_string())),
        }
    }
    flags
}

async fn checked_target(
    state: &AppState,
    account_id: &AccountId,
    message: &Message,
    wanted: &MailboxRef,
    problems: &mut Vec<Value>,
) -> Result<Option<Mailbox>, ApiError> {
    let text = wanted.text();
    match find_mailbox(state, account_id, &text).await {
        Ok(target) if target.id == message.mailbox_id => {
            problems.push(field(
                "move_to",
                &format!("the message is in {} already", target.name),
            ));
            Ok(None)
        }
        Ok(target) => Ok(Some(target)),
        Err(error) if error.status() == StatusCode::NOT_FOUND => {
            problems.push(field(
                "move_to",
                &format!("this account has no mailbox {text}"),
            ));
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// The query of `DELETE .../messages/{mid}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteParams {
    /// Expunge it instead of moving it to the Trash.
    #[serde(default)]
    expunge: bool,
}

/// The answer to a `DELETE`.
#[derive(Serialize, ToSchema)]
pub(super) struct Deleted {
    id: i64,
    /// `moved_to_trash` or `expunged`.
    #[schema(schema_with = delete_actions)]
    action: &'static str,
    /// The Trash it moved to.
    #[serde(skip_serializing_if = "Option::is_none")]
    mailbox: Option<MailboxName>,
}

fn delete_actions() -> utoipa::openapi::schema::Schema {
    crate::openapi::one_of(["moved_to_trash", "expunged"])
}

/// Delete a message: to the Trash, or expunged.
///
/// By default it moves to the account's `\Trash` mailbox; with `expunge=true`, or when it is in
/// the Trash already, it is marked `\Deleted` and that UID alone is expunged.
#[utoipa::path(
    delete,
    path = "/accounts/{id}/messages/{message}",
    operation_id = "delete_message",
    tag = "messages",
    security(("bearer" = ["messages:write"])),
    params(
        ("id" = String, Path, description = "The account's id."),
        ("message" = String, Path, description = "The message's id."),
        DeleteParams,
    ),
    responses(
        (status = 200, description = "What was done.", body = Deleted),
        (status = 400, description = "A wrong query.", body = ErrorBody),
        (status = 404, description = "No such account or message (or not one the token may see).", body = ErrorBody),
        (status = 409, description = "No Trash mailbox (`no_trash_mailbox`), a reset mailbox, or the account does not sync now.", body = ErrorBody),
        (status = 410, description = "The message is gone from the server.", body = ErrorBody),
        (status = 502, description = "The mail server failed or refused.", body = ErrorBody),
    )
)]
pub(super) async fn delete(
    caller: Authorized<needs::MessagesWrite>,
    State(state): State<AppState>,
    ApiPath((id, message)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<DeleteParams>,
) -> Result<Json<Deleted>, ApiError> {
    let account_id = visible(&caller, &id)?;
    let message = message_of(&state, &account_id, &message).await?;
    let mode = if params.expunge {
        DeleteMode::Expunge
    } else {
        DeleteMode::ToTrash
    };
    let outcome = ops(&state)
        .delete(&message, mode)
        .await
        .map_err(ops_error)?;
    let answer = match outcome {
        DeleteOutcome::MovedToTrash(trash) => Deleted {
            id: message.id.0,
            action: "moved_to_trash",
            mailbox: Some(MailboxName::from(&trash)),
        },
        DeleteOutcome::Expunged => Deleted {
            id: message.id.0,
            action: "expunged",
            mailbox: None,
        },
    };
    Ok(Json(answer))
}

/// `GET .../messages?server_search=` (the listing handler checked the caller and the limit).
pub(super) async fn server_search(
    state: &AppState,
    account_id: &AccountId,
    params: ListParams,
    limit: u32,
) -> Result<Response, ApiError> {
    let combined = [
        ("cursor", params.cursor.is_some()),
        ("unseen", params.unseen),
        ("from", params.from.is_some()),
        ("since", params.since.is_some()),
        ("before", params.before.is_some()),
    ];
    if let Some((name, _)) = combined.iter().find(|(_, given)| *given) {
        return Err(invalid(vec![field(
            name,
            "cannot be combined with server_search",
        )]));
    }
    let text = params.server_search.unwrap_or_default();
    let text = SearchText::parse(&text)
        .map_err(|error| invalid(vec![field("server_search", &error.to_string())]))?;
    let wanted = params.mailbox.as_deref().unwrap_or("INBOX");
    let mailbox = find_mailbox(state, account_id, wanted).await?;
    let found = ops(state)
        .server_search(&mailbox, &text, limit as usize)
        .await
        .map_err(ops_error)?;
    Ok(Json(MessageList {
        messages: found
            .messages
            .into_iter()
            .map(MessageSummary::from)
            .collect(),
        // A server search is one page.
        next_cursor: None,
        unsynced_uids: Some(found.unsynced_uids),
        total: Some(found.total),
        mailbox: Some(MailboxName::from(&mailbox)),
    })
    .into_response())
}

fn field(name: &str, message: &str) -> Value {
    json!({ "field": name, "message": message })
}

fn invalid(fields: Vec<Value>) -> ApiError {
    let summary = fields
        .iter()
        .filter_map(|f| {
            Some(format!(
                "{}: {}",
                f["field"].as_str()?,
                f["message"].as_str()?
            ))
        })
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", summary)
        .with_details(json!({ "fields": fields }))
}

/// The status and code of a failed message operation.
pub(super) fn ops_error(error: OpsError) -> ApiError {
    let message = error.to_string();
    let status = |status, code| ApiError::new(status, code, message.clone());
    match error {
        OpsError::MessageGone(_) => ApiError::not_found(message),
        OpsError::NotOnServer { .. } => status(StatusCode::GONE, "gone_from_server"),
        OpsError::MailboxReset { .. } => status(StatusCode::CONFLICT, "mailbox_reset"),
        OpsError::NoTrash => status(StatusCode::CONFLICT, "no_trash_mailbox"),
        OpsError::Unsupported { .. } => status(StatusCode::CONFLICT, "not_supported_by_server"),
        OpsError::UnusableMailboxName(_) => status(StatusCode::CONFLICT, "unusable_mailbox_name"),
        OpsError::Session(service) => session_error(service),
        OpsError::Imap(imap) => imap_error(&imap),
        OpsError::Store(store) => ApiError::from(store),
        _ => status(StatusCode::BAD_GATEWAY, "mail_server_error"),
    }
}

fn session_error(error: ServiceError) -> ApiError {
    let message = error.to_string();
    match error {
        ServiceError::TooManyConnections { .. } => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "connections_busy", message)
        }
        ServiceError::AccountNotFound(_) => ApiError::not_found(message),
        ServiceError::NotSyncable { .. } => {
            ApiError::new(StatusCode::CONFLICT, "account_not_syncing", message)
        }
        ServiceError::Session(session) => match *session {
            SessionError::Token(TokenError::NeedsReauth { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "needs_reauth", message)
            }
            SessionError::Imap(imap) => imap_error(&imap),
            SessionError::Store(store) => ApiError::from(store),
            _ => ApiError::new(StatusCode::BAD_GATEWAY, "mail_server_unavailable", message),
        },
        ServiceError::Store(store) => ApiError::from(store),
        other => ApiError::internal(&other, other.is_transient()),
    }
}

fn imap_error(error: &ImapError) -> ApiError {
    let code = match error {
        ImapError::CommandRejected { .. } => "mail_server_refused",
        _ => "mail_server_unavailable",
    };
    ApiError::new(StatusCode::BAD_GATEWAY, code, error.to_string())
}
