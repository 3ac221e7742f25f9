//! `GET /authorize`: check the request, apply the user's decision, hand out a single-use code.
//!
//! Non-goal: a login or consent page. The user named by `login_hint` answers at once, as the test
//! decided with `set_user_decision` (approve by default).
//! Key decision: like Google, an unknown client or an unregistered redirect URI gets an error page and
//! never a redirect (redirecting there would make an open redirector); every later error goes back to
//! the client by redirect, with `error=` and the client's `state=`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::http::StatusCode;
use url::Url;

use super::config::{ClientConfig, Decision};
use super::state::{GrantId, ProviderState, random_token};
use super::wire::Params;

/// An issued authorization code, waiting for its redemption at `/token`.
#[derive(Debug)]
pub(crate) struct PendingCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) email: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) code_challenge: String,
    /// Whether redeeming it yields a refresh token, decided by the client's policy at consent time.
    pub(crate) offline: bool,
    pub(crate) expires_at: SystemTime,
    /// Set once redeemed: a second redemption revokes this grant (RFC 6749 §4.1.2).
    pub(crate) redeemed_as: Option<GrantId>,
}

/// What the browser gets back; no `Debug`, the redirect carries the code.
pub(crate) enum AuthorizeOutcome {
    /// `302 Found` to the client's redirect URI.
    Redirect(Url),
    /// An error shown to the user; the client is never told.
    ErrorPage {
        status: StatusCode,
        error: &'static str,
        description: &'static str,
    },
}

/// The parameters of a well-formed authorization request.
struct ValidRequest<'p> {
    email: &'p str,
    scopes: Vec<String>,
    code_challenge: &'p str,
    access_type_offline: bool,
    prompt_consent: bool,
}

pub(crate) fn authorize(
    state: &mut ProviderState,
    params: &Params,
    now: SystemTime,
) -> AuthorizeOutcome {
    let (client, registered_uri, redirect_uri) = match client_and_redirect(state, params) {
        Ok(found) => found,
        Err(page) => return page,
    };
    let reply = Reply {
        redirect_uri,
        state: params.get("state"),
    };
    let request = match validate(params) {
        Ok(request) => request,
        Err(description) => return reply.error("invalid_request", description),
    };
    if state.decision_of(request.email) == Decision::Deny {
        return reply.error("access_denied", "The user denied access.");
    }
    let code = issue_code(state, &client, registered_uri, request, now);
    reply.code(&code)
}

/// The client and its redirect URI, both as registered (for `/token`'s comparison) and parsed.
fn client_and_redirect<'p>(
    state: &ProviderState,
    params: &'p Params,
) -> Result<(Arc<ClientConfig>, &'p str, Url), AuthorizeOutcome> {
    let page = |error, description| AuthorizeOutcome::ErrorPage {
        status: StatusCode::BAD_REQUEST,
        error,
        description,
    };
    let client = params
        .get("client_id")
        .and_then(|id| state.client(id))
        .ok_or_else(|| page("invalid_client", "The OAuth client was not found."))?;
    let registered = params
        .get("redirect_uri")
        .filter(|uri| client.redirect_uris.iter().any(|known| known == uri))
        .ok_or_else(|| {
            page(
                "redirect_uri_mismatch",
                "The redirect_uri is not registered.",
            )
        })?;
    let redirect_uri = Url::parse(registered)
        .map_err(|_| page("redirect_uri_mismatch", "The redirect_uri is not a URL."))?;
    Ok((client, registered, redirect_uri))
}

fn validate(params: &Params) -> Result<ValidRequest<'_>, &'static str> {
    if params.get("response_type") != Some("code") {
        return Err("response_type must be code.");
    }
    let scopes = params.list("scope");
    if scopes.is_empty() {
        return Err("Missing required parameter: scope");
    }
    let email = params
        .get("login_hint")
        .ok_or("login_hint (the user's email) is required by the test provider.")?;
    if params.get("code_challenge_method") != Some("S256") {
        return Err("PKCE is required: code_challenge_method must be S256.");
    }
    let code_challenge = params
        .get("code_challenge")
        .filter(|challenge| is_s256_challenge(challenge))
        .ok_or("code_challenge must be a base64url SHA-256 digest (43 characters).")?;
    Ok(ValidRequest {
        email,
        scopes,
        code_challenge,
        access_type_offline: params.get("access_type") == Some("offline"),
        prompt_consent: params.list("prompt").iter().any(|p| p == "consent"),
    })
}

fn is_s256_challenge(challenge: &str) -> bool {
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    challenge.len() == 43 && challenge.chars().all(base64url)
}

fn issue_code(
    state: &mut ProviderState,
    client: &ClientConfig,
    redirect_uri: &str,
    request: ValidRequest<'_>,
    now: SystemTime,
) -> String {
    let holds_refresh_token = state.has_offline_grant(&client.client_id, request.email);
    let offline = client.refresh_policy.for_code_flow(
        &request.scopes,
        request.access_type_offline,
        request.prompt_consent,
        holds_refresh_token,
    );
    let code = random_token("pac_");
    let pending = PendingCode {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        email: request.email.to_owned(),
        scopes: request.scopes,
        code_challenge: request.code_challenge.to_owned(),
        offline,
        expires_at: now + client.code_ttl,
        redeemed_as: None,
    };
    state.codes.insert(code.clone(), pending);
    code
}

/// The way back to the client: its redirect URI and its `state`.
struct Reply<'p> {
    redirect_uri: Url,
    state: Option<&'p str>,
}

impl Reply<'_> {
    fn code(self, code: &str) -> AuthorizeOutcome {
        self.with(&[("code", code)])
    }

    fn error(self, error: &str, description: &str) -> AuthorizeOutcome {
        self.with(&[("error", error), ("error_description", description)])
    }

    fn with(mut self, pairs: &[(&str, &str)]) -> AuthorizeOutcome {
        {
            let mut query = self.redirect_uri.query_pairs_mut();
            query.extend_pairs(pairs);
            if let Some(state) = self.state {
                query.append_pair("state", state);
            }
        }
        AuthorizeOutcome::Redirect(self.redirect_uri)
    }
}
