//! The known-error catalogue, as the doctor sees it: everything of the `postern-catalogue` crate, plus
//! the adapters from the typed errors of `postern-auth` and `postern-sync` to its observations.
//!
//! Purpose: let the doctor (and whoever holds an [`ImapError`] or an [`OAuthError`]) ask the
//! catalogue about a typed error in one call. The table itself, its matching rules and its tests
//! live in `postern-catalogue`; this module re-exports them, so `postern_doctor::catalogue::explain`
//! and friends keep working.
//!
//! Non-goal: knowledge. No entry is defined here; add entries to `postern-catalogue/src/entries.rs`.
//!
//! Key decision: the catalogue is its own tiny crate because `postern-auth` (below the doctor) writes
//! `last_error` texts too and could not depend on the doctor without a cycle. The adapters for types
//! of crates above the catalogue stay next to their users: the OAuth one in `postern-auth`
//! ([`postern_auth::token_manager::explain_oauth_error`]), the IMAP one here.

pub use postern_catalogue::*;

use postern_auth::sasl::OAuthErrorChallenge;
use postern_auth::{OAuthError, Rejection};
use postern_sync::{ImapError, TlsFailure};

/// The decoded SASL error JSON of a failed OAuth login, as an observation.
pub fn sasl_observation(
    challenge: &OAuthErrorChallenge,
    token_just_refreshed: bool,
) -> Observation<'_> {
    Observation::sasl(challenge.status(), challenge.scope(), token_just_refreshed)
}

/// Explains a token endpoint's refusal.
pub fn explain_rejection(rejection: &Rejection) -> Option<&'static Entry> {
    postern_auth::token_manager::explain_rejection(rejection)
}

/// Explains a failed call to an OAuth endpoint.
pub fn explain_oauth_error(error: &OAuthError) -> Option<&'static Entry> {
    postern_auth::token_manager::explain_oauth_error(error)
}

/// Explains an IMAP connection or login error. `token_just_refreshed` says whether the bearer token
/// was obtained moments before the login (it turns "token expired" into "token of another user").
pub fn explain_imap_error(error: &ImapError, token_just_refreshed: bool) -> Option<&'static Entry> {
    match error {
        ImapError::AuthRejected {
            challenge: Some(challenge),
            ..
        } => explain(&sasl_observation(challenge, token_just_refreshed)),
        ImapError::AuthRejected {
            response_code,
            server_text,
            ..
        }
        | ImapError::CommandRejected {
            response_code,
            server_text,
            ..
        } => explain_imap(response_code.as_deref(), server_text),
        ImapError::GreetingRefused { server_text } => explain_imap(None, server_text),
        ImapError::Connect { source, .. } => {
            io_condition(source.kind()).and_then(explain_condition)
        }
        ImapError::Tls { reason, .. } => explain_condition(tls_condition(reason)),
        ImapError::StartTlsNotOffered { .. } => explain_condition(Condition::StartTlsMissing),
        ImapError::MechanismNotOffered { .. } => explain_condition(Condition::MechanismNotOffered),
        ImapError::Timeout {
            stage: postern_sync::Stage::Connect,
            ..
        } => explain_condition(Condition::ConnectTimeout),
        ImapError::Timeout {
            stage: postern_sync::Stage::Greeting,
            ..
        } => explain_condition(Condition::NoGreeting),
        _ => None,
    }
}

/// The condition a TLS failure of `postern-sync` means.
pub fn tls_condition(failure: &TlsFailure) -> Condition {
    match failure {
        TlsFailure::UnknownIssuer | TlsFailure::BadCertificate { .. } => {
            Condition::UntrustedCertificate
        }
        TlsFailure::NameMismatch { .. } => Condition::HostnameMismatch,
        TlsFailure::Expired => Condition::CertificateExpired,
        TlsFailure::NotYetValid => Condition::CertificateNotYetValid,
        _ => Condition::TlsHandshakeFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_errors_are_explained_from_their_typed_form() {
        let refused = ImapError::Connect {
            host: "localhost".into(),
            port: 1,
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(
            explain_imap_error(&refused, false).unwrap().id,
            "net.connection_refused"
        );
        let untrusted = ImapError::Tls {
            host: "localhost".into(),
            reason: TlsFailure::UnknownIssuer,
        };
        assert_eq!(
            explain_imap_error(&untrusted, false).unwrap().id,
            "tls.untrusted_certificate"
        );
        let not_connected = ImapError::CommandRejected {
            command: "SELECT",
            response_code: None,
            server_text: "User is authenticated but not connected.".into(),
        };
        assert_eq!(
            explain_imap_error(&not_connected, false).unwrap().id,
            "microsoft.authenticated_not_connected"
        );
    }

    #[test]
    fn the_catalogue_is_re_exported_whole() {
        assert!(entries().len() > 50);
        assert_eq!(
            by_id("google.invalid_grant").map(|entry| entry.provider),
            Some(Provider::Google)
        );
    }
}
