//! What travels over HTTP: form parameters, client credentials, and the JSON bodies of answers.
//!
//! Non-goal: routing or any decision about tokens; this module only parses and renders.
//! Key decision: parameters are parsed by hand from the raw body instead of axum's `Form`, so every
//! malformed request is answered in RFC 6749's error shape (never axum's plain-text rejections) and a
//! repeated parameter is refused, as RFC 6749 §3.1 requires.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use url::form_urlencoded;

/// An OAuth error answer: `{"error": ..., "error_description": ...}` with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) description: String,
}

/// Google's description for a dead refresh token; Postern's tests match on it.
pub(crate) const EXPIRED_OR_REVOKED: &str = "Token has been expired or revoked.";

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    pub(crate) fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, description)
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", description)
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_grant", description)
    }

    pub(crate) fn invalid_scope(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_scope", description)
    }

    /// RFC 6749 §5.2: a failed client authentication is a 401.
    pub(crate) fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub(crate) fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Simulated internal error.",
        )
    }

    pub(crate) fn temporarily_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "Simulated outage; try again later.",
        )
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.error,
            error_description: &self.description,
        };
        let mut response = (self.status, no_store(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: a 401 must name the authentication scheme the client may use.
            let challenge = HeaderValue::from_static("Basic realm=\"test-oauth-provider\"");
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// RFC 6749 §5.1: responses carrying tokens must not be cached.
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// A successful token response (RFC 6749 §5.1); no `Debug`, so its tokens cannot reach a log.
#[derive(Serialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    pub(crate) scope: String,
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        (StatusCode::OK, no_store(), axum::Json(self)).into_response()
    }
}

/// Request parameters, from a form body or a query string, without empty values.
#[derive(Default)]
pub(crate) struct Params(HashMap<String, String>);

/// Names only: values include client secrets, codes and tokens.
impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` data; RFC 6749 §3.1 treats an empty value as
    /// absent and forbids repeating a parameter.
    pub(crate) fn parse(encoded: &[u8]) -> Result<Self, OAuthError> {
        let mut map = HashMap::new();
        for (name, value) in form_urlencoded::parse(encoded) {
            if value.is_empty() {
                continue;
            }
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                let message = format!("Parameter {name} was sent more than once.");
                return Err(OAuthError::invalid_request(message));
            }
        }
        Ok(Self(map))
    }

    /// Parses a request body, which must be a form whenever it is not empty.
    pub(crate) fn from_form_body(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        if body.is_empty() {
            return Ok(Self::default());
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            let message = "The body must be application/x-www-form-urlencoded.";
            return Err(OAuthError::invalid_request(message));
        }
        Self::parse(body)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub(crate) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("Missing parameter: {name}")))
    }

    /// A space-separated parameter (such as `scope`) as a list.
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|value| value.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

/// One reading of the client credentials a request carries.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PresentedClient {
    pub(crate) id: String,
    pub(crate) secret: Option<String>,
}

impl std::fmt::Debug for PresentedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = self.secret.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("PresentedClient")
            .field("id", &self.id)
            .field("secret", &secret)
            .finish()
    }
}

/// The client credentials of a request, from HTTP Basic or from the form (RFC 6749 §2.3.1).
///
/// Basic credentials yield two readings: form-decoded, as the RFC says, and raw, because many clients
/// (reqwest's `basic_auth` among them) do not form-encode. Google accepts both; so does this provider.
#[derive(Debug, Default)]
pub(crate) struct PresentedCredentials {
    pub(crate) readings: Vec<PresentedClient>,
}

impl PresentedCredentials {
    pub(crate) fn from_request(headers: &HeaderMap, params: &Params) -> Result<Self, OAuthError> {
        let basic = basic_credentials(headers)?;
        let form_secret = params.get("client_secret");
        let Some((raw_id, raw_secret)) = basic else {
            let readings = params.get("client_id").map(|id| PresentedClient {
                id: id.to_owned(),
                secret: form_secret.map(str::to_owned),
            });
            return Ok(Self {
                readings: readings.into_iter().collect(),
            });
        };
        if form_secret.is_some() {
            let message = "Use one client authentication method, not Basic and client_secret.";
            return Err(OAuthError::invalid_request(message));
        }
        let decoded = PresentedClient {
            id: form_decode(&raw_id),
            secret: Some(form_decode(&raw_secret)),
        };
        let raw = PresentedClient {
            id: raw_id,
            secret: Some(raw_secret),
        };
        let mut readings = vec![decoded];
        if readings[0] != raw {
            readings.push(raw);
        }
        Ok(Self { readings })
    }

    /// The client id to attribute the call to, before authentication has happened.
    pub(crate) fn claimed_ids(&self) -> impl Iterator<Item = &str> {
        self.readings.iter().map(|reading| reading.id.as_str())
    }
}

/// The `(id, secret)` of an `Authorization: Basic` header, undecoded; `None` without such a header.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(encoded) = authorization_param(headers, "Basic") else {
        return Ok(None);
    };
    let malformed = || OAuthError::invalid_client("Malformed Basic authorization header.");
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    Ok(Some((id.to_owned(), secret.to_owned())))
}

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    authorization_param(headers, "Bearer").map(|token| token.trim().to_owned())
}

/// The credentials after `scheme` in the `Authorization` header; the scheme is case-insensitive.
fn authorization_param<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given_scheme, rest) = value.split_once(' ')?;
    given_scheme.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` and `%XX`).
fn form_decode(component: &str) -> String {
    let escaped = component.replace('&', "%26").replace('=', "%3D");
    form_urlencoded::parse(escaped.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn basic(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let header_value = format!("Basic {}", STANDARD.encode(value));
        headers.insert(header::AUTHORIZATION, header_value.parse().unwrap());
        headers
    }

    #[test]
    fn empty_values_are_absent_and_repeats_are_refused() {
        let params = Params::parse(b"a=1&b=&c=x+y").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.list("c"), vec!["x", "y"]);
        let repeated = Params::parse(b"a=1&a=2").unwrap_err();
        assert_eq!(repeated.error, "invalid_request");
    }

    #[test]
    fn a_non_form_body_is_an_invalid_request() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let error = Params::from_form_body(&headers, b"{}").unwrap_err();
        assert_eq!(error.error, "invalid_request");
    }

    #[test]
    fn basic_credentials_are_read_decoded_and_raw() {
        let headers = basic("app%3A1:s+cr%26t");
        let presented = PresentedCredentials::from_request(&headers, &Params::default()).unwrap();
        let ids: Vec<&str> = presented.claimed_ids().collect();
        assert_eq!(ids, vec!["app:1", "app%3A1"]);
        assert_eq!(presented.readings[0].secret.as_deref(), Some("s cr&t"));
        assert_eq!(presented.readings[1].secret.as_deref(), Some("s+cr%26t"));
    }

    #[test]
    fn basic_and_form_secret_together_are_refused() {
        let params = Params::parse(b"client_secret=x").unwrap();
        let error = PresentedCredentials::from_request(&basic("a:b"), &params).unwrap_err();
        assert_eq!(error.error, "invalid_request");
    }

    #[test]
    fn a_malformed_basic_header_is_an_invalid_client() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "basic !!!".parse().unwrap());
        let error = PresentedCredentials::from_request(&headers, &Params::default()).unwrap_err();
        assert_eq!(error.status, StatusCode::UNAUTHORIZED);
    }
}
