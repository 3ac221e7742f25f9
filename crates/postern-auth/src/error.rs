//! Errors of the `postern-auth` crate.
//!
//! Purpose: one typed error per concern, so callers can match on what went wrong (today only the SASL
//! layer; OAuth flow and token-manager errors join here later).
//!
//! Non-goal: carrying secrets. No variant holds a token, a password or a whole SASL message; a field that
//! failed validation is named, never quoted.
//!
//! Key decision: an OAuth *error challenge* from the server is not an error of this layer. It is a normal
//! step of a failed login ([`crate::sasl::Step::ErrorChallenge`]); [`SaslError`] is for input this layer
//! cannot encode or server messages it cannot understand.

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
