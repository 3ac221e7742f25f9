//! `GET /v1/search?q=&account=&limit=`: local full-text search over the stored messages of the
//! accounts the caller may see.
//!
//! Every word of `q` must match (subject, From/To, snippet, and the text of bodies stored
//! locally); words are plain text, never query syntax. Results are best match first.
//!
//! Non-goal: paging (a search answers with its best `limit` matches) and searching mail that is
//! not stored locally (`?server_search=` on the message listing asks the server instead).
//! Key decision: an account-bound token searches only its accounts, and naming an account it may
//! not see answers 404 like every other route, so the search cannot reveal which ids exist.

use crate::api_token::Scope;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use postern_store::{AccountId, EmailAddress, Message, SearchQuery, SearchText};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    q: String,
    /// Only this account.
    account: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct SearchResult {
    id: i64,
    account_id: String,
    mailbox_id: i64,
    subject: Option<String>,
    from: Vec<EmailAddress>,
    date: Option<DateTime<Utc>>,
    internaldate: DateTime<Utc>,
    snippet: Option<String>,
    /// Relevance within this answer (bm25): lower is a better match.
    rank: f64,
}

impl SearchResult {
    fn new(message: Message, rank: f64) -> Self {
        SearchResult {
            id: message.id.0,
            account_id: message.account_id.to_string(),
            mailbox_id: message.mailbox_id.0,
            subject: message.envelope.subject,
            from: message.envelope.from,
            date: message.envelope.date,
            internaldate: message.internaldate,
            snippet: message.snippet,
            rank,
        }
    }
}

#[derive(Serialize)]
struct SearchResults {
    messages: Vec<SearchResult>,
}

async fn search(
    caller: Caller,
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchResults>, ApiError> {
    caller.require(Scope::MessagesRead)?;
    let text = SearchText::parse(&params.q)
        .map_err(|_| ApiError::bad_request("q must contain at least one word to search for"))?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let account_ids = searched_accounts(&caller, params.account.as_deref())?;
    let query = SearchQuery {
        text,
        account_ids,
        limit,
    };
    let hits = state.store.search().search(query).await?;
    let mut messages = Vec::with_capacity(hits.len());
    for hit in hits {
        // A message deleted between the search and this read is simply left out.
        if let Some(message) = state.store.messages().get(hit.id).await? {
            messages.push(SearchResult::new(message, hit.rank));
        }
    }
    Ok(Json(SearchResults { messages }))
}

/// The accounts to search: the one asked for (404 unless the caller may see it), else the
/// token's bound accounts, else every account (`None`).
fn searched_accounts(
    caller: &Caller,
    wanted: Option<&str>,
) -> Result<Option<Vec<AccountId>>, ApiError> {
    if let Some(id) = wanted {
        let not_found = || ApiError::not_found(format!("account {id} not found"));
        if !caller.can_see(id) {
            return Err(not_found());
        }
        return Ok(Some(vec![
            AccountId::from_str(id).map_err(|_| not_found())?,
        ]));
    }
    // A bound id that is not a valid account id names no account: it can match nothing.
    Ok(caller.token.account_ids.as_ref().map(|bound| {
        bound
            .iter()
            .filter_map(|id| AccountId::from_str(id).ok())
            .collect()
    }))
}
