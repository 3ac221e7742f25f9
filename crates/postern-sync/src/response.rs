//! Reading meaning out of server responses: the greeting, and the text and response code of a refusal.
//!
//! Purpose: pure functions from parsed responses (or async-imap's error text) to what the connection
//! code acts on, so each case is tested with a byte string and no socket.
//!
//! Non-goal: parsing IMAP itself; imap-proto (through async-imap) does that.
//!
//! Key decision: async-imap reports a tagged `NO`/`BAD` only as the text
//! `code: {code:?}, info: {information:?}`, and imap-proto knows none of the RFC 5530 codes
//! (`AUTHENTICATIONFAILED`, `UNAVAILABLE`), which therefore stay at the start of the information as
//! `[CODE] text`. [`ServerReply::from_async_imap`] takes both apart; text in any other shape is kept
//! whole as the server text with no code, so a format change in async-imap degrades to "no code"
//! (caught by the integration tests) rather than to a wrong one.

use async_imap::imap_proto::{Outcome, Response, ResponseCode, Status};

use crate::capabilities::Capabilities;
use crate::error::{ImapError, Stage};

/// The longest piece of server output quoted in an error.
const MAX_QUOTED: usize = 200;

/// The text of a server's status response and its response code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerReply {
    /// The response code, upper-case, without brackets or arguments.
    pub response_code: Option<String>,
    /// The server's text, starting with the bracketed response code when there was one.
    pub server_text: String,
}

impl ServerReply {
    /// Takes apart the text of async-imap's `Error::No` / `Error::Bad`.
    pub fn from_async_imap(text: &str) -> ServerReply {
        let parts = text
            .strip_prefix("code: ")
            .and_then(|rest| rest.split_once(", info: "));
        let Some((code, info)) = parts else {
            return ServerReply::from_information(None, text);
        };
        let known_code = code.strip_prefix("Some(").map(debug_variant_name);
        let information = match info.strip_prefix("Some(\"") {
            Some(quoted) => unescape_debug(quoted.strip_suffix("\")").unwrap_or(quoted)),
            None => String::new(),
        };
        ServerReply::from_information(known_code, &information)
    }

    /// The code and text of a status response imap-proto parsed.
    pub fn from_outcome(outcome: &Outcome<'_>) -> ServerReply {
        let known_code = outcome.code.as_ref().map(response_code_name);
        ServerReply::from_information(known_code, outcome.information.as_deref().unwrap_or(""))
    }

    /// `known_code` is a code imap-proto parsed (so it is no longer in the text); otherwise a leading
    /// `[CODE ...]` in the text is the code.
    fn from_information(known_code: Option<String>, information: &str) -> ServerReply {
        let information = information.trim();
        if let Some(code) = known_code {
            return ServerReply {
                server_text: format!("[{code}] {information}").trim_end().to_owned(),
                response_code: Some(code),
            };
        }
        ServerReply {
            response_code: bracketed_code(information),
            server_text: information.to_owned(),
        }
    }
}

/// What a greeting says: `Ok` with the capabilities it carried (if any), or why the session cannot go
/// on.
///
/// # Errors
///
/// [`ImapError::GreetingRefused`] for `* BYE`, [`ImapError::Protocol`] for `* PREAUTH` (a connection
/// authenticated by other means, which Postern never sets up) and for anything that is not a greeting.
pub(crate) fn interpret_greeting(
    response: &Response<'_>,
) -> Result<Option<Capabilities>, ImapError> {
    match response {
        Response::Data {
            status: Status::Ok,
            outcome,
        } => Ok(match &outcome.code {
            Some(ResponseCode::Capabilities(list)) => Some(Capabilities::from(list.as_slice())),
            _ => None,
        }),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(ImapError::GreetingRefused {
            server_text: ServerReply::from_outcome(outcome).server_text,
        }),
        Response::Data {
            status: Status::PreAuth,
            ..
        } => Err(protocol(
            Stage::Greeting,
            "the server greeted with PREAUTH (already authenticated), which is not supported",
        )),
        other => Err(protocol(
            Stage::Greeting,
            &format!("expected a greeting, got {}", quote(&format!("{other:?}"))),
        )),
    }
}

/// A protocol error at `stage`.
pub(crate) fn protocol(stage: Stage, message: &str) -> ImapError {
    ImapError::Protocol {
        stage,
        message: message.to_owned(),
    }
}

/// Server output cut to [`MAX_QUOTED`] characters, for error messages.
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `[AUTHENTICATIONFAILED] text` → `AUTHENTICATIONFAILED`; `[BADCHARSET (UTF-8)] ...` → `BADCHARSET`.
fn bracketed_code(information: &str) -> Option<String> {
    let inside = information.strip_prefix('[')?.split_once(']')?.0;
    let atom = inside.split_whitespace().next()?;
    Some(atom.to_ascii_uppercase())
}

/// The wire name of a code imap-proto parsed, from its variant name (`Alert` → `ALERT`). Only the
/// name matters here: arguments are dropped and multi-word names lose their hyphen (`READONLY`).
fn response_code_name(code: &ResponseCode<'_>) -> String {
    debug_variant_name(&format!("{code:?}"))
}

fn debug_variant_name(debug: &str) -> String {
    debug
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Undoes `{:?}` string escaping (`\"`, `\\`, `\n`, `\u{..}`, ...).
fn unescape_debug(escaped: &str) -> String {
    let mut text = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => text.push('\n'),
            Some('r') => text.push('\r'),
            Some('t') => text.push('\t'),
            Some('0') => text.push('\0'),
            Some('u') => text.push(unescape_unicode(&mut chars)),
            Some(other) => text.push(other),
            None => text.push('\\'),
        }
    }
    text
}

/// Reads `{hex}` after `\u`; an invalid escape becomes U+FFFD.
fn unescape_unicode(chars: &mut std::str::Chars<'_>) -> char {
    let hex: String = chars
        .by_ref()
        .skip_while(|c| *c == '{')
        .take_while(|c| *c != '}')
        .collect();
    u32::from_str_radix(&hex, 16)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
