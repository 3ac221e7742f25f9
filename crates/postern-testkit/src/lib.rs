//! Test support for Postern: real mail servers and a stand-in OAuth2 provider.
//!
//! Everything here exists for the integration tests of the other crates and is never linked into the
//! shipped binary (`publish = false`, used only as a dev-dependency).
//!
//! - [`dovecot`] starts a real Dovecot (IMAP, IMAPS, submission, LMTP) on loopback ports from a config
//!   template shipped in this crate, validating OAuth2 tokens through the test provider.
//! - [`oauth_provider`] is the one fake Postern accepts: an OAuth2 authorization server that behaves like
//!   Google's and Microsoft's (expiry, rotation, `invalid_grant`, error JSON, device flow, introspection).
//! - [`smtp_sink`] receives what Dovecot's submission service relays, for assertions.
//! - [`mailgen`] makes realistic messages and fills mailboxes fast (LMTP, MULTIAPPEND).
//! - [`proxy`] sits between a client and a real server to cut, refuse or hold its connections.
//! - [`tls`] issues a throw-away CA and server certificate, so clients verify TLS for real.
//! - [`browser`] loads Postern's pages in headless Chromium, as a user's browser would.
//!
//! Non-goal: simulating mail servers. Where a real one can run here, the tests use the real one.
#![forbid(unsafe_code)]

pub mod browser;
pub mod dovecot;
pub mod mailgen;
pub mod oauth_provider;
pub mod proxy;
pub mod smtp_sink;
pub mod tls;
