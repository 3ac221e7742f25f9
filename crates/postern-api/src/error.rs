//! The single error type every handler returns, and its JSON shape `{"error": {code, message, details?}}`.
//!
//! Non-goal: carrying internal detail to clients. A 5xx answer says only that something failed inside,
//! with the request id to quote; the cause goes to the log through `tracing`, never into the body.
//!
//! Key decision: `code` is a stable, machine-readable string (`unauthorized`, `not_found`, ...) that
//! integrations may match on; `message` is for people and may change wording.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use postern_store::StoreError;
use serde::Serialize;

/// An error answer of the API: an HTTP status, a stable code and a message for people.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<serde_json::Value>,
    retry_after: Option<std::time::Duration>,
}

/// The body of every error answer: `{"error": {code, message, details?}}`. The same type is
/// serialized on the wire and described in the OpenAPI document, so the two cannot drift apart.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorFields<'a> {
    /// Stable and machine-readable, e.g. `unauthorized`, `not_found`, `invalid_request`.
    #[schema(example = "not_found")]
    code: &'a str,
    /// For people; its wording may change.
    message: &'a str,
    /// Machine-readable details, e.g. `{"fields": [{"field": "email", "message": "..."}]}` for a
    /// request that names wrong fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    details: Option<&'a serde_json::Value>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 429: the token made too many requests; `Retry-After` says when to come back.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests with this token; retry after the time in Retry-After",
        );
        error.retry_after = Some(wait);
        error
    }

    /// Adds machine-readable details, e.g. which field of a request was wrong.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 401: no token, a malformed one, or one the server does not know.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a valid token that lacks the scope the route needs.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: nothing at that path, or nothing the caller may see there.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 400: the request itself is wrong; the message says how.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 500 or 503 with a generic message; `cause` is logged, never sent.
    pub fn internal(cause: &dyn std::error::Error, transient: bool) -> Self {
        tracing::error!(error = %cause, "request failed inside the server");
        if transient {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is busy; retry shortly",
            )
        } else {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the server failed to handle this request; the log has the details under this request's id",
            )
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorFields {
                code: self.code,
                message: &self.message,
                details: self.details.as_ref(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: a client that waits that long will get through.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.max(1).into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let transient = error.is_transient();
        ApiError::internal(&error, transient)
    }
}

impl From<postern_accounts::ServiceError> for ApiError {
    fn from(error: postern_accounts::ServiceError) -> Self {
        use postern_accounts::ServiceError as E;
        let message = error.to_string();
        match error {
            E::Invalid(fields) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
                    .with_details(serde_json::json!({ "fields": fields }))
            }
            E::NotFound(_) => ApiError::not_found(message),
            E::InUse(_) => ApiError::new(StatusCode::CONFLICT, "in_use", message),
            E::NotApplicable(_) => ApiError::new(StatusCode::CONFLICT, "not_applicable", message),
            E::LoginRefused { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "login_refused", message)
            }
            E::MailServerUnavailable { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "mail_server_unavailable", message)
            }
            E::Flow(flow) if flow.is_callers_fault() => {
                ApiError::new(StatusCode::BAD_REQUEST, "authorization_failed", message)
            }
            E::Token(token) => token_error(token, message),
            E::Store(store) => ApiError::from(store),
            other => ApiError::internal(&other, false),
        }
    }
}

fn token_error(error: postern_auth::token_manager::TokenError, message: String) -> ApiError {
    use postern_auth::token_manager::TokenError as T;
    match error {
        T::NeedsReauth { .. } => ApiError::new(StatusCode::CONFLICT, "needs_reauth", message),
        T::NotAuthorized(_) => ApiError::new(StatusCode::CONFLICT, "not_authorized", message),
        T::AppFailed { .. } => ApiError::new(StatusCode::BAD_GATEWAY, "oauth_app_failed", message),
        T::Unavailable { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "token_endpoint_unavailable",
            message,
        ),
        other => ApiError::internal(&other, false),
    }
}
