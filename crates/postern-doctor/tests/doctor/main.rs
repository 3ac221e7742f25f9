//! The doctor against the real Dovecot and the test OAuth provider, one broken thing at a time.
//!
//! - `green`: a healthy account (XOAUTH2, OAUTHBEARER, password) passes every step and sends nothing.
//! - `broken`: each test breaks one thing — certificate trust, port, STARTTLS, password, grant,
//!   provider, token owner, mechanism — and asserts the step that fails and the catalogue's cause.
//! - `expiry`: grants and client secrets forecast to die soon (Google "Testing", Microsoft unused,
//!   a recorded secret expiry) warn in `token.expiry` without failing the run.
//! - `secrets`: no token, password or client secret appears in any report, text or JSON.
//!
//! One Dovecot and one OAuth provider serve the whole binary; each test invents its own mailbox and
//! OAuth client. Every test runs under a time limit, so a hang fails instead of stalling the run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod broken;
mod expiry;
mod green;
mod secrets;
mod support;

/// Runs `test` with a time limit.
pub async fn within<F: std::future::Future>(test: F) -> F::Output {
    tokio::time::timeout(std::time::Duration::from_secs(20), test)
        .await
        .expect("the test took longer than 20 s")
}
