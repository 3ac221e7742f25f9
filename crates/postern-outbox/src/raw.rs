//! Raw submissions: an RFC 5322 message sent as given, minus its Bcc header.
//!
//! Purpose: decode a [`RawRequest`], read its envelope from its headers when none is given
//! (From, then To + Cc + Bcc), strip every Bcc field, and add a Message-ID and a Date when the
//! message lacks them, so every queued item can be recognised by its Message-ID.
//! Non-goal: rewriting anything else; the bytes a developer built are the bytes that go out.
//! Key decision: the header section is edited as bytes, line by line (folded continuation lines
//! included), never re-serialized from a parse, so nothing but the Bcc field changes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_parser::{Message, MessageParser};
use postern_auth::FieldError;
use postern_store::SmtpEnvelope;

use crate::address::{address_problem, push_unique};
use crate::compose::{Composed, RawRequest, field, new_message_id};
use crate::smtp::data::with_crlf;

const RAW: &str = "raw_base64";

/// Checks and prepares a raw request for an account whose address is `account_email`.
///
/// # Errors
///
/// Every problem found, as field errors (`raw_base64`, `envelope.from`, `envelope.to[i]`).
pub fn compose_raw(account_email: &str, request: &RawRequest) -> Result<Composed, Vec<FieldError>> {
    let bytes = decode(&request.raw_base64).map_err(|error| vec![error])?;
    let Some(message) = MessageParser::default().parse(&bytes) else {
        return Err(vec![field(RAW, "is not an RFC 5322 message")]);
    };
    if message.from().and_then(|from| from.first()).is_none() {
        return Err(vec![field(RAW, "the message has no From header")]);
    }
    let envelope = envelope(account_email, request, &message)?;
    let message_id = message.message_id().map(str::to_owned);
    let has_date = message.date().is_some();
    let mut raw = with_crlf(&strip_field(&bytes, "bcc"));
    let message_id = match message_id {
        Some(id) => id,
        None => {
            let id = new_message_id(&envelope.from);
            raw = prepend(format!("Message-ID: <{id}>\r\n"), raw);
            id
        }
    };
    if !has_date {
        let date = chrono::Utc::now().to_rfc2822();
        raw = prepend(format!("Date: {date}\r\n"), raw);
    }
    Ok(Composed {
        raw,
        envelope,
        message_id,
    })
}

fn decode(raw_base64: &str) -> Result<Vec<u8>, FieldError> {
    let compact: String = raw_base64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = STANDARD
        .decode(compact)
        .map_err(|error| field(RAW, format!("is not base64: {error}")))?;
    if bytes.is_empty() {
        return Err(field(RAW, "is empty"));
    }
    Ok(bytes)
}

/// The given envelope, checked, or the one the headers describe.
fn envelope(
    account_email: &str,
    request: &RawRequest,
    message: &Message<'_>,
) -> Result<SmtpEnvelope, Vec<FieldError>> {
    let given = request.envelope.as_ref();
    let header_from = message
        .from()
        .and_then(|from| from.first())
        .and_then(|addr| addr.address())
        .map(str::to_owned);
    let from = given
        .and_then(|envelope| envelope.from.clone())
        .or(header_from)
        .unwrap_or_else(|| account_email.to_owned());
    let mut errors = Vec::new();
    if let Some(problem) = address_problem(&from) {
        let name = if given.is_some_and(|e| e.from.is_some()) {
            "envelope.from"
        } else {
            RAW
        };
        errors.push(field(name, format!("sender {from:?} {problem}")));
    }
    let recipients = match given.filter(|e| !e.to.is_empty()) {
        Some(given) => checked(
            &mut errors,
            "envelope.to",
            given.to.iter().map(String::as_str),
        ),
        None => checked(
            &mut errors,
            RAW,
            header_recipients(message).iter().map(String::as_str),
        ),
    };
    if recipients.is_empty() && errors.is_empty() {
        errors.push(field(
            "envelope.to",
            "no recipient: give envelope.to, or To, Cc or Bcc headers in the message",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(SmtpEnvelope { from, recipients })
}

fn checked<'a>(
    errors: &mut Vec<FieldError>,
    name: &str,
    addresses: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    let mut recipients = Vec::new();
    for (index, address) in addresses.enumerate() {
        match address_problem(address) {
            Some(problem) if name == RAW => {
                errors.push(field(name, format!("recipient {address:?} {problem}")));
            }
            Some(problem) => errors.push(field(&format!("{name}[{index}]"), problem)),
            None => push_unique(&mut recipients, address),
        }
    }
    recipients
}

/// Every address of every To, Cc and Bcc field (group members included).
fn header_recipients(message: &Message<'_>) -> Vec<String> {
    message
        .all_to()
        .chain(message.all_cc())
        .chain(message.all_bcc())
        .flat_map(|list| list.iter())
        .filter_map(|addr| addr.address())
        .map(str::to_owned)
        .collect()
}

/// The message without any field named `name` (case-insensitive) in its header section,
/// continuation lines included; the body is untouched.
pub fn strip_field(message: &[u8], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut skipping = false;
    let mut in_header = true;
    for line in message.split_inclusive(|byte| *byte == b'\n') {
        if in_header && (line == b"\r\n" || line == b"\n") {
            in_header = false;
        }
        if !in_header {
            out.extend_from_slice(line);
            continue;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            skipping = field_name(line).is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()));
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out
}

fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|b| *b == b':')?;
    Some(line[..colon].trim_ascii_end())
}

fn prepend(header: String, message: Vec<u8>) -> Vec<u8> {
    let mut out = header.into_bytes();
    out.extend_from_slice(&message);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::compose::EnvelopeInput;

    fn request(raw: &str) -> RawRequest {
        RawRequest {
            raw_base64: STANDARD.encode(raw),
            envelope: None,
        }
    }

    const MESSAGE: &str = "From: Alice <alice@example.test>\r\n\
        To: bob@example.test, Team: carol@example.test, dan@example.test;\r\n\
        Bcc: secret@example.test,\r\n\
        \tother-secret@example.test\r\n\
        Subject: Hi\r\n\
        Message-ID: <given@example.test>\r\n\
        Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
        \r\n\
        Bcc: this line is body text\r\n";

    #[test]
    fn the_envelope_comes_from_the_headers_and_bcc_is_stripped() {
        let composed = compose_raw("account@example.test", &request(MESSAGE)).unwrap();
        assert_eq!(composed.envelope.from, "alice@example.test");
        assert_eq!(
            composed.envelope.recipients,
            [
                "bob@example.test",
                "carol@example.test",
                "dan@example.test",
                "secret@example.test",
                "other-secret@example.test"
            ]
        );
        assert_eq!(composed.message_id, "given@example.test");
        let text = String::from_utf8(composed.raw).unwrap();
        assert!(!text.contains("secret@"), "{text}");
        assert!(
            text.contains("\r\n\r\nBcc: this line is body text\r\n"),
            "{text}"
        );
        assert_eq!(
            text,
            MESSAGE.replace(
                "Bcc: secret@example.test,\r\n\tother-secret@example.test\r\n",
                ""
            )
        );
    }

    #[test]
    fn a_given_envelope_wins_and_missing_ids_are_added() {
        let mut raw = request("From: a@example.test\nSubject: x\n\nbody\n");
        raw.envelope = Some(EnvelopeInput {
            from: Some("bounce@example.test".into()),
            to: vec!["z@example.test".into()],
        });
        let composed = compose_raw("account@example.test", &raw).unwrap();
        assert_eq!(composed.envelope.from, "bounce@example.test");
        assert_eq!(composed.envelope.recipients, ["z@example.test"]);
        assert!(composed.message_id.ends_with("@example.test"));
        let text = String::from_utf8(composed.raw).unwrap();
        assert!(text.starts_with("Date: "), "{text}");
        assert!(text.contains(&format!("Message-ID: <{}>\r\n", composed.message_id)));
        assert!(
            text.ends_with("From: a@example.test\r\nSubject: x\r\n\r\nbody\r\n"),
            "{text}"
        );
    }

    #[test]
    fn problems_are_field_errors() {
        let not_base64 = RawRequest {
            raw_base64: "%%%".into(),
            envelope: None,
        };
        let errors = compose_raw("a@example.test", &not_base64).unwrap_err();
        assert_eq!(errors[0].field, "raw_base64");
        assert!(errors[0].message.contains("not base64"));
        let errors =
            compose_raw("a@example.test", &request("Subject: x\r\n\r\nhi\r\n")).unwrap_err();
        assert_eq!(errors[0].message, "the message has no From header");
        let errors = compose_raw(
            "a@example.test",
            &request("From: a@example.test\r\n\r\nhi\r\n"),
        )
        .unwrap_err();
        assert_eq!(errors[0].field, "envelope.to");
        let mut bad = request(MESSAGE);
        bad.envelope = Some(EnvelopeInput {
            from: None,
            to: vec!["ok@example.test".into(), "not an address".into()],
        });
        let errors = compose_raw("a@example.test", &bad).unwrap_err();
        assert_eq!(errors[0].field, "envelope.to[1]");
    }

    #[test]
    fn strip_field_only_touches_the_header_section() {
        let message = b"BCC: x\r\n y\r\nTo: a\r\nbcc : z\r\n\r\nBcc: body\r\n";
        assert_eq!(
            strip_field(message, "bcc"),
            b"To: a\r\n\r\nBcc: body\r\n".as_slice()
        );
        assert_eq!(strip_field(b"To: a\n", "bcc"), b"To: a\n".as_slice());
    }
}
