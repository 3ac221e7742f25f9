//! Integration tests of `postern-outbox`: the store's outbox repository, and sends through a real
//! Dovecot submission service relaying to the testkit's SMTP sink.
//!
//! One binary (one link, one shared Dovecot and sink); every test invents its own addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test

mod faults;
mod limits;
mod scripted;
mod send;
mod sent_copy;
mod store;
mod submit;
mod support;
