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

use crate::auth::{Authorized, Caller, needs};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::routes::messages::AddressView;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use postern_store::{AccountId, Message, SearchQuery, SearchText};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

/// The search's query string.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    /// Words that must all match (plain text, never query syntax).
    #[param(pattern = "[A-Za-z0-9]")]
    q: String,
    /// Only this account (404 for an account the token may not see).
    account: Option<String>,
    /// Results, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

/// One match.
#[derive(Serialize, ToSchema)]
struct SearchResult {
    id: i64,
    account_id: String,
    mailbox_id: i64,
    subject: Option<String>,
    from: Vec<AddressView>,
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
            from: AddressView::all(message.envelope.from),
            date: message.envelope.date,
            internaldate: message.internaldate,
            snippet: message.snippet,
            rank,
        }
    }
}

/// The best matches, best first.
#[derive(Serialize, ToSchema)]
struct SearchResults {
    messages: Vec<SearchResult>,
}

/// Search the stored mail of the accounts the token may see.
///
/// Every word of `q` must match (subject, From/To, snippet, and the text of stored bodies).
#[utoipa::path(
    get,
    path = "/search",
    operation_id = "search_messages",
    tag = "search",
    security(("bearer" = ["messages:read"])),
    params(SearchParams),
    responses(
        (status = 200, description = "The best matches.", body = SearchResults),
        (status = 400, description = "No word in `q`, or a wrong limit.", body = ErrorBody),
        (status = 404, description = "An account the token may not see, or no such account id.", body = ErrorBody),
    )
)]
async fn search(
    caller: Authorized<needs::MessagesRead>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResults>, ApiError> {
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
