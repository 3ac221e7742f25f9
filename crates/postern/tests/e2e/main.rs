//! End-to-end tests of the `postern` binary, built as one test executable (one link, one run).
// In tests a panic is a failed assertion, not a crash on outside input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account_cli;
mod cli;
mod doctor;
mod message_ops;
mod metrics_http;
mod oauth_http;
mod openapi_http;
mod outbox_crash;
mod send_http;
mod server;
mod settings_http;
mod support;
mod sync_crash;
mod sync_http;
mod tokens_http;
mod webhooks_http;
