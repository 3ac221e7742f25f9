//! `GET /oauth/callback`: where the provider sends the user's browser back after consent.
//!
//! No API token here: the caller is a browser. The `state` parameter is the credential — single
//! use, ten minutes, bound to one pending account — and anything wrong with it answers a 400 page
//! that changes nothing. On success the result is a small page, or a redirect to the operator's
//! configured URL with `account_id` and `status` in the query.
//!
//! Non-goal: styling. The page says what happened and what to do, in plain words, and nothing else;
//! it loads nothing from anywhere.

use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use postern_accounts::ServiceError;
use postern_auth::flows::Callback;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(callback))
}

/// The query the provider sends the browser back with (the handler reads it as
/// [`postern_auth::flows::Callback`]; this describes it).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // only describes the query
struct CallbackQuery {
    /// The `state` Postern put in the authorization link: single use, ten minutes.
    state: Option<String>,
    /// The authorization code, on success.
    code: Option<String>,
    /// The provider's error code, e.g. `access_denied`.
    error: Option<String>,
    /// The provider's words about the error.
    error_description: Option<String>,
}

/// The OAuth redirect target: finishes connecting an account after the user's consent.
///
/// For browsers, not API clients: it answers a small HTML page, or redirects to the configured
/// URL with `account_id` and `status` (and `error`) in the query.
#[utoipa::path(
    get,
    path = "/oauth/callback",
    operation_id = "oauth_callback",
    tag = "oauth",
    params(CallbackQuery),
    responses(
        (status = 200, description = "Connected: a page saying so.", body = String, content_type = "text/html; charset=utf-8"),
        (status = 303, description = "Redirect to the configured URL with the outcome in the query."),
        (status = 400, description = "A missing, unknown, used or expired `state`, or a declined consent: a page saying what to do. A query that does not parse at all answers the JSON error shape.",
            content(
                (String = "text/html; charset=utf-8"),
                (crate::error::ErrorBody = "application/json"),
            )),
        (status = 500, description = "The server failed: a page saying so.", body = String, content_type = "text/html; charset=utf-8"),
        (status = 502, description = "The provider's token endpoint or the mail server failed: a page saying so.", body = String, content_type = "text/html; charset=utf-8"),
    )
)]
async fn callback(
    State(state): State<AppState>,
    ApiQuery(callback): ApiQuery<Callback>,
) -> Response {
    match state.accounts.complete_authorization(callback).await {
        Ok(account) => {
            tracing::info!(account = %account.id, "account connected through the OAuth callback");
            super::accounts::start_sync(&state, &account);
            match &state.callback_redirect {
                Some(url) => redirect(url, account.id.as_str(), "connected", None),
                None => page(
                    StatusCode::OK,
                    "Account connected",
                    &format!(
                        "{} is connected to Postern. You can close this window.",
                        account.email
                    ),
                ),
            }
        }
        Err(error) => failure(&state, error),
    }
}

fn failure(state: &AppState, error: ServiceError) -> Response {
    let status = match &error {
        ServiceError::Flow(flow) if flow.is_callers_fault() => StatusCode::BAD_REQUEST,
        ServiceError::LoginRefused { .. } => StatusCode::BAD_REQUEST,
        ServiceError::MailServerUnavailable { .. } => StatusCode::BAD_GATEWAY,
        ServiceError::Token(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::warn!(%error, status = status.as_u16(), "OAuth callback failed");
    let account_id = match &error {
        ServiceError::Flow(postern_auth::flows::FlowError::Declined { account_id, .. })
        | ServiceError::Flow(postern_auth::flows::FlowError::Exchange { account_id, .. }) => {
            Some(account_id.clone())
        }
        _ => None,
    };
    let message = if status.is_server_error()
        && !matches!(
            error,
            ServiceError::MailServerUnavailable { .. } | ServiceError::Token(_)
        ) {
        "Postern failed to finish connecting the account. The server log has the details."
            .to_owned()
    } else {
        error.to_string()
    };
    match (&state.callback_redirect, account_id) {
        (Some(url), Some(account_id)) => redirect(url, &account_id, "error", Some(&message)),
        _ => page(
            status,
            "The account could not be connected",
            &sentence(&message),
        ),
    }
}

fn redirect(url: &url::Url, account_id: &str, status: &str, error: Option<&str>) -> Response {
    let mut target = url.clone();
    {
        let mut query = target.query_pairs_mut();
        query
            .append_pair("account_id", account_id)
            .append_pair("status", status);
        if let Some(error) = error {
            query.append_pair("error", error);
        }
    }
    Redirect::to(target.as_str()).into_response()
}

/// A self-contained page: no scripts, no external resources, text escaped.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Postern</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5}}\
         h1{{font-size:1.4rem}}</style></head>\
         <body><h1 id=\"title\">{title}</h1><p id=\"message\">{message}</p></body></html>\n",
        title = escape(title),
        message = escape(message),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        body,
    )
        .into_response()
}

/// Error texts start in lower case (they are also used mid-sentence); on a page they stand alone.
fn sentence(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn page_text_is_escaped() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
