//! Bearer-token authentication for every `/v1` route but `/v1/health`.
//!
//! [`require_token`] is a middleware, not an extractor a handler may forget: it runs before routing
//! inside `/v1`, answers 401 with the JSON error shape when the token is missing, malformed, unknown,
//! revoked or expired, and otherwise leaves a [`Caller`] in the request for handlers to read.
//!
//! Routes enforce their scope with [`Authorized`], an extractor that names the scope in the handler's
//! signature (`Authorized<needs::MessagesRead>`) and runs before the body and the query are parsed, so a
//! token without the scope learns nothing about what the request would have done (403, not 400).
//!
//! Non-goal: rate limiting and account bindings beyond carrying them.

use crate::api_token::{Scope, hash_token};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use postern_store::ApiToken;
use std::marker::PhantomData;
use std::ops::Deref;

/// How stale a token's "last used" time may get before a request refreshes it. Writing on every
/// request would turn each read into a database write.
const LAST_USED_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// The authenticated caller of a request: which token it presented and what that token may do.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's stored record (never its secret, which the server does not have).
    pub token: ApiToken,
    /// The token's scopes that this server version knows.
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// Whether the caller holds `scope` (or `admin`, which implies every scope).
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }

    /// Whether the token may see `account_id`: tokens bound to accounts see only those. Others
    /// answer 404 rather than 403, so a bound token cannot learn which ids exist.
    pub fn can_see(&self, account_id: &str) -> bool {
        self.token
            .account_ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| id == account_id))
    }

    /// Refuses with 403 unless the caller holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this token lacks the `{scope}` scope"
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("this route requires an API token"))
    }
}

/// A scope a route requires, as a type: see [`needs`].
pub trait RequiredScope {
    /// The scope.
    const SCOPE: Scope;
}

/// One marker type per [`Scope`], for [`Authorized`].
pub mod needs {
    use super::{RequiredScope, Scope};

    macro_rules! markers {
        ($($name:ident),+ $(,)?) => {
            $(
                #[doc = concat!("The `", stringify!($name), "` scope.")]
                #[derive(Debug)]
                pub struct $name;

                impl RequiredScope for $name {
                    const SCOPE: Scope = Scope::$name;
                }
            )+
        };
    }

    markers!(
        Admin,
        AccountsRead,
        AccountsWrite,
        MessagesRead,
        MessagesWrite,
        Send,
        Webhooks,
        Metrics
    );
}

/// The caller of a route that requires the scope `S`: extracting it answers 401 without a caller and
/// 403 when the caller lacks `S`. It dereferences to the [`Caller`].
#[derive(Debug)]
pub struct Authorized<S> {
    caller: Caller,
    scope: PhantomData<S>,
}

impl<S> Deref for Authorized<S> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<S: RequiredScope, State: Send + Sync> FromRequestParts<State> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(S::SCOPE)?;
        Ok(Self {
            caller,
            scope: PhantomData,
        })
    }
}

/// Middleware: authenticates the bearer token and stores the [`Caller`] for the handler.
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = bearer_token(request.headers())?;
    let token = state
        .store
        .api_tokens()
        .find_by_hash(&hash_token(presented))
        .await?
        .ok_or_else(|| ApiError::unauthorized("the API token is not valid"))?;
    let now = Utc::now();
    if token.expires_at.is_some_and(|expiry| expiry <= now) {
        return Err(ApiError::unauthorized("the API token has expired"));
    }
    if let Err(wait) = state.limiter.check(token.id.as_str()) {
        return Err(ApiError::rate_limited(wait));
    }
    if needs_touch(token.last_used_at, now) {
        state
            .store
            .api_tokens()
            .touch_last_used(&token.id, now)
            .await?;
    }
    let scopes = known_scopes(&token);
    request.extensions_mut().insert(Caller { token, scopes });
    Ok(next.run(request).await)
}

/// The token text of an `Authorization: Bearer …` header.
fn bearer_token(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("missing API token: send `Authorization: Bearer <token>`")
    })?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not valid text"))?;
    let (scheme, token) = text.split_once(' ').ok_or_else(|| {
        ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

fn needs_touch(last_used: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_used.is_none_or(|at| now - at >= LAST_USED_GRANULARITY)
}

/// Scopes stored with a token that this version does not know are ignored (and logged), so a token
/// made by a newer Postern keeps working with the scopes both versions share.
fn known_scopes(token: &ApiToken) -> Vec<Scope> {
    token
        .scopes
        .iter()
        .filter_map(|name| match name.parse::<Scope>() {
            Ok(scope) => Some(scope),
            Err(_) => {
                tracing::warn!(token = %token.name, scope = %name, "ignoring unknown scope on token");
                None
            }
        })
        .collect()
}
