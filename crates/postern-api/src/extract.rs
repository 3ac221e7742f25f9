//! Extractors that reject with [`ApiError`], so a malformed body gets the same JSON error shape as
//! everything else (axum's own rejections answer in plain text).
//!
//! Non-goal: validation beyond syntax; services check meaning and name the wrong fields.

use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// One status for every malformed body (400), as for every other validation error; a missing
/// JSON content type is 415.
fn reject(rejection: &JsonRejection) -> ApiError {
    let (status, code) = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        JsonRejection::JsonDataError(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        _ => (StatusCode::BAD_REQUEST, "invalid_json"),
    };
    ApiError::new(status, code, rejection.body_text())
}

/// A JSON body; a syntax error, a wrong type or an unknown field answers 400 (415 without a JSON
/// content type) with the parser's words, which name the line, column and field.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(reject(&rejection)),
        }
    }
}
