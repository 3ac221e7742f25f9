//! The schema of a send request, which the handler reads as JSON and hands to
//! [`postern_outbox::Submission::from_json`] (after taking out `send_at` and `in_reply_to_message`),
//! so the outbox's types stay free of OpenAPI.
//!
//! Non-goal: being used on the wire. Key decision: a test holds the documented example to the real
//! parser, so the description cannot drift from what is accepted without a test failing.
#![allow(dead_code)] // the fields only describe

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A message to send: structured (Postern builds it), or `raw_base64` (sent as given, Bcc
/// stripped) with an optional `envelope`. The two kinds do not mix.
#[derive(ToSchema)]
#[schema(example = json!({
    "to": ["bob@example.com", {"name": "Carol", "email": "carol@example.com"}],
    "subject": "Hello",
    "text": "Hi Bob,\n\nsee you tomorrow.",
    "send_at": "2030-12-01T09:00:00Z"
}))]
pub(super) struct Submission {
    /// The From address; the account's own address when absent.
    from: Option<Address>,
    /// To recipients.
    to: Option<Vec<Address>>,
    /// Cc recipients.
    cc: Option<Vec<Address>>,
    /// Bcc recipients: in the envelope, never in a header.
    bcc: Option<Vec<Address>>,
    /// Reply-To addresses.
    reply_to: Option<Vec<Address>>,
    /// The subject.
    subject: Option<String>,
    /// The plain-text body.
    text: Option<String>,
    /// The HTML body.
    html: Option<String>,
    /// Attachments and inline parts.
    attachments: Option<Vec<Attachment>>,
    /// Extra headers (`X-...`, `List-Unsubscribe`...); Postern's own headers cannot be replaced.
    headers: Option<BTreeMap<String, String>>,
    /// The original's Message-ID and References, when this is a reply.
    in_reply_to: Option<InReplyTo>,
    /// The id of a stored message of this account this replies to: its Message-ID and References
    /// become `in_reply_to`.
    #[schema(value_type = Option<i64>)]
    in_reply_to_message: (),
    /// When to send; now when absent.
    send_at: Option<DateTime<Utc>>,
    /// A raw RFC 5322 message, base64: the other kind of request.
    raw_base64: Option<String>,
    /// With `raw_base64`: the envelope to use instead of the headers' addresses.
    envelope: Option<Envelope>,
}

/// `"bob@example.com"` or `{"name": "Bob", "email": "bob@example.com"}`.
#[derive(serde::Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = AddressInput)]
enum Address {
    /// Just the address.
    Bare(String),
    /// A display name and the address.
    Named {
        /// The display name.
        name: Option<String>,
        /// The address.
        email: String,
    },
}

/// One attachment: base64 content; a `content_id` makes it an inline part (`cid:` in the HTML).
#[derive(ToSchema)]
struct Attachment {
    /// The file name shown to the recipient.
    filename: Option<String>,
    /// The MIME type; `application/octet-stream` when absent.
    content_type: Option<String>,
    /// The content, base64.
    content_base64: String,
    /// The Content-ID of an inline part, without angle brackets.
    content_id: Option<String>,
}

/// The original of a reply.
#[derive(ToSchema)]
struct InReplyTo {
    /// The original's Message-ID (angle brackets optional).
    message_id: String,
    /// The original's References, oldest first.
    references: Option<Vec<String>>,
}

/// An explicit envelope for a raw message.
#[derive(ToSchema)]
struct Envelope {
    /// `MAIL FROM`; the From header's address, else the account's, when absent.
    from: Option<String>,
    /// `RCPT TO`.
    to: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    #[test]
    fn the_documented_example_is_a_valid_submission() {
        let schema = serde_json::to_value(Submission::schema()).unwrap();
        let mut example = schema["example"].clone();
        assert!(example.is_object(), "{schema}");
        // The handler takes `send_at` out before the outbox reads the rest.
        assert!(example.as_object_mut().unwrap().remove("send_at").is_some());
        postern_outbox::Submission::from_json(example).unwrap();
    }
}
