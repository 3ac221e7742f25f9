//! Raw messages → what the store keeps: envelope, snippet, MIME summary and parse problems.
//!
//! Purpose: [`parse_message`] for a whole message (bodies mode `full`), [`parse_head`] for a
//! header plus the first bytes of the text (other modes, whose MIME summary comes from the
//! server's BODYSTRUCTURE instead).
//! Non-goal: rendering bodies or decoding attachments for the API; that reads the stored raw
//! message (or fetches it) when asked.
//! Key decision: nothing here fails. mail-parser recovers what it can from broken input; what it
//! had to guess (a truncated multipart, an unknown charset, 8-bit bytes in a header, a part whose
//! transfer encoding does not decode) is written down in [`ParsedMessage::problems`], so one bad
//! message is listed with a note instead of stopping its mailbox.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{
    Address, HeaderName, HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType,
};
use postern_store::{AttachmentSummary, EmailAddress, Envelope, MimeSummary};

/// Characters in a snippet.
pub const SNIPPET_CHARS: usize = 200;

/// A parser for the fields the sync stores and nothing more: the MIME headers (to find the parts
/// and decode them) and the envelope's. Every other field is skipped unparsed. mail-parser's
/// default parses each `Received` (a relayed message has several), `List-*` and the like in full:
/// with six hops, a DKIM signature and list fields before each message (`bench/stages --hops 6`),
/// parsing took 17–19 µs a message with the default and 11–12 µs with this one, as without those
/// fields. The raw message keeps them all, and the API's message view parses it in full.
static SYNC_PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .header_date(HeaderName::Date)
        .header_text(HeaderName::Subject)
        .header_address(HeaderName::From)
        .header_address(HeaderName::To)
        .header_address(HeaderName::Cc)
        .header_id(HeaderName::MessageId)
        .header_id(HeaderName::InReplyTo)
        .header_id(HeaderName::References)
        .default_header_ignore()
});

/// What parsing found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedMessage {
    /// From the header.
    pub envelope: Envelope,
    /// The start of the text, whitespace collapsed.
    pub snippet: Option<String>,
    /// The MIME structure (empty for [`parse_head`]).
    pub mime: MimeSummary,
    /// What could not be parsed as declared, one sentence each.
    pub problems: Vec<String>,
    /// The body's text for the full-text index (whole messages only; `None` for [`parse_head`]).
    pub body_text: Option<String>,
}

impl ParsedMessage {
    /// The problems as one text for the store, or `None` when there were none.
    pub fn problems_text(&self) -> Option<String> {
        (!self.problems.is_empty()).then(|| self.problems.join("; "))
    }
}

/// Parses a whole raw message.
pub fn parse_message(raw: &[u8]) -> ParsedMessage {
    let mut problems = header_problems(raw);
    let Some(message) = SYNC_PARSER.parse(raw) else {
        problems.push("not a MIME message: nothing could be parsed".to_owned());
        return ParsedMessage {
            problems,
            ..ParsedMessage::default()
        };
    };
    if message.headers().is_empty() {
        problems.push("the message has no header fields".to_owned());
    }
    let sections = section_ids(&message);
    problems.extend(part_problems(&message, &sections, raw));
    ParsedMessage {
        envelope: envelope(&message),
        snippet: snippet(&message),
        mime: mime_summary(&message, &sections),
        problems,
        body_text: Some(postern_store::indexable_text(&message)),
    }
}

/// Parses a header and the first bytes of the text after it (`BODY[HEADER]` + `BODY[TEXT]<0.n>`):
/// envelope, snippet and the header's problems; the MIME summary is left empty.
pub fn parse_head(header: &[u8], text_start: &[u8]) -> ParsedMessage {
    let mut raw = Vec::with_capacity(header.len() + text_start.len());
    raw.extend_from_slice(header);
    raw.extend_from_slice(text_start);
    let mut problems = header_problems(header);
    let Some(message) = SYNC_PARSER.parse(&raw) else {
        problems.push("not a MIME message: nothing could be parsed".to_owned());
        return ParsedMessage {
            problems,
            ..ParsedMessage::default()
        };
    };
    ParsedMessage {
        envelope: envelope(&message),
        snippet: snippet(&message),
        mime: MimeSummary::default(),
        problems,
        body_text: None,
    }
}

fn envelope(message: &mail_parser::Message<'_>) -> Envelope {
    Envelope {
        message_id: message.message_id().map(str::to_owned),
        in_reply_to: text_list(message.in_reply_to()).into_iter().next(),
        references: text_list(message.references()),
        from: addresses(message.from()),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        subject: message.subject().map(str::to_owned),
        date: message
            .date()
            .and_then(|date| DateTime::<Utc>::from_timestamp(date.to_timestamp(), 0)),
    }
}

fn text_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(text) => vec![text.to_string()],
        HeaderValue::TextList(list) => list.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    }
}

fn addresses(address: Option<&Address<'_>>) -> Vec<EmailAddress> {
    address.map_or_else(Vec::new, |address| {
        address
            .iter()
            .map(|addr| EmailAddress {
                name: addr.name.as_ref().map(ToString::to_string),
                address: addr.address.as_ref().map(ToString::to_string),
            })
            .collect()
    })
}

/// The first [`SNIPPET_CHARS`] characters of the first text body (HTML turned into text when
/// that is all there is), whitespace collapsed.
fn snippet(message: &mail_parser::Message<'_>) -> Option<String> {
    let text = message.body_text(0)?;
    let mut snippet = String::with_capacity(SNIPPET_CHARS);
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars >= SNIPPET_CHARS {
            break;
        }
        if !snippet.is_empty() {
            snippet.push(' ');
            chars += 1;
        }
        for c in word.chars().take(SNIPPET_CHARS.saturating_sub(chars)) {
            snippet.push(c);
            chars += 1;
        }
    }
    (!snippet.is_empty()).then_some(snippet)
}

/// The IMAP section number of every part, by part index (`None` for a multipart root, which
/// has no number of its own).
pub(crate) fn section_ids(message: &mail_parser::Message<'_>) -> Vec<Option<String>> {
    let mut ids = vec![None; message.parts.len()];
    let Some(root) = message.parts.first() else {
        return ids;
    };
    match &root.body {
        PartType::Multipart(children) => number_children(message, children, "", &mut ids),
        _ => ids[0] = Some("1".to_owned()),
    }
    ids
}

fn number_children(
    message: &mail_parser::Message<'_>,
    children: &[u32],
    prefix: &str,
    ids: &mut [Option<String>],
) {
    for (position, &child) in children.iter().enumerate() {
        let id = if prefix.is_empty() {
            (position + 1).to_string()
        } else {
            format!("{prefix}.{}", position + 1)
        };
        let Some(part) = message.parts.get(child as usize) else {
            continue;
        };
        if let PartType::Multipart(grandchildren) = &part.body {
            number_children(message, grandchildren, &id, ids);
        }
        if let Some(slot) = ids.get_mut(child as usize) {
            *slot = Some(id);
        }
    }
}

pub(crate) fn content_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(subtype) => format!("{}/{}", ct.ctype(), subtype).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => "text/plain".to_owned(),
    }
}

pub(crate) fn mime_summary(
    message: &mail_parser::Message<'_>,
    sections: &[Option<String>],
) -> MimeSummary {
    let part_is = |ids: &[u32], html: bool| {
        ids.iter().any(|&id| {
            matches!(
                (message.parts.get(id as usize).map(|part| &part.body), html),
                (Some(PartType::Text(_)), false) | (Some(PartType::Html(_)), true)
            )
        })
    };
    let attachments = message
        .attachments
        .iter()
        .filter_map(|&index| {
            let part = message.parts.get(index as usize)?;
            Some(AttachmentSummary {
                part: sections.get(index as usize).cloned().flatten()?,
                filename: part.attachment_name().map(str::to_owned),
                content_type: content_type(part),
                size: part.len() as u64,
            })
        })
        .collect();
    MimeSummary {
        content_type: message
            .parts
            .first()
            .map_or_else(|| "text/plain".to_owned(), content_type),
        has_text: part_is(&message.text_body, false),
        has_html: part_is(&message.html_body, true),
        attachments,
    }
}

/// 8-bit bytes in the header that are not UTF-8 (RFC 6532 allows UTF-8 only): decoded lossily.
fn header_problems(raw: &[u8]) -> Vec<String> {
    let end = find(raw, b"\r\n\r\n")
        .or_else(|| find(raw, b"\n\n"))
        .unwrap_or(raw.len());
    let header = &raw[..end];
    if header.iter().any(|byte| *byte >= 0x80) && std::str::from_utf8(header).is_err() {
        vec![
            "the header holds 8-bit bytes that are not UTF-8 (shown with replacement characters)"
                .to_owned(),
        ]
    } else {
        Vec::new()
    }
}

fn part_problems(
    message: &mail_parser::Message<'_>,
    sections: &[Option<String>],
    raw: &[u8],
) -> Vec<String> {
    let mut problems = Vec::new();
    for (index, part) in message.parts.iter().enumerate() {
        let name = match sections.get(index).cloned().flatten() {
            Some(id) => format!("part {id}"),
            None => "the message".to_owned(),
        };
        if part.is_encoding_problem {
            problems.push(format!(
                "{name} could not be decoded as declared (kept as raw text)"
            ));
        }
        if let Some(charset) = unknown_charset(part) {
            problems.push(format!(
                "{name} uses the unknown charset {charset:?} (read as UTF-8)"
            ));
        } else if matches!(&part.body, PartType::Text(text) | PartType::Html(text) if text.contains('\u{FFFD}'))
        {
            problems.push(format!(
                "{name} holds bytes that are invalid in its charset"
            ));
        }
        match unclosed_boundary(part, raw) {
            Some(boundary) if boundary.is_empty() => {
                problems.push(format!("{name} is multipart but names no boundary"));
            }
            Some(boundary) => problems.push(format!(
                "{name} ends without its closing boundary {boundary:?} (truncated?)"
            )),
            None => {}
        }
    }
    problems
}

fn unknown_charset(part: &MessagePart<'_>) -> Option<String> {
    if !matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
        return None;
    }
    let charset = part.content_type()?.attribute("charset")?;
    let known = ["utf-8", "utf8", "us-ascii"]
        .iter()
        .any(|name| charset.eq_ignore_ascii_case(name))
        || charset_decoder(charset.as_bytes()).is_some();
    (!known).then(|| charset.to_owned())
}

/// The boundary of a multipart part whose closing delimiter is missing (empty when the part
/// names no boundary at all); `None` when all is well or the part is not multipart.
fn unclosed_boundary(part: &MessagePart<'_>, raw: &[u8]) -> Option<String> {
    let content_type = part.content_type()?;
    if !content_type.ctype().eq_ignore_ascii_case("multipart") {
        return None;
    }
    let Some(boundary) = content_type.attribute("boundary") else {
        return Some(String::new());
    };
    let closing = format!("--{boundary}--");
    // Searched backwards from the end: a closing boundary sits near the end of its part, so a
    // well-formed 30 MB message costs a few comparisons, and only a broken one a full scan.
    let from = (part.offset_body as usize).min(raw.len());
    rfind(&raw[from..], closing.as_bytes())
        .is_none()
        .then(|| boundary.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
