//! The token endpoint's refusals, explained by the known-error catalogue.
//!
//! Purpose: the adapter from this crate's [`OAuthError`] to `postern-catalogue`'s plain-string
//! lookup, so the token manager's `last_error` texts and the doctor's token step name the same cause
//! and fix (the doctor re-exports these functions).
//!
//! Non-goal: classifying for retries; [`OAuthError::is_grant_dead`] and friends decide that.
//!
//! Key decision: the adapter lives next to the type it adapts (here, below the doctor), because the
//! catalogue crate must not depend on any Postern crate and the doctor cannot be used from here.

use crate::{OAuthError, Rejection};
use postern_catalogue::{Condition, Entry};

/// Explains a token endpoint's refusal (status, `error`, description, `AADSTS` codes).
pub fn explain_rejection(rejection: &Rejection) -> Option<&'static Entry> {
    postern_catalogue::explain_oauth(
        rejection.status,
        rejection.error.as_deref(),
        rejection.description.as_deref(),
        &rejection.aadsts_codes(),
    )
}

/// Explains a failed call to an OAuth endpoint: a refusal, an unreachable endpoint, or an answer
/// without the refresh token that was needed.
pub fn explain_oauth_error(error: &OAuthError) -> Option<&'static Entry> {
    match error {
        OAuthError::Rejected(rejection) => explain_rejection(rejection),
        OAuthError::Network { .. } => {
            postern_catalogue::explain_condition(Condition::TokenEndpointUnreachable)
        }
        OAuthError::MissingRefreshToken => {
            postern_catalogue::explain_condition(Condition::NoRefreshToken)
        }
        _ => None,
    }
}

/// `message` with the catalogue's cause and fix for `error` appended, when the catalogue knows it.
pub(crate) fn annotated(message: &str, error: &OAuthError) -> String {
    postern_catalogue::annotate(message, explain_oauth_error(error))
}
