//! Postern's doctor: why a mailbox does not work, in plain words, step by step.
//!
//! - [`catalogue`]: the known-error catalogue, a table from a provider's or server's answer (IMAP
//!   `NO`/`BAD` text and response code, SMTP reply and enhanced code, OAuth token-endpoint error and
//!   `AADSTS` codes, SASL error JSON, client-side conditions) to its cause, its fix and whether it
//!   passes by itself. The table lives in the `postern-catalogue` crate (so the token manager, below
//!   the doctor, can use it too) and is re-exported here with the adapters from IMAP and OAuth
//!   errors. Account `last_error`, the outbox and the doctor all explain through it.
//! - [`diagnose_account`] / [`diagnose_endpoints`]: the diagnosis, DNS → TCP → TLS (chain, host name,
//!   days to expiry) → capabilities → token (refresh works now?) → token expiry (the token manager's
//!   forecast: a Google "Testing" grant, a Microsoft grant unused, a client secret, dying within the
//!   warning horizon is a warning) → IMAP login → LIST + SELECT INBOX → SMTP EHLO, STARTTLS, AUTH →
//!   a dry send (MAIL FROM / RCPT TO to itself, then RSET).
//! - [`Report`]: the timed steps with evidence and fixes; [`Report::render_text`] for people, serde
//!   JSON for machines, [`Report::has_failures`] for an exit code.
//!
//! ```no_run
//! # async fn demo(account: postern_store::Account, ctx: postern_auth::context::AuthContext) {
//! use postern_doctor::{DoctorDeps, diagnose_account};
//!
//! let report = diagnose_account(&account, &DoctorDeps::new(ctx)).await;
//! print!("{}", report.render_text());
//! let json = serde_json::to_string_pretty(&report).unwrap_or_default();
//! std::process::exit(if report.has_failures() { 1 } else { 0 });
//! # }
//! ```
//!
//! Non-goal: repairing. The doctor explains and suggests; it changes nothing but a refreshed token it
//! obtained itself (stored as the token manager would store it).
//!
//! Key decision: nothing secret reaches a report. Steps hold server replies, measured facts and
//! catalogue text only; tokens, passwords and client secrets stay in `secrecy` types from the vault to
//! the wire (the tests search every report, text and JSON, for them).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod catalogue;
mod doctor;
pub mod error;
mod probe;
pub mod report;
mod smtp;

pub use catalogue::{Condition, Entry, Observation, Provider, explain};
pub use doctor::{
    DoctorDeps, DoctorOptions, HostPort, Protocol, diagnose_account, diagnose_endpoints,
};
pub use error::DoctorError;
pub use report::{KnownError, Report, Status, Step, StepName, Target};
