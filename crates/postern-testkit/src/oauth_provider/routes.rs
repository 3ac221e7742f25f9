//! The axum router: one small handler per endpoint, over the state shared with the test thread.
//!
//! Non-goal: decisions about tokens; handlers parse, count, play the fault, then call `authorize`,
//! `grants`, `device` or the state and render what they return.
//! Key decision: every call is counted *before* its fault is played, so a test can assert that a
//! client retried a failing endpoint exactly as often as it should.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::authorize::{self, AuthorizeOutcome};
use super::config::Fault;
use super::counters::{Endpoint, GrantType};
use super::device;
use super::grants;
use super::state::ProviderState;
use super::wire::{OAuthError, Params, PresentedCredentials, bearer_token, no_store};

/// What the server thread and the test thread share.
pub(crate) struct Shared {
    state: Mutex<ProviderState>,
    pub(crate) base_url: String,
}

impl Shared {
    pub(crate) fn new(base_url: String) -> Self {
        Self {
            state: Mutex::new(ProviderState::default()),
            base_url,
        }
    }

    /// Locks the state; a test that panicked while holding it cannot leave it half-changed in a way
    /// that matters, so poisoning is ignored rather than spread to every other test.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ProviderState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record<'a>(
        &self,
        endpoint: Endpoint,
        client_ids: impl IntoIterator<Item = &'a str>,
    ) -> Fault {
        self.lock().record_call(endpoint, client_ids)
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/introspect", get(introspect).post(introspect))
        .route("/revoke", post(revoke))
        .route("/device/code", post(device_authorization))
        .route("/device", get(device_page))
        .with_state(shared)
}

/// Plays a fault; `Some` is the answer that replaces the real one.
async fn simulate(fault: Fault) -> Option<Response> {
    match fault {
        Fault::None => None,
        Fault::Slow(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
        Fault::ServerError => Some(OAuthError::server_error().into_response()),
        Fault::Unavailable => Some(OAuthError::temporarily_unavailable().into_response()),
    }
}

fn respond<T: IntoResponse>(endpoint: &str, result: Result<T, OAuthError>) -> Response {
    match result {
        Ok(answer) => answer.into_response(),
        Err(error) => {
            tracing::debug!(endpoint, error = error.error, description = %error.description, "refused");
            error.into_response()
        }
    }
}

async fn authorize(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let client_id = params
        .as_ref()
        .ok()
        .and_then(|params| params.get("client_id"));
    if let Some(faulted) = simulate(shared.record(Endpoint::Authorize, client_id)).await {
        return faulted;
    }
    let params = match params {
        Ok(params) => params,
        Err(error) => return error_page(StatusCode::BAD_REQUEST, error.error, &error.description),
    };
    let outcome = authorize::authorize(&mut shared.lock(), &params, SystemTime::now());
    match outcome {
        AuthorizeOutcome::Redirect(url) => {
            (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
        }
        AuthorizeOutcome::ErrorPage {
            status,
            error,
            description,
        } => error_page(status, error, description),
    }
}

fn error_page(status: StatusCode, error: &str, description: &str) -> Response {
    let page = format!(
        "<!doctype html><h1>Error {}: {}</h1><p>{}</p>",
        status.as_u16(),
        escape_html(error),
        escape_html(description),
    );
    (status, Html(page)).into_response()
}

/// A description may quote a parameter name from the request; never echo it as markup.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A form body and the client credentials it carries.
fn form_request(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, PresentedCredentials), OAuthError> {
    let params = Params::from_form_body(headers, body)?;
    let presented = PresentedCredentials::from_request(headers, &params)?;
    Ok((params, presented))
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = form_request(&headers, &body);
    let (grant_type, claimed) = match &request {
        Ok((params, presented)) => {
            let grant_type = GrantType::from_param(params.get("grant_type"));
            (grant_type, presented.claimed_ids().collect())
        }
        Err(_) => (GrantType::Unsupported, Vec::new()),
    };
    if let Some(faulted) = simulate(shared.record(Endpoint::Token(grant_type), claimed)).await {
        return faulted;
    }
    let result = request.and_then(|(params, presented)| {
        grants::token(&mut shared.lock(), &presented, &params, SystemTime::now())
    });
    respond("token", result)
}

async fn device_authorization(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = form_request(&headers, &body);
    let claimed = match &request {
        Ok((_, presented)) => presented.claimed_ids().collect(),
        Err(_) => Vec::new(),
    };
    if let Some(faulted) = simulate(shared.record(Endpoint::DeviceAuthorization, claimed)).await {
        return faulted;
    }
    let verification_uri = format!("{}/device", shared.base_url);
    let result = request.and_then(|(params, presented)| {
        let mut state = shared.lock();
        let client = state.authenticate(&presented)?;
        device::authorize_device(
            &mut state,
            &client,
            &params,
            verification_uri,
            SystemTime::now(),
        )
    });
    respond(
        "device/code",
        result.map(|answer| (no_store(), axum::Json(answer))),
    )
}

/// A token-carrying request to `/introspect` or `/revoke`: the token, from the form, the query or a
/// Bearer header (Dovecot's `introspection_mode = auth`), and optional client credentials.
struct TokenRequest {
    token: Option<String>,
    presented: PresentedCredentials,
}

impl TokenRequest {
    fn parse(headers: &HeaderMap, query: Option<String>, body: &[u8]) -> Result<Self, OAuthError> {
        let (params, presented) = form_request(headers, body)?;
        let query = Params::parse(query.unwrap_or_default().as_bytes())?;
        let token = params
            .get("token")
            .or_else(|| query.get("token"))
            .map(str::to_owned)
            .or_else(|| bearer_token(headers));
        Ok(Self { token, presented })
    }

    /// Authenticates the client when credentials came along, then yields the token.
    fn checked_token(&self, state: &ProviderState) -> Result<&str, OAuthError> {
        if !self.presented.readings.is_empty() {
            state.authenticate(&self.presented)?;
        }
        self.token
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_request("Missing parameter: token"))
    }

    /// The call is attributed to the client owning the token, or else to the one authenticating.
    fn record(&self, shared: &Shared, endpoint: Endpoint) -> Fault {
        let mut state = shared.lock();
        let owner = self
            .token
            .as_deref()
            .and_then(|token| state.client_of_token(token));
        let owner = owner.map(str::to_owned);
        let claimed = owner
            .iter()
            .map(String::as_str)
            .chain(self.presented.claimed_ids());
        state.record_call(endpoint, claimed)
    }
}

async fn introspect(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let request = TokenRequest::parse(&headers, query, &body);
    let fault = match &request {
        Ok(request) => request.record(&shared, Endpoint::Introspect),
        Err(_) => shared.record(Endpoint::Introspect, None),
    };
    if let Some(faulted) = simulate(fault).await {
        return faulted;
    }
    let result = request.and_then(|request| {
        let state = shared.lock();
        let token = request.checked_token(&state)?;
        Ok(axum::Json(state.introspect(token, SystemTime::now())))
    });
    respond("introspect", result)
}

async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let request = TokenRequest::parse(&headers, query, &body);
    let fault = match &request {
        Ok(request) => request.record(&shared, Endpoint::Revoke),
        Err(_) => shared.record(Endpoint::Revoke, None),
    };
    if let Some(faulted) = simulate(fault).await {
        return faulted;
    }
    let result = request.and_then(|request| {
        let mut state = shared.lock();
        let token = request.checked_token(&state)?.to_owned();
        // Google answers an unknown, expired or already revoked token with 400 invalid_token.
        match state.revoke_by_token(&token, SystemTime::now()) {
            true => Ok(StatusCode::OK),
            false => Err(OAuthError::bad_request(
                "invalid_token",
                "Token expired or revoked",
            )),
        }
    });
    respond("revoke", result)
}

async fn device_page() -> Html<&'static str> {
    Html("<!doctype html><p>Test provider: approve with TestOAuthProvider::approve_device.</p>")
}
