//! The account service against a real Dovecot and the test OAuth2 provider: connecting accounts,
//! keeping their tokens fresh, re-authorizing, and keeping every secret out of the database file
//! and the logs. One test binary; each test has its own store, OAuth client and mailbox.

// In tests a panic is a failed assertion, not a crash on outside input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod device_and_app_only;
mod flow;
mod password;
mod refresh;
mod secrets;
mod support;
