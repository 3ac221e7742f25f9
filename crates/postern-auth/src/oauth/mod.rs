//! An OAuth2 client for mail providers, over the `oauth2` crate and reqwest.
//!
//! Purpose: the exchanges Postern has with a provider's OAuth endpoints, each one call:
//!
//! - authorization code with PKCE S256 and a random `state` ([`OAuthClient::authorization_request`],
//!   [`OAuthClient::exchange_code`]);
//! - refresh ([`OAuthClient::refresh`]), client credentials ([`OAuthClient::client_credentials`]);
//! - the device flow ([`OAuthClient::start_device_flow`], [`OAuthClient::poll_device_once`],
//!   [`OAuthClient::wait_for_device`]);
//! - revocation ([`OAuthClient::revoke`]).
//!
//! Every failure is an [`OAuthError`] that says whether to retry, to ask the
//! user to authorize again, or to stop every account of the app.
//!
//! Non-goal: the token manager (when to refresh, one refresh at a time per account, persistence). It
//! builds on this module; nothing here stores anything or runs in the background.
//!
//! Key decision: oauth2 5 with its default features off, so reqwest 0.13 is the only HTTP and TLS stack;
//! a small adapter (`transport.rs`) makes reqwest an oauth2 HTTP client and keeps the HTTP status and
//! Microsoft's error codes that oauth2's own error type drops.

mod client;
mod device;
mod grant;
mod settings;
mod transport;

pub use crate::error::{OAuthEndpoint, OAuthError, Rejection};
pub use client::{
    AuthorizationRequest, CONNECT_TIMEOUT, OAuthClient, REQUEST_TIMEOUT, http_client,
};
pub use device::{DeviceAuthorization, DevicePoll, MAX_POLL_BACKOFF, SLOW_DOWN_STEP};
pub use grant::TokenGrant;
pub use settings::{ClientAuth, ClientSettings};

pub(crate) use settings::{RESERVED_AUTHORIZE_PARAMS, url_problem};
