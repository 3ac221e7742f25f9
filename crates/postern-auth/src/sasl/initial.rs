//! The client's first message for the client-first mechanisms XOAUTH2, OAUTHBEARER and PLAIN.
//!
//! Purpose: the exact bytes each mechanism puts on the wire (before base64), built in one place.
//!
//! Non-goal: base64. These functions return raw bytes; IMAP and SMTP code encode them as their protocol
//! wants. LOGIN has no initial response (the server prompts), see [`super::SaslExchange`].
//!
//! Key decision: a value holding the mechanism's separator byte is refused with
//! [`SaslError::ForbiddenByte`] instead of being encoded, so a crafted user name cannot add fields of its
//! own. The message is assembled in one exactly-sized allocation inside a `SecretBox`, so no reallocation
//! leaves an un-zeroised copy of the token behind.

use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox, SecretString};

use super::Mechanism;
use crate::error::SaslError;

/// Field separator of XOAUTH2 and OAUTHBEARER (RFC 7628 `kvsep`).
const KVSEP: u8 = 0x01;

/// Field separator of PLAIN (RFC 4616).
const NUL: u8 = 0x00;

/// The XOAUTH2 initial response: `user=USER \x01 auth=Bearer TOKEN \x01 \x01`.
///
/// # Errors
///
/// [`SaslError::ForbiddenByte`] when `user` or the token contains 0x01.
pub fn xoauth2(user: &str, token: &SecretString) -> Result<SecretBox<Vec<u8>>, SaslError> {
    let token = token.expose_secret();
    refuse_byte(Mechanism::XOAuth2, "user", user, KVSEP)?;
    refuse_byte(Mechanism::XOAuth2, "token", token, KVSEP)?;
    Ok(assemble(&[
        b"user=",
        user.as_bytes(),
        b"\x01auth=Bearer ",
        token.as_bytes(),
        b"\x01\x01",
    ]))
}

/// The OAUTHBEARER initial response of RFC 7628 section 3.1:
/// `n,a=USER,\x01host=HOST\x01port=PORT\x01auth=Bearer TOKEN\x01\x01`.
///
/// `,` and `=` in the user (the GS2 authzid) are escaped as `=2C` and `=3D` (RFC 5801 section 4). An empty
/// user sends no authzid at all (`n,,`), which the RFC allows.
///
/// # Errors
///
/// [`SaslError::ForbiddenByte`] when `user`, `host` or the token contains 0x01.
pub fn oauthbearer(
    user: &str,
    host: &str,
    port: u16,
    token: &SecretString,
) -> Result<SecretBox<Vec<u8>>, SaslError> {
    let token = token.expose_secret();
    refuse_byte(Mechanism::OAuthBearer, "user", user, KVSEP)?;
    refuse_byte(Mechanism::OAuthBearer, "host", host, KVSEP)?;
    refuse_byte(Mechanism::OAuthBearer, "token", token, KVSEP)?;
    let authzid = escape_authzid(user);
    let authzid_key: &[u8] = if authzid.is_empty() { b"" } else { b"a=" };
    let port = port.to_string();
    Ok(assemble(&[
        b"n,",
        authzid_key,
        authzid.as_bytes(),
        b",\x01host=",
        host.as_bytes(),
        b"\x01port=",
        port.as_bytes(),
        b"\x01auth=Bearer ",
        token.as_bytes(),
        b"\x01\x01",
    ]))
}

/// The PLAIN message of RFC 4616: `AUTHZID \0 USER \0 PASSWORD`.
///
/// `authzid` is usually `None` (act as `user` itself); `Some("")` means the same.
///
/// # Errors
///
/// [`SaslError::ForbiddenByte`] when any of the three contains NUL.
pub fn plain(
    authzid: Option<&str>,
    user: &str,
    password: &SecretString,
) -> Result<SecretBox<Vec<u8>>, SaslError> {
    let authzid = authzid.unwrap_or("");
    let password = password.expose_secret();
    refuse_byte(Mechanism::Plain, "authzid", authzid, NUL)?;
    refuse_byte(Mechanism::Plain, "user", user, NUL)?;
    refuse_byte(Mechanism::Plain, "password", password, NUL)?;
    Ok(assemble(&[
        authzid.as_bytes(),
        b"\0",
        user.as_bytes(),
        b"\0",
        password.as_bytes(),
    ]))
}

/// Copies `value` into a new secret buffer; used for the LOGIN answers.
pub(crate) fn secret_bytes(value: &str) -> SecretBox<Vec<u8>> {
    assemble(&[value.as_bytes()])
}

fn refuse_byte(
    mechanism: Mechanism,
    field: &'static str,
    value: &str,
    byte: u8,
) -> Result<(), SaslError> {
    if value.as_bytes().contains(&byte) {
        return Err(SaslError::ForbiddenByte {
            mechanism,
            field,
            byte,
        });
    }
    Ok(())
}

/// Escapes a GS2 authzid: `=` becomes `=3D` and `,` becomes `=2C` (RFC 5801 `saslname`).
fn escape_authzid(user: &str) -> String {
    let mut escaped = String::with_capacity(user.len());
    for c in user.chars() {
        match c {
            '=' => escaped.push_str("=3D"),
            ',' => escaped.push_str("=2C"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Concatenates `parts` into one allocation of exactly the right size, so the buffer never grows and
/// never leaves a stale copy of the secret in freed memory.
fn assemble(parts: &[&[u8]]) -> SecretBox<Vec<u8>> {
    let len = parts.iter().map(|part| part.len()).sum();
    let mut message = SecretBox::new(Box::new(Vec::with_capacity(len)));
    let buffer = message.expose_secret_mut();
    for part in parts {
        buffer.extend_from_slice(part);
    }
    message
}

#[cfg(test)]
#[path = "initial_tests.rs"]
mod tests;
