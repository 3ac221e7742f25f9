//! Errors of the test provider's own API: starting it and driving it from a test.
//!
//! Non-goal: the OAuth errors the provider *answers* over HTTP; those are wire values in `wire.rs`.
//! Key decision: a control that names something unknown (client, user code) fails loudly instead of
//! doing nothing, because a silent no-op would make a broken test pass.

use std::io;

/// What can go wrong when starting or controlling a [`TestOAuthProvider`](super::TestOAuthProvider).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// Occurs when no loopback port can be bound or configured for the listener.
    #[error("cannot listen on 127.0.0.1")]
    Bind(#[source] io::Error),
    /// Occurs when the provider's thread or its tokio runtime cannot be created.
    #[error("cannot start the provider's thread or runtime")]
    Runtime(#[source] io::Error),
    /// Occurs when the provider's thread ends before it reports that it is serving.
    #[error("the provider's thread stopped during start-up")]
    ThreadDied,
    /// Occurs when a control names a client id that was never registered.
    #[error("no client is registered with id {0:?}")]
    UnknownClient(String),
    /// Occurs when a device-flow control names a user code that no device authorization has.
    #[error("no device authorization has user code {0:?}")]
    UnknownUserCode(String),
    /// Occurs when a device authorization was already decided, redeemed or has expired.
    #[error("the device authorization with user code {0:?} is no longer pending")]
    DeviceNotPending(String),
}
