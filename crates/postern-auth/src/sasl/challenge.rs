//! The OAuth error challenge: what a server says when it rejects a bearer token, and what to answer.
//!
//! Purpose: a failed XOAUTH2/OAUTHBEARER login is not a plain `NO`/`535` at first. The server sends one
//! more challenge (IMAP `+ <base64>`, SMTP `334 <base64>`) holding JSON such as Google's
//! `{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`, Dovecot's
//! `{"status":"401","schemes":"bearer","scope":"mail"}` or RFC 7628's
//! `{"status":"invalid_token",...}`, and waits for the client's reply before failing the command. This
//! module decodes that JSON, classifies it ([`ChallengeVerdict`]) and gives the reply
//! ([`error_challenge_reply`]).
//!
//! Non-goal: deciding policy. The verdict says what the JSON means; refreshing, retrying and marking an
//! account for re-authorization belong to the token manager and the connection code.
//!
//! Key decision: decoding is lenient in what it accepts (raw JSON or base64, padding optional, surrounding
//! whitespace, `status` as a string or a number) and keeps the raw JSON, because the exact text is what an
//! operator needs to diagnose a provider's odd answer.

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use super::Mechanism;
use crate::error::SaslError;

/// Standard base64 that accepts a challenge with or without its `=` padding.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The decoded JSON of an OAuth error challenge (RFC 7628 section 3.2.2, and the XOAUTH2 variant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthErrorChallenge {
    status: String,
    schemes: Option<String>,
    scope: Option<String>,
    openid_configuration: Option<String>,
    raw_json: String,
}

impl OAuthErrorChallenge {
    /// The `status` field as sent: an HTTP-like code (`"401"`, `"400"`) from XOAUTH2 servers, or an OAuth
    /// error code (`"invalid_token"`, `"insufficient_scope"`, `"invalid_request"`) from RFC 7628 servers.
    /// A numeric JSON status is given in its decimal form.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// The `schemes` field (`"bearer"`, `"Bearer"`), if sent.
    pub fn schemes(&self) -> Option<&str> {
        self.schemes.as_deref()
    }

    /// The `scope` field: the scope the server wants the token to carry (`"https://mail.google.com/"`).
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The `openid-configuration` field: where the server says its authorization server is described.
    pub fn openid_configuration(&self) -> Option<&str> {
        self.openid_configuration.as_deref()
    }

    /// The JSON exactly as the server sent it (after base64 decoding), for logs and diagnosis.
    pub fn raw_json(&self) -> &str {
        &self.raw_json
    }

    /// What the server's answer means for the caller; see [`ChallengeVerdict`].
    pub fn verdict(&self) -> ChallengeVerdict {
        let status = self.status.trim().to_ascii_lowercase();
        match status.as_str() {
            "401" | "invalid_token" => ChallengeVerdict::RefreshAndRetry,
            "insufficient_scope" => ChallengeVerdict::InsufficientScope {
                scope: self.scope.clone(),
            },
            "400" if self.scope.is_some() => ChallengeVerdict::InsufficientScope {
                scope: self.scope.clone(),
            },
            _ => ChallengeVerdict::Other,
        }
    }
}

/// The classification of an OAuth error challenge: what the caller must do next.
///
/// In every case the caller first sends [`error_challenge_reply`] so the server ends the command; the
/// verdict is about what happens after the login has failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeVerdict {
    /// `status` `401` (XOAUTH2) or `invalid_token` (RFC 7628): the token was expired, revoked or unknown.
    ///
    /// The caller must refresh the access token and retry the login **once** on a new attempt. If the
    /// fresh token is rejected the same way, stop: the grant itself is bad or the user name does not match
    /// the token's account, and the account needs re-authorization.
    RefreshAndRetry,
    /// `status` `insufficient_scope`, or `400` with a `scope` (Google's answer): the token is valid but
    /// the grant does not carry the scope mail access needs.
    ///
    /// The caller must not refresh-and-retry (a refreshed token carries the same grant). It must fail the
    /// login as a configuration error and ask for re-authorization with `scope` included. Google also
    /// answers this way when the XOAUTH2 `user=` is not the token's account, so say so in the message.
    InsufficientScope {
        /// The scope the server asked for, when it named one.
        scope: Option<String>,
    },
    /// Any other status (`invalid_request`, unknown codes): neither a refresh nor a re-consent is known to
    /// fix it.
    ///
    /// The caller must fail the login without retrying in a loop and report the status and the raw JSON,
    /// which usually point at a malformed request or a provider-side problem.
    Other,
}

/// Decodes the JSON of an OAuth error challenge, given base64 (as on the wire) or already decoded.
///
/// Input starting with `{` (after whitespace) is taken as raw JSON, anything else as base64: `{` is not
/// in the base64 alphabet, so the two cannot be confused. async-imap hands its `Authenticator` decoded
/// bytes; an SMTP reply's text after `334 ` is still base64.
///
/// # Errors
///
/// [`SaslError::InvalidBase64`], [`SaslError::InvalidJson`], or [`SaslError::UnexpectedJsonShape`] when
/// the JSON is not an object with a `status` string or number. An empty challenge is reported as
/// [`SaslError::InvalidJson`].
pub fn decode_oauth_error(challenge_b64_or_raw: &[u8]) -> Result<OAuthErrorChallenge, SaslError> {
    let trimmed = challenge_b64_or_raw.trim_ascii();
    let json = if trimmed.starts_with(b"{") {
        trimmed.to_vec()
    } else {
        LENIENT_BASE64
            .decode(trimmed)
            .map_err(|source| SaslError::InvalidBase64 { source })?
    };
    parse_error_json(&json)
}

/// The bytes a client must send after an error challenge so the server finishes the command with its
/// tagged `NO` (IMAP) or `535` (SMTP) instead of waiting: empty for XOAUTH2, the single byte 0x01 for
/// OAUTHBEARER (RFC 7628 section 3.2.3). Base64 them as usual (`""` and `"AQ=="`).
///
/// PLAIN and LOGIN define no error challenge; for them this is empty, which ends an exchange the server
/// prolonged unexpectedly with a failure rather than a hang.
pub const fn error_challenge_reply(mechanism: Mechanism) -> &'static [u8] {
    match mechanism {
        Mechanism::OAuthBearer => b"\x01",
        Mechanism::XOAuth2 | Mechanism::Plain | Mechanism::Login => b"",
    }
}

fn parse_error_json(json: &[u8]) -> Result<OAuthErrorChallenge, SaslError> {
    let value: Value =
        serde_json::from_slice(json).map_err(|source| SaslError::InvalidJson { source })?;
    let Value::Object(fields) = value else {
        return Err(SaslError::UnexpectedJsonShape {
            problem: "is not an object",
        });
    };
    let status = status_text(&fields).ok_or(SaslError::UnexpectedJsonShape {
        problem: "has no status string or number",
    })?;
    Ok(OAuthErrorChallenge {
        status,
        schemes: string_field(&fields, "schemes"),
        scope: string_field(&fields, "scope"),
        openid_configuration: string_field(&fields, "openid-configuration"),
        // serde_json accepted it, so it is UTF-8; lossy only to avoid a second fallible path.
        raw_json: String::from_utf8_lossy(json).into_owned(),
    })
}

/// `status` as text: RFC 7628 and Google send a string, a sloppy server might send a number.
fn status_text(fields: &Map<String, Value>) -> Option<String> {
    match fields.get("status")? {
        Value::String(status) => Some(status.clone()),
        Value::Number(status) => Some(status.to_string()),
        _ => None,
    }
}

/// An optional string field; a field of another type is ignored rather than failing the decode.
fn string_field(fields: &Map<String, Value>, name: &str) -> Option<String> {
    fields.get(name)?.as_str().map(str::to_owned)
}

#[cfg(test)]
#[path = "challenge_tests.rs"]
mod tests;
