//! Integration tests of the IMAP connection layer and the sync engine, one binary.
//!
//! - `dovecot`: logins against the real Dovecot of `postern-testkit` (one shared server, one shared
//!   OAuth provider; each test invents its own mailbox user), and failures a real server produces.
//! - `scripted`: the cases Dovecot cannot be configured into here (no STARTTLS, a missing mechanism, a
//!   silent server, the LOGIN command), played by a scripted server that records what the client sent.
//! - `sync`: the sync engine against the real Dovecot (each test a user and a store of its own).
//! - `supervisor`: the per-account supervisors and the sync service against the real Dovecot, some
//!   through a `proxy` that can cut connections; `supervisor_memory` (ignored) measures RSS per idle
//!   account.
//!
//! Every test runs under [`support::within`], so a hang fails the test instead of stalling the run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dovecot;
mod logging;
mod proxy;
mod scripted;
mod supervisor;
mod supervisor_memory;
mod supervisor_support;
mod support;
mod sync;
mod sync_support;
mod sync_timing;
