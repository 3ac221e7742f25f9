//! `/v1/tokens`: the API tokens that exist (never their secrets, which the server does not keep).
//!
//! Non-goal (for now): creating and revoking tokens over HTTP; `postern token create` does that on the
//! data dir. Listing is here so an operator can see what exists and when each token was last used.

use crate::api_token::Scope;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use postern_store::ApiToken;
use serde::Serialize;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/tokens", get(list))
}

/// A token as the API shows it.
#[derive(Serialize)]
struct TokenView {
    id: String,
    name: String,
    scopes: Vec<String>,
    account_ids: Option<Vec<String>>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
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

#[derive(Serialize)]
struct TokenList {
    tokens: Vec<TokenView>,
}

async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    caller.require(Scope::Admin)?;
    let tokens = state.store.api_tokens().list().await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }))
}
