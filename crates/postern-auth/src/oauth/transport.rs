//! HTTP for the OAuth client: reqwest 0.13 adapted to oauth2 5, the two requests built by hand, and the
//! decoding of a provider's refusal into a [`Rejection`].
//!
//! Non-goal: retries or backoff. One call is one HTTP request; the caller decides from
//! [`OAuthError::is_transient`] whether to try again.
//!
//! Key decision: the adapter turns every non-success answer into its own error carrying the HTTP status,
//! `Retry-After` and Microsoft's `error_codes`, all of which oauth2's error path drops. Bodies are read up
//! to [`MAX_BODY`] bytes, and no body is ever quoted in an error (a token answer holds tokens); text the
//! provider wrote is kept only after every secret of the request is cut out of it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oauth2::basic::BasicTokenResponse;
use oauth2::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use oauth2::http::{HeaderMap, HeaderValue, Method, StatusCode};
use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse, RequestTokenError};
use secrecy::ExposeSecret as _;
use serde_json::Value;
use url::{Url, form_urlencoded};

use super::settings::{ClientAuth, ClientSettings};
use crate::error::{OAuthEndpoint, OAuthError, Rejection};

/// The largest answer read from an OAuth endpoint; real ones are a few kilobytes.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// What replaces a secret found in a provider's text.
const REDACTED: &str = "[redacted]";

/// Why an HTTP exchange produced no usable answer; oauth2 hands it back in `RequestTokenError::Request`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpFailure {
    /// No HTTP answer (or a cut one).
    #[error("the HTTP request failed")]
    Network(#[source] reqwest::Error),
    /// A non-success answer, decoded (not yet redacted).
    #[error("the endpoint refused the request")]
    Rejected(Box<Rejection>),
    /// An answer longer than [`MAX_BODY`].
    #[error("the answer is longer than {MAX_BODY} bytes")]
    TooLarge,
}

impl HttpFailure {
    fn network(error: reqwest::Error) -> Self {
        HttpFailure::Network(error.without_url())
    }

    /// The crate error, with `secrets` cut out of the provider's text.
    pub(crate) fn into_error(self, endpoint: OAuthEndpoint, secrets: &[&str]) -> OAuthError {
        match self {
            // reqwest refused to build the request (URL or header): a settings problem, not a network one.
            HttpFailure::Network(source) if source.is_builder() => OAuthError::InvalidSettings {
                field: format!("{endpoint} endpoint URL"),
                problem: "cannot be used in an HTTP request".to_owned(),
            },
            HttpFailure::Network(source) => OAuthError::Network {
                endpoint,
                timeout: source.is_timeout(),
                source,
            },
            HttpFailure::Rejected(rejection) => {
                OAuthError::Rejected(Box::new(redact_rejection(*rejection, secrets)))
            }
            HttpFailure::TooLarge => OAuthError::InvalidResponse {
                endpoint,
                problem: format!("the answer is longer than {MAX_BODY} bytes"),
            },
        }
    }
}

/// reqwest as an oauth2 HTTP client, for calls to one endpoint.
pub(crate) struct Transport<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) endpoint: OAuthEndpoint,
}

type SendFuture<'c> = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpFailure>> + Send + 'c>>;

impl<'c> AsyncHttpClient<'c> for Transport<'_> {
    type Error = HttpFailure;
    type Future = SendFuture<'c>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

impl Transport<'_> {
    /// Sends one request; a success answer comes back whole, anything else as an [`HttpFailure`].
    pub(crate) async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpFailure> {
        let request = reqwest::Request::try_from(request).map_err(HttpFailure::network)?;
        let mut response = self
            .http
            .execute(request)
            .await
            .map_err(HttpFailure::network)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let body = read_capped(&mut response).await?;
        if !status.is_success() {
            let rejection = decode_rejection(self.endpoint, status, &headers, &body);
            return Err(HttpFailure::Rejected(Box::new(rejection)));
        }
        let mut answer = HttpResponse::new(body);
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

async fn read_capped(response: &mut reqwest::Response) -> Result<Vec<u8>, HttpFailure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(HttpFailure::network)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(HttpFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads an RFC 6749 §5.2 error body leniently: a field of the wrong type is ignored, not fatal, and a
/// body that is not JSON at all (an HTML error page) still yields the status.
pub(crate) fn decode_rejection(
    endpoint: OAuthEndpoint,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Rejection {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let text = |name: &str| {
        json.as_ref()
            .and_then(|json| json.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let error_codes = json
        .as_ref()
        .and_then(|json| json.get("error_codes"))
        .and_then(Value::as_array)
        .map(|codes| {
            let numbers = codes.iter().filter_map(Value::as_u64);
            numbers
                .filter_map(|code| u32::try_from(code).ok())
                .collect()
        })
        .unwrap_or_default();
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Rejection {
        endpoint,
        status: status.as_u16(),
        error: text("error"),
        description: text("error_description").map(truncate_description),
        error_codes,
        retry_after,
    }
}

fn truncate_description(mut description: String) -> String {
    if description.len() > Rejection::MAX_DESCRIPTION {
        let mut end = Rejection::MAX_DESCRIPTION;
        while !description.is_char_boundary(end) {
            end -= 1;
        }
        description.truncate(end);
    }
    description
}

/// Cuts every secret out of the provider's text: some servers echo the token they refuse.
fn redact_rejection(mut rejection: Rejection, secrets: &[&str]) -> Rejection {
    let redact = |text: String| {
        secrets
            .iter()
            .filter(|secret| !secret.is_empty())
            .fold(text, |text, secret| text.replace(secret, REDACTED))
    };
    rejection.error = rejection.error.map(redact);
    rejection.description = rejection.description.map(redact);
    rejection
}

/// The crate error for a failed oauth2 request to `endpoint`.
pub(crate) fn from_oauth2<TE: oauth2::ErrorResponse>(
    error: RequestTokenError<HttpFailure, TE>,
    endpoint: OAuthEndpoint,
    secrets: &[&str],
) -> OAuthError {
    let invalid = |problem: String| OAuthError::InvalidResponse { endpoint, problem };
    match error {
        RequestTokenError::Request(failure) => failure.into_error(endpoint, secrets),
        // Only reachable with a 2xx other than 200 carrying an error body.
        RequestTokenError::ServerResponse(body) => match serde_json::to_vec(&body) {
            Ok(bytes) => error_in_success(endpoint, &bytes, secrets)
                .unwrap_or_else(|| invalid("an error answer without an error code".to_owned())),
            Err(_) => invalid("an error answer that cannot be read".to_owned()),
        },
        RequestTokenError::Parse(parse_error, body) => error_in_success(endpoint, &body, secrets)
            .unwrap_or_else(|| {
                let inner = parse_error.inner();
                invalid(format!(
                    "not a valid answer ({:?} error at `{}`, line {} column {})",
                    inner.classify(),
                    parse_error.path(),
                    inner.line(),
                    inner.column(),
                ))
            }),
        RequestTokenError::Other(problem) => invalid(problem),
    }
}

/// Some providers answer an error with a success status; such a body is a refusal, not a bad token answer.
pub(crate) fn error_in_success(
    endpoint: OAuthEndpoint,
    body: &[u8],
    secrets: &[&str],
) -> Option<OAuthError> {
    let rejection = decode_rejection(endpoint, StatusCode::OK, &HeaderMap::new(), body);
    rejection
        .error
        .is_some()
        .then(|| OAuthError::Rejected(Box::new(redact_rejection(rejection, secrets))))
}

/// Parses a success answer of the token endpoint made by [`form_post`] (oauth2 parses its own).
pub(crate) fn parse_token_answer(
    body: &[u8],
    endpoint: OAuthEndpoint,
    secrets: &[&str],
) -> Result<BasicTokenResponse, OAuthError> {
    serde_json::from_slice(body).map_err(|error| {
        error_in_success(endpoint, body, secrets).unwrap_or_else(|| OAuthError::InvalidResponse {
            endpoint,
            problem: format!(
                "not a valid token answer ({:?} error, line {} column {})",
                error.classify(),
                error.line(),
                error.column(),
            ),
        })
    })
}

/// A form POST to `url` with the app's client authentication, for the requests oauth2 cannot make: a
/// single device-flow poll (oauth2 only offers a whole polling loop) and revocation over plain HTTP to a
/// loopback test provider (oauth2 refuses any non-HTTPS revocation URL).
///
/// Client authentication follows oauth2's own rules, so both paths look the same to the provider.
pub(crate) fn form_post<'a>(
    settings: &'a ClientSettings,
    url: &Url,
    mut params: Vec<(&'a str, &'a str)>,
) -> Result<HttpRequest, OAuthError> {
    let mut builder = oauth2::http::Request::builder()
        .method(Method::POST)
        .uri(url.as_str())
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
    match (settings.client_auth, &settings.client_secret) {
        (ClientAuth::Basic, Some(secret)) => {
            let id: String =
                form_urlencoded::byte_serialize(settings.client_id.as_bytes()).collect();
            let secret: String =
                form_urlencoded::byte_serialize(secret.expose_secret().as_bytes()).collect();
            let credentials = STANDARD.encode(format!("{id}:{secret}"));
            let mut value = HeaderValue::try_from(format!("Basic {credentials}"))
                .map_err(|_| settings_problem("client_secret", "cannot be sent in a header"))?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        (_, secret) => {
            params.push(("client_id", &settings.client_id));
            if let Some(secret) = secret {
                params.push(("client_secret", secret.expose_secret()));
            }
        }
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
        .into_bytes();
    builder
        .body(body)
        .map_err(|_| settings_problem("endpoint URL", "cannot be used in a request"))
}

fn settings_problem(field: &str, problem: &str) -> OAuthError {
    OAuthError::InvalidSettings {
        field: field.to_owned(),
        problem: problem.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(body: &str) -> Rejection {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        decode_rejection(
            OAuthEndpoint::Token,
            StatusCode::BAD_REQUEST,
            &headers,
            body.as_bytes(),
        )
    }

    #[test]
    fn microsoft_error_bodies_keep_their_codes() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app 'x' are expired.","error_codes":[7000222],"trace_id":"t"}"#;
        let decoded = rejection(body);
        assert_eq!(decoded.status, 400);
        assert_eq!(decoded.error.as_deref(), Some("invalid_client"));
        assert_eq!(decoded.error_codes, vec![7_000_222]);
        assert_eq!(decoded.retry_after, Some(Duration::from_secs(7)));
        assert!(decoded.description.unwrap().starts_with("AADSTS7000222:"));
    }

    #[test]
    fn a_body_that_is_not_json_still_yields_the_status() {
        let decoded = rejection("<html>502 Bad Gateway</html>");
        assert_eq!(decoded.status, 400);
        assert_eq!(decoded.error, None);
        assert_eq!(decoded.description, None);
    }

    #[test]
    fn fields_of_the_wrong_type_are_ignored() {
        let decoded =
            rejection(r#"{"error":"invalid_grant","error_description":5,"error_codes":"x"}"#);
        assert_eq!(decoded.error.as_deref(), Some("invalid_grant"));
        assert_eq!(decoded.description, None);
        assert!(decoded.error_codes.is_empty());
    }

    #[test]
    fn long_descriptions_are_cut_at_a_character_boundary() {
        let long = "é".repeat(Rejection::MAX_DESCRIPTION);
        let decoded = rejection(&format!(r#"{{"error":"x","error_description":"{long}"}}"#));
        let description = decoded.description.unwrap();
        assert!(description.len() <= Rejection::MAX_DESCRIPTION);
        assert!(description.len() >= Rejection::MAX_DESCRIPTION - 1);
    }

    #[test]
    fn secrets_echoed_by_the_provider_are_cut_out() {
        let decoded = rejection(
            r#"{"error":"invalid_grant","error_description":"Bad refresh token prt_abc for client s3cret"}"#,
        );
        let redacted = redact_rejection(decoded, &["prt_abc", "", "s3cret"]);
        assert_eq!(
            redacted.description.as_deref(),
            Some("Bad refresh token [redacted] for client [redacted]")
        );
    }

    #[test]
    fn an_error_body_with_a_success_status_is_a_rejection() {
        let body = br#"{"error":"invalid_grant","error_description":"gone"}"#;
        let error = error_in_success(OAuthEndpoint::Token, body, &[]).unwrap();
        assert!(error.is_grant_dead());
        assert!(error_in_success(OAuthEndpoint::Token, br#"{"access_token":"x"}"#, &[]).is_none());
    }
}
