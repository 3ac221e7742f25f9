//! Errors of the `postern-auth` crate.
//!
//! Purpose: one typed error per concern, so callers can match on what went wrong: [`SaslError`] for the
//! SASL layer, [`OAuthError`] for calls to a provider's OAuth endpoints, [`FieldError`] for an OAuth app
//! definition that cannot be used, [`UnknownProvider`] for a provider name Postern does not know.
//!
//! Non-goal: carrying secrets. No variant holds a token, a password or a whole SASL message; a field that
//! failed validation is named, never quoted. Text a provider wrote (an `error_description`) is kept, with
//! every secret of the request that provoked it cut out first.
//!
//! Key decision: an OAuth *error challenge* from the server is not an error of this layer. It is a normal
//! step of a failed login ([`crate::sasl::Step::ErrorChallenge`]); [`SaslError`] is for input this layer
//! cannot encode or server messages it cannot understand. Likewise an OAuth endpoint's refusal is decoded
//! into a [`Rejection`] and classified ([`OAuthError::is_transient`], [`OAuthError::is_grant_dead`],
//! [`OAuthError::is_app_level`]) so the token manager never has to parse provider text to pick a reaction.

use std::fmt;
use std::time::Duration;

use crate::sasl::Mechanism;

/// An error of the sans-I/O SASL layer ([`crate::sasl`]).
///
/// None of these is transient: retrying the same exchange with the same input fails the same way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// Occurs when a mechanism name (from a capability list or a configuration) is not one of
    /// XOAUTH2, OAUTHBEARER, PLAIN or LOGIN.
    #[error("unknown SASL mechanism {name:?}")]
    UnknownMechanism {
        /// The name as given, not normalised.
        name: String,
    },

    /// Occurs when a user name, authorization id, host, token or password contains the byte the mechanism
    /// uses as a field separator (0x01 for XOAUTH2/OAUTHBEARER, NUL for PLAIN). Encoding it would let the
    /// value forge extra fields, so it is refused.
    #[error("the {field} contains byte {byte:#04x}, a separator in SASL {mechanism}")]
    ForbiddenByte {
        /// The mechanism being encoded.
        mechanism: Mechanism,
        /// Which input held the byte: `"user"`, `"authzid"`, `"host"`, `"token"` or `"password"`.
        field: &'static str,
        /// The offending byte.
        byte: u8,
    },

    /// Occurs when a [`crate::sasl::SaslExchange`] is built with credentials the mechanism cannot use:
    /// a password for XOAUTH2/OAUTHBEARER, or a bearer token for PLAIN/LOGIN.
    #[error("SASL {mechanism} cannot use these credentials")]
    CredentialsMismatch {
        /// The mechanism that was asked for.
        mechanism: Mechanism,
    },

    /// Occurs when the server sends a challenge the mechanism has no answer for: after PLAIN's single
    /// response, after LOGIN's password, after an OAuth mechanism's error-challenge reply, or an empty
    /// challenge where an OAuth server may only send its error JSON.
    #[error("unexpected SASL {mechanism} challenge from the server")]
    UnexpectedChallenge {
        /// The mechanism of the exchange.
        mechanism: Mechanism,
    },

    /// Occurs when an OAuth error challenge is neither raw JSON nor valid base64.
    #[error("the OAuth error challenge is not valid base64")]
    InvalidBase64 {
        /// The decoder's complaint (position and byte), which never echoes the input.
        #[source]
        source: base64::DecodeError,
    },

    /// Occurs when an OAuth error challenge (after base64 decoding) is not JSON at all.
    #[error("the OAuth error challenge is not JSON")]
    InvalidJson {
        /// The parser's complaint (line and column).
        #[source]
        source: serde_json::Error,
    },

    /// Occurs when an OAuth error challenge is JSON but not the expected object with a `status` string or
    /// number (RFC 7628 section 3.2.2 makes `status` mandatory).
    #[error("the OAuth error challenge JSON {problem}")]
    UnexpectedJsonShape {
        /// What is wrong, e.g. `"is not an object"`.
        problem: &'static str,
    },
}

/// An OAuth endpoint of a provider, named in errors so an operator knows which call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthEndpoint {
    /// The token endpoint (code exchange, refresh, client credentials, device polling).
    Token,
    /// The RFC 8628 device authorization endpoint.
    DeviceAuthorization,
    /// The RFC 7009 (or Google-style) revocation endpoint.
    Revocation,
}

impl OAuthEndpoint {
    /// A lower-case name for messages: `"token"`, `"device authorization"`, `"revocation"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OAuthEndpoint::Token => "token",
            OAuthEndpoint::DeviceAuthorization => "device authorization",
            OAuthEndpoint::Revocation => "revocation",
        }
    }
}

impl fmt::Display for OAuthEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Microsoft's code for an expired client secret: every account of the app is affected.
pub const AADSTS_SECRET_EXPIRED: u32 = 7_000_222;
/// Microsoft's code for a wrong client secret (typo, or the secret's *id* pasted instead of its value).
pub const AADSTS_SECRET_INVALID: u32 = 7_000_215;
/// Microsoft's code for an application id that does not exist in the tenant.
pub const AADSTS_UNKNOWN_APP: u32 = 700_016;

/// What an OAuth endpoint answered when it refused a request: the HTTP status and the RFC 6749 §5.2
/// error body, decoded.
///
/// Built by this crate only; the fields are public to read. The description is the provider's text with
/// every secret Postern sent in that request cut out, and at most [`Rejection::MAX_DESCRIPTION`] bytes long.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejection {
    /// The endpoint that refused.
    pub endpoint: OAuthEndpoint,
    /// The HTTP status (a `200` only for providers that put an error body in a success answer).
    pub status: u16,
    /// RFC 6749's `error` code (`invalid_grant`, `invalid_client`, ...); `None` when the body was not OAuth
    /// error JSON, as with a load balancer's HTML 502 page.
    pub error: Option<String>,
    /// The provider's `error_description`, e.g. Google's "Token has been expired or revoked." or
    /// Microsoft's "AADSTS7000222: The provided client secret keys ... are expired. ...".
    pub description: Option<String>,
    /// Microsoft's `error_codes` array (the numbers of the `AADSTS…` codes); empty elsewhere.
    pub error_codes: Vec<u32>,
    /// The `Retry-After` header in seconds, when the provider sent one (with a 429 or a 503).
    pub retry_after: Option<Duration>,
}

impl Rejection {
    /// The longest description kept, in bytes; the rest is cut (at a character boundary).
    pub const MAX_DESCRIPTION: usize = 1024;

    /// Whether RFC 6749's `error` code is `code`.
    pub fn error_is(&self, code: &str) -> bool {
        self.error.as_deref() == Some(code)
    }

    /// Microsoft's `AADSTS` codes: those of `error_codes`, and any `AADSTS<n>` in the description (some
    /// answers carry only the latter).
    pub fn aadsts_codes(&self) -> Vec<u32> {
        let mut codes = self.error_codes.clone();
        let description = self.description.as_deref().unwrap_or_default();
        for (start, _) in description.match_indices("AADSTS") {
            let digits: String = description[start + "AADSTS".len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(code) = digits.parse::<u32>()
                && !codes.contains(&code)
            {
                codes.push(code);
            }
        }
        codes
    }

    /// Retrying later may succeed: a 5xx, a 408 or 429, or `temporarily_unavailable` / `server_error`.
    pub fn is_transient(&self) -> bool {
        let status_says_so = self.status >= 500 || self.status == 408 || self.status == 429;
        let code_says_so =
            self.error_is("temporarily_unavailable") || self.error_is("server_error");
        (status_says_so || code_says_so) && !self.is_app_level()
    }

    /// The grant (refresh token, code, device code) is dead and only a new authorization by the user
    /// helps: `invalid_grant`, or Microsoft's `interaction_required` (MFA or a policy wants the user back).
    pub fn is_grant_dead(&self) -> bool {
        let dead = self.error_is("invalid_grant") || self.error_is("interaction_required");
        dead && !self.is_app_level()
    }

    /// The app itself is refused, so every account using it fails the same way until an operator fixes
    /// the app: `invalid_client`, `unauthorized_client`, or Microsoft's expired secret
    /// ([`AADSTS_SECRET_EXPIRED`]), invalid secret ([`AADSTS_SECRET_INVALID`]) or unknown app
    /// ([`AADSTS_UNKNOWN_APP`]), whatever `error` code carries them.
    pub fn is_app_level(&self) -> bool {
        const APP_CODES: [u32; 3] = [
            AADSTS_SECRET_EXPIRED,
            AADSTS_SECRET_INVALID,
            AADSTS_UNKNOWN_APP,
        ];
        self.error_is("invalid_client")
            || self.error_is("unauthorized_client")
            || self
                .aadsts_codes()
                .iter()
                .any(|code| APP_CODES.contains(code))
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} endpoint refused: HTTP {}",
            self.endpoint, self.status
        )?;
        if let Some(error) = &self.error {
            write!(f, " {error}")?;
        }
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

/// Why a code exchange that succeeded is still useless: it returned no refresh token.
const NO_REFRESH_TOKEN_HINT: &str = "the provider returned no refresh token, so the account would stop \
     working when this access token expires. Usual cause: Google sends one only with \
     access_type=offline and prompt=consent in the authorization request; Microsoft only when the \
     scopes include offline_access";

/// An error of a call to a provider's OAuth endpoints ([`crate::oauth`]).
///
/// Classify it with [`is_transient`](Self::is_transient) (back off and retry),
/// [`is_grant_dead`](Self::is_grant_dead) (stop, ask the user to re-authorize) and
/// [`is_app_level`](Self::is_app_level) (stop every account of the app, alert the operator); at most one
/// of the three is true. No variant's message or `Debug` output holds a token or a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// Occurs when [`crate::oauth::ClientSettings`] or a redirect URI cannot be used: an empty client id,
    /// a URL that does not parse or is plain `http` to a non-loopback host, an extra parameter the
    /// client sets itself.
    #[error("invalid OAuth client settings: {field} {problem}")]
    InvalidSettings {
        /// The setting, e.g. `"token_url"` or `"extra_params.state"`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },

    /// Occurs when a flow needs an endpoint the app has no URL for (device flow without a device
    /// authorization URL, revocation without a revocation URL).
    #[error("the app has no {endpoint} endpoint")]
    EndpointMissing {
        /// The endpoint that is not configured.
        endpoint: OAuthEndpoint,
    },

    /// Occurs when the HTTP client cannot be built (TLS backend initialisation).
    #[error("cannot build the HTTP client for OAuth calls")]
    HttpClient(#[source] reqwest::Error),

    /// Occurs when the request never got an HTTP answer: DNS, connect, TLS, a timeout, or a connection
    /// cut while the answer was read. Always transient.
    #[error("cannot reach the {endpoint} endpoint{}", if *.timeout { " (timed out)" } else { "" })]
    Network {
        /// The endpoint called.
        endpoint: OAuthEndpoint,
        /// Whether the request timed out (as opposed to failing outright).
        timeout: bool,
        /// The HTTP client's error, without the URL.
        #[source]
        source: reqwest::Error,
    },

    /// Occurs when the endpoint refuses: a non-success status, with the OAuth error body decoded.
    #[error("{0}")]
    Rejected(Box<Rejection>),

    /// Occurs when a success answer is not what the endpoint must send: not JSON, a token response
    /// without `access_token`, a body over the size limit.
    #[error("the {endpoint} endpoint sent an unusable answer: {problem}")]
    InvalidResponse {
        /// The endpoint called.
        endpoint: OAuthEndpoint,
        /// What is wrong, never quoting the body (it may hold tokens).
        problem: String,
    },

    /// Occurs when a code exchange or a device flow succeeds but returns no refresh token, which Postern
    /// needs to keep a mailbox connected. The message names the usual cause.
    #[error("{NO_REFRESH_TOKEN_HINT}")]
    MissingRefreshToken,

    /// Occurs when a device flow's code expires (or the provider answers `expired_token`) before the
    /// user approved; start a new device flow.
    #[error("the device code expired before the user approved it")]
    DeviceCodeExpired,
}

impl OAuthError {
    /// Retrying later may succeed: network errors and timeouts, 5xx, 408, 429 and
    /// `temporarily_unavailable`. Back off before retrying (see [`Rejection::retry_after`]).
    pub fn is_transient(&self) -> bool {
        match self {
            OAuthError::Network { .. } => true,
            OAuthError::Rejected(rejection) => rejection.is_transient(),
            _ => false,
        }
    }

    /// The grant is dead (`invalid_grant`: revoked, expired, password changed, a rotated-out refresh
    /// token, a bad PKCE verifier): stop retrying and ask the user to authorize again.
    pub fn is_grant_dead(&self) -> bool {
        matches!(self, OAuthError::Rejected(rejection) if rejection.is_grant_dead())
    }

    /// The app is refused (`invalid_client`, `unauthorized_client`, Microsoft's expired or invalid
    /// secret, unknown app id): every account on that app is affected until an operator fixes it.
    pub fn is_app_level(&self) -> bool {
        matches!(self, OAuthError::Rejected(rejection) if rejection.is_app_level())
    }

    /// The decoded refusal, when the endpoint answered with one.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            OAuthError::Rejected(rejection) => Some(rejection),
            _ => None,
        }
    }
}

/// A field of an OAuth app definition that cannot be used, as returned by
/// [`crate::presets::AppInput::resolve`] (the API answers these with a 400 and the list).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The input field, e.g. `"token_url"`, `"scopes"` or `"extra_params.state"`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Occurs when a provider name is not `google`, `microsoft`, `yahoo` or `generic`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {name:?}: expected google, microsoft, yahoo or generic")]
pub struct UnknownProvider {
    /// The name as given.
    pub name: String,
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
