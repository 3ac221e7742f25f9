//! The integration tests of `postern-auth`, built as one binary (one link, and one shared test OAuth
//! provider for every OAuth test).
//!
//! - `imap_authenticate`: the SASL exchange driven by async-imap against a scripted server.
//! - `oauth`: the OAuth client against `postern_testkit`'s provider, which answers like Google and
//!   Microsoft (rotation, `invalid_grant`, error JSON, faults, the device flow).
//! - `lifecycle`: with a real store: the expiry forecast on a fake clock, the daily keep-alive, the
//!   catalogue in `last_error`, and the audit log of flows and refreshes.

mod imap_authenticate;
mod lifecycle;
mod oauth;
