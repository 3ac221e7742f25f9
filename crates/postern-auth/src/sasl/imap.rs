//! The adapter between [`SaslExchange`] and async-imap's `Authenticator` trait.
//!
//! Purpose: let `async_imap::Client::authenticate` run any of Postern's mechanisms, answer the OAuth error
//! challenge so the server sends its tagged `NO` instead of hanging, and keep that challenge for the
//! caller, who only gets a bare `Error::No` back from async-imap.
//!
//! How async-imap drives it (0.12, `do_auth_handshake`): it sends `AUTHENTICATE <name>` with no initial
//! response (no SASL-IR), then for every `+` continuation it base64-**decodes** the text (an empty or
//! missing text gives an empty slice) and calls `process`; whatever `process` returns is base64-encoded
//! and sent as one line. A challenge that is not base64 fails the login inside async-imap before
//! `process` is called.
//!
//! Non-goal: connecting or reading the login's result. The caller owns the `Client`.
//!
//! Key decision: `process` cannot fail, so a protocol error is recorded in the shared [`SaslReport`] and
//! answered with [`error_challenge_reply`]; the server then fails the command and the caller finds out
//! why in the report.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use secrecy::{ExposeSecret, SecretBox};

use super::Mechanism;
use super::challenge::{OAuthErrorChallenge, error_challenge_reply};
use super::exchange::{SaslExchange, Step};
use crate::error::SaslError;

/// A [`SaslExchange`] usable as `async_imap::Authenticator`.
///
/// ```no_run
/// # async fn demo(client: async_imap::Client<tokio::net::TcpStream>, token: secrecy::SecretString)
/// # -> Result<(), postern_auth::SaslError> {
/// use postern_auth::sasl::{Credentials, ImapAuthenticator, Mechanism, SaslExchange};
///
/// let credentials = Credentials::bearer("alice@example.com", "imap.example.com", 993, token);
/// let authenticator = ImapAuthenticator::new(SaslExchange::new(Mechanism::XOAuth2, credentials)?);
/// let report = authenticator.report();
/// let name = authenticator.mechanism().as_str();
/// if let Err((_error, _client)) = client.authenticate(name, authenticator).await {
///     if let Some(challenge) = report.error_challenge() {
///         // challenge.verdict(): refresh and retry once, or ask for re-authorization.
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ImapAuthenticator {
    exchange: SaslExchange,
    report: SaslReport,
}

impl ImapAuthenticator {
    /// Wraps `exchange`; take [`Self::report`] before handing the authenticator to async-imap.
    pub fn new(exchange: SaslExchange) -> Self {
        ImapAuthenticator {
            exchange,
            report: SaslReport::default(),
        }
    }

    /// The mechanism name to pass to `Client::authenticate`.
    pub fn mechanism(&self) -> Mechanism {
        self.exchange.mechanism()
    }

    /// A handle on what the exchange learned, still readable after async-imap consumed the authenticator.
    pub fn report(&self) -> SaslReport {
        self.report.clone()
    }
}

impl async_imap::Authenticator for ImapAuthenticator {
    type Response = SaslResponse;

    fn process(&mut self, challenge: &[u8]) -> SaslResponse {
        match self.exchange.on_challenge(challenge) {
            Ok(Step::Respond(bytes)) => SaslResponse(bytes),
            Ok(Step::ErrorChallenge { challenge, reply }) => {
                tracing::debug!(
                    mechanism = %self.exchange.mechanism(),
                    status = challenge.status(),
                    "IMAP server rejected the bearer token"
                );
                self.report.lock().error_challenge = Some(challenge);
                SaslResponse::from_static(reply)
            }
            Err(error) => {
                tracing::debug!(mechanism = %self.exchange.mechanism(), %error, "SASL exchange failed");
                self.report.lock().protocol_error = Some(error);
                SaslResponse::from_static(error_challenge_reply(self.exchange.mechanism()))
            }
        }
    }
}

/// One response for async-imap to base64 and send; `Debug` redacts it and its memory is zeroised on drop.
pub struct SaslResponse(SecretBox<Vec<u8>>);

impl SaslResponse {
    fn from_static(bytes: &'static [u8]) -> Self {
        SaslResponse(SecretBox::new(Box::new(bytes.to_vec())))
    }
}

impl AsRef<[u8]> for SaslResponse {
    fn as_ref(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SaslResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SaslResponse([REDACTED])")
    }
}

/// What an [`ImapAuthenticator`] learned during its exchange, shared with the caller.
#[derive(Clone, Debug, Default)]
pub struct SaslReport {
    inner: Arc<Mutex<ReportInner>>,
}

#[derive(Debug, Default)]
struct ReportInner {
    error_challenge: Option<OAuthErrorChallenge>,
    protocol_error: Option<SaslError>,
}

impl SaslReport {
    /// The OAuth error challenge the server sent, if it rejected the token that way. `None` after a
    /// successful login, and after a failure without the JSON step (e.g. Dovecot's
    /// `NO [UNAVAILABLE]` when its token provider is down: a transient error, not a bad token).
    pub fn error_challenge(&self) -> Option<OAuthErrorChallenge> {
        self.lock().error_challenge.clone()
    }

    /// Takes the protocol error the exchange hit (an unexpected or undecodable challenge), if any.
    pub fn take_protocol_error(&self) -> Option<SaslError> {
        self.lock().protocol_error.take()
    }

    /// A poisoned lock only means another holder panicked; the two fields are still coherent values.
    fn lock(&self) -> MutexGuard<'_, ReportInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::{ChallengeVerdict, Credentials};
    use async_imap::Authenticator as _;
    use secrecy::SecretString;

    fn authenticator(mechanism: Mechanism) -> ImapAuthenticator {
        let credentials = Credentials::bearer(
            "alice@example.com",
            "imap.example.com",
            993,
            SecretString::from("TOK"),
        );
        ImapAuthenticator::new(SaslExchange::new(mechanism, credentials).unwrap())
    }

    #[test]
    fn records_the_decoded_error_challenge_and_replies() {
        let mut auth = authenticator(Mechanism::OAuthBearer);
        let report = auth.report();
        let first = auth.process(b"");
        assert!(first.as_ref().starts_with(b"n,a=alice@example.com,\x01"));
        assert!(report.error_challenge().is_none());

        let reply = auth.process(br#"{"status":"invalid_token"}"#);
        assert_eq!(reply.as_ref(), b"\x01");
        let challenge = report.error_challenge().unwrap();
        assert_eq!(challenge.verdict(), ChallengeVerdict::RefreshAndRetry);
        assert!(report.take_protocol_error().is_none());
    }

    #[test]
    fn records_a_protocol_error_and_still_replies() {
        let mut auth = authenticator(Mechanism::XOAuth2);
        let report = auth.report();
        let _ = auth.process(b"");
        let reply = auth.process(b"\xff\xfe garbage");
        assert_eq!(reply.as_ref(), b"");
        assert!(report.error_challenge().is_none());
        assert!(report.take_protocol_error().is_some());
        assert!(report.take_protocol_error().is_none(), "taking empties it");
    }

    #[test]
    fn authenticator_and_report_can_cross_tasks() {
        // Client::authenticate's future must be Send to run on a multi-threaded tokio runtime.
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ImapAuthenticator>();
        assert_send_sync::<SaslReport>();
    }

    #[test]
    fn response_debug_is_redacted() {
        let mut auth = authenticator(Mechanism::XOAuth2);
        let first = auth.process(b"");
        assert!(!format!("{first:?} {auth:?}").contains("TOK"));
    }
}
