//! A stored message as an API shows it: headers, text and HTML bodies, attachments by part id.
//!
//! Parsing happens when a message is read, from the raw bytes the store keeps, with the same
//! mail-parser and the same part numbering (IMAP section numbers) that the sync used to record the
//! MIME summary, so an attachment listed during sync is found again by its `part`.
//!
//! Non-goal: sanitising HTML for display; callers that render HTML must sanitise it themselves.

use super::parse::{content_type, mime_summary, section_ids};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use postern_store::AttachmentSummary;

/// A message rendered for reading.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageView {
    /// Every header, in order, decoded to text.
    pub headers: Vec<Header>,
    /// The plain-text body (converted from HTML when only HTML exists).
    pub text: Option<String>,
    /// The HTML body, as sent.
    pub html: Option<String>,
    /// The attachments, with the part ids that fetch them.
    pub attachments: Vec<AttachmentSummary>,
}

/// One header line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Header {
    /// The header's name as written.
    pub name: String,
    /// Its value, decoded (RFC 2047) and unfolded.
    pub value: String,
}

/// One attachment's decoded content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentContent {
    /// Its media type, e.g. `application/pdf`.
    pub content_type: String,
    /// Its file name, if it has one.
    pub filename: Option<String>,
    /// The decoded bytes (base64 / quoted-printable undone).
    pub bytes: Vec<u8>,
}

/// Renders a raw message; `None` only when nothing at all can be parsed.
pub fn render(raw: &[u8]) -> Option<MessageView> {
    let message = MessageParser::default().parse(raw)?;
    let sections = section_ids(&message);
    let summary = mime_summary(&message, &sections);
    // mail-parser converts between text and HTML when a message has only one of them; the HTML
    // is reported only when the sender wrote one.
    let html = summary
        .has_html
        .then(|| message.body_html(0).map(|html| html.into_owned()))
        .flatten();
    Some(MessageView {
        headers: raw_headers(raw),
        text: message.body_text(0).map(|text| text.into_owned()),
        html,
        attachments: summary.attachments,
    })
}

/// The attachment (or any leaf part) at IMAP section `part`, decoded.
pub fn attachment(raw: &[u8], part: &str) -> Option<AttachmentContent> {
    let message = MessageParser::default().parse(raw)?;
    let sections = section_ids(&message);
    let index = sections.iter().position(|id| id.as_deref() == Some(part))?;
    let found = message.parts.get(index)?;
    let bytes = match &found.body {
        PartType::Text(text) | PartType::Html(text) => text.as_bytes().to_vec(),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes.to_vec(),
        PartType::Message(inner) => inner.raw_message().to_vec(),
        PartType::Multipart(_) => return None,
    };
    Some(AttachmentContent {
        content_type: content_type(found),
        filename: found.attachment_name().map(str::to_owned),
        bytes,
    })
}

/// The header block as name/value pairs, each value decoded and unfolded. Read from the raw
/// bytes in order, so duplicates and unknown headers are all kept.
fn raw_headers(raw: &[u8]) -> Vec<Header> {
    let end = find_header_end(raw);
    let Some(parsed) = MessageParser::new().parse_headers(&raw[..end]) else {
        return Vec::new();
    };
    parsed
        .headers()
        .iter()
        .map(|header| Header {
            name: header.name().to_owned(),
            value: header_text(
                parsed.header_raw(header.name()).unwrap_or_default(),
                &header.value,
            ),
        })
        .collect()
}

fn header_text(raw_value: &str, value: &mail_parser::HeaderValue<'_>) -> String {
    match value {
        mail_parser::HeaderValue::Text(text) => text.to_string(),
        mail_parser::HeaderValue::TextList(list) => list.join(", "),
        _ => raw_value.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

fn find_header_end(raw: &[u8]) -> usize {
    raw.windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|at| at + 2))
        .unwrap_or(raw.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] = b"From: Ada <ada@example.test>\r\nTo: bob@example.test\r\nSubject: =?UTF-8?Q?R=C3=A9sum=C3=A9?=\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Hello Bob\r\n--b1\r\nContent-Type: application/pdf; name=cv.pdf\r\nContent-Disposition: attachment; filename=cv.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n";

    #[test]
    fn a_message_renders_with_decoded_headers_body_and_attachments() {
        let view = render(RAW).unwrap();
        let subject = view.headers.iter().find(|h| h.name == "Subject").unwrap();
        assert_eq!(subject.value, "Résumé");
        assert_eq!(view.text.as_deref().map(str::trim), Some("Hello Bob"));
        assert_eq!(view.html, None);
        assert_eq!(view.attachments.len(), 1);
        assert_eq!(view.attachments[0].part, "2");
        assert_eq!(view.attachments[0].filename.as_deref(), Some("cv.pdf"));
    }

    #[test]
    fn an_attachment_is_found_by_its_part_and_decoded() {
        let pdf = attachment(RAW, "2").unwrap();
        assert_eq!(pdf.bytes, b"%PDF-1.4\n");
        assert_eq!(pdf.content_type, "application/pdf");
        assert_eq!(pdf.filename.as_deref(), Some("cv.pdf"));
        assert!(attachment(RAW, "9").is_none());
    }
}
