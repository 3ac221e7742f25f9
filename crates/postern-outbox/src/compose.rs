//! From a send request to the bytes and envelope that will be queued. Pure: no I/O, no store.
//!
//! Purpose: check a structured [`SendRequest`] field by field and build it with mail-builder
//! (From defaulting to the account's address, a Message-ID `<uuid@domain-of-from>`,
//! In-Reply-To/References for replies, attachments and inline parts), or take a
//! [`RawRequest`]'s RFC 5322 message as given (see [`crate::raw`]). Either way the result is a
//! [`Composed`]: the message, its SMTP envelope and its Message-ID.
//! Non-goal: resolving a Postern message id into the original's Message-ID and References (the
//! caller looks the original up and passes an [`InReplyTo`]), size limits (the service knows
//! the server's SIZE), sending.
//! Key decisions:
//! - Bcc recipients go into the envelope only, never into a header: the builder is never given
//!   them, so no code path can leak them.
//! - Every problem is reported at once, as `{field, message}` pairs naming the JSON path
//!   (`to[1]`, `attachments[0].content_base64`), so a developer fixes a request in one round.
//! - Values that end up in headers are refused when they hold CR or LF, and extra headers may
//!   not replace the ones Postern writes: no header injection, no second From.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address as BuiltAddress;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::text::Text;
use postern_auth::FieldError;
use postern_store::SmtpEnvelope;

use crate::address::{address_problem, domain_of, push_unique};

/// Headers Postern writes itself; a request's `headers` may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
];

/// An address as a request gives it: `"alice@example.com"` or
/// `{"name": "Alice", "email": "alice@example.com"}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Address {
    /// Just the address.
    Bare(String),
    /// A display name and the address.
    Named {
        /// The display name, if any.
        #[serde(default)]
        name: Option<String>,
        /// The address.
        email: String,
    },
}

impl Address {
    /// The address part.
    pub fn email(&self) -> &str {
        match self {
            Address::Bare(email) | Address::Named { email, .. } => email,
        }
    }

    /// The display name, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Address::Bare(_) => None,
            Address::Named { name, .. } => name.as_deref(),
        }
    }

    fn built(&self) -> BuiltAddress<'static> {
        BuiltAddress::new_address(self.name().map(str::to_owned), self.email().to_owned())
    }
}

impl From<&str> for Address {
    fn from(email: &str) -> Self {
        Address::Bare(email.to_owned())
    }
}

/// One attachment: base64 content; a `content_id` makes it an inline part (`cid:` in the HTML).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// The file name shown to the recipient.
    #[serde(default)]
    pub filename: Option<String>,
    /// The MIME type; `application/octet-stream` when absent.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The content, base64 (standard alphabet; line breaks allowed).
    pub content_base64: String,
    /// The Content-ID of an inline part, without angle brackets.
    #[serde(default)]
    pub content_id: Option<String>,
}

/// The original of a reply: its Message-ID and References, as the caller looked them up.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InReplyTo {
    /// The original's Message-ID (angle brackets optional).
    pub message_id: String,
    /// The original's References, oldest first.
    #[serde(default)]
    pub references: Vec<String>,
}

/// A structured send request.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The From address; the account's own address when absent.
    #[serde(default)]
    pub from: Option<Address>,
    /// To recipients.
    #[serde(default)]
    pub to: Vec<Address>,
    /// Cc recipients.
    #[serde(default)]
    pub cc: Vec<Address>,
    /// Bcc recipients: in the envelope, never in a header.
    #[serde(default)]
    pub bcc: Vec<Address>,
    /// Reply-To addresses.
    #[serde(default)]
    pub reply_to: Vec<Address>,
    /// The subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// The plain-text body.
    #[serde(default)]
    pub text: Option<String>,
    /// The HTML body.
    #[serde(default)]
    pub html: Option<String>,
    /// Attachments and inline parts.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Extra headers (`X-…`, `List-Unsubscribe`…); Postern's own headers cannot be replaced.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The original message, when this is a reply.
    #[serde(default)]
    pub in_reply_to: Option<InReplyTo>,
}

/// A raw RFC 5322 message, with an optional envelope (taken from its headers when absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    /// The message, base64 (standard alphabet; line breaks allowed).
    pub raw_base64: String,
    /// The envelope to use instead of the headers' addresses.
    #[serde(default)]
    pub envelope: Option<EnvelopeInput>,
}

/// An explicit envelope for a raw message.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeInput {
    /// `MAIL FROM`; the From header's address, else the account's, when absent.
    #[serde(default)]
    pub from: Option<String>,
    /// `RCPT TO`; required.
    #[serde(default)]
    pub to: Vec<String>,
}

/// What can be submitted: a structured request or a raw message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submission {
    /// Built by Postern (boxed: it is much larger than a raw request).
    Structured(Box<SendRequest>),
    /// Sent as given (Bcc stripped).
    Raw(RawRequest),
}

impl From<SendRequest> for Submission {
    fn from(request: SendRequest) -> Self {
        Submission::Structured(Box::new(request))
    }
}

impl From<RawRequest> for Submission {
    fn from(request: RawRequest) -> Self {
        Submission::Raw(request)
    }
}

impl Submission {
    /// Reads a JSON request body: a raw request when it has `raw_base64`, else a structured one.
    ///
    /// # Errors
    ///
    /// One [`FieldError`] (field `body`) with serde's description of the mismatch.
    pub fn from_json(body: serde_json::Value) -> Result<Self, Vec<FieldError>> {
        let is_raw = body.get("raw_base64").is_some();
        let parsed = if is_raw {
            serde_json::from_value(body).map(Submission::Raw)
        } else {
            serde_json::from_value(body).map(|request| Submission::Structured(Box::new(request)))
        };
        parsed.map_err(|error| vec![field("body", error.to_string())])
    }
}

/// A message ready to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Composed {
    /// The RFC 5322 bytes, CRLF line endings, no Bcc header.
    pub raw: Vec<u8>,
    /// `MAIL FROM` and every `RCPT TO` (To, Cc and Bcc, without duplicates).
    pub envelope: SmtpEnvelope,
    /// The Message-ID, without angle brackets.
    pub message_id: String,
}

/// Composes either kind of submission for an account whose address is `account_email`.
///
/// # Errors
///
/// Every problem found, as field errors.
pub fn compose_submission(
    account_email: &str,
    submission: &Submission,
) -> Result<Composed, Vec<FieldError>> {
    match submission {
        Submission::Structured(request) => compose(account_email, request),
        Submission::Raw(request) => crate::raw::compose_raw(account_email, request),
    }
}

/// Checks and builds a structured request for an account whose address is `account_email`.
///
/// # Errors
///
/// Every problem found, as field errors naming the request's JSON paths.
pub fn compose(account_email: &str, request: &SendRequest) -> Result<Composed, Vec<FieldError>> {
    let mut errors = Vec::new();
    let from = request
        .from
        .clone()
        .unwrap_or_else(|| Address::Bare(account_email.to_owned()));
    check_address(&mut errors, "from", &from);
    let mut recipients = Vec::new();
    for (name, list) in [
        ("to", &request.to),
        ("cc", &request.cc),
        ("bcc", &request.bcc),
    ] {
        for (index, address) in list.iter().enumerate() {
            if check_address(&mut errors, &format!("{name}[{index}]"), address) {
                push_unique(&mut recipients, address.email());
            }
        }
    }
    if request.to.is_empty() && request.cc.is_empty() && request.bcc.is_empty() {
        errors.push(field(
            "to",
            "at least one recipient is required (to, cc or bcc)",
        ));
    }
    for (index, address) in request.reply_to.iter().enumerate() {
        check_address(&mut errors, &format!("reply_to[{index}]"), address);
    }
    check_one_line(&mut errors, "subject", request.subject.as_deref());
    check_headers(&mut errors, &request.headers);
    let reply = check_reply(&mut errors, request.in_reply_to.as_ref());
    let attachments = decode_attachments(&mut errors, &request.attachments);
    if !errors.is_empty() {
        return Err(errors);
    }
    let message_id = new_message_id(from.email());
    let raw = build(request, &from, &message_id, reply, attachments).map_err(|error| {
        vec![field(
            "body",
            format!("the message cannot be built: {error}"),
        )]
    })?;
    Ok(Composed {
        raw,
        envelope: SmtpEnvelope {
            from: from.email().to_owned(),
            recipients,
        },
        message_id,
    })
}

/// `<uuid>@<domain of from>`, without angle brackets.
pub(crate) fn new_message_id(from: &str) -> String {
    let domain = domain_of(from).unwrap_or_else(|| "postern.invalid".to_owned());
    format!("{}@{domain}", uuid::Uuid::now_v7().simple())
}

pub(crate) fn field(name: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: message.into(),
    }
}

/// Records the address's problems; true when it is usable.
fn check_address(errors: &mut Vec<FieldError>, name: &str, address: &Address) -> bool {
    let mut ok = true;
    if let Some(problem) = address_problem(address.email()) {
        errors.push(field(name, format!("{:?} {problem}", address.email())));
        ok = false;
    }
    if address.name().is_some_and(|n| n.contains(['\r', '\n'])) {
        errors.push(field(name, "the display name must be one line"));
        ok = false;
    }
    ok
}

fn check_one_line(errors: &mut Vec<FieldError>, name: &str, value: Option<&str>) {
    if value.is_some_and(|v| v.contains(['\r', '\n'])) {
        errors.push(field(name, "must be one line (no CR or LF)"));
    }
}

fn check_headers(errors: &mut Vec<FieldError>, headers: &BTreeMap<String, String>) {
    for (name, value) in headers {
        let path = format!("headers.{name}");
        let valid_name =
            !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !valid_name {
            errors.push(field(
                &path,
                "is not a valid header name (printable ASCII, no colon)",
            ));
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            errors.push(field(
                &path,
                "is set by Postern; use the request's own field instead",
            ));
        }
        check_one_line(errors, &path, Some(value));
    }
}

/// The In-Reply-To id and the References list of a reply, checked and without brackets.
fn check_reply(
    errors: &mut Vec<FieldError>,
    reply: Option<&InReplyTo>,
) -> Option<(String, Vec<String>)> {
    let reply = reply?;
    let parent = match message_id_problem(&reply.message_id) {
        Some(problem) => {
            errors.push(field("in_reply_to.message_id", problem));
            return None;
        }
        None => bare_id(&reply.message_id),
    };
    let mut references = Vec::new();
    for (index, reference) in reply.references.iter().enumerate() {
        match message_id_problem(reference) {
            Some(problem) => {
                errors.push(field(&format!("in_reply_to.references[{index}]"), problem))
            }
            None => push_unique(&mut references, &bare_id(reference)),
        }
    }
    push_unique(&mut references, &parent);
    Some((parent, references))
}

fn message_id_problem(id: &str) -> Option<&'static str> {
    let bare = bare_id(id);
    if bare.is_empty() {
        return Some("is empty");
    }
    if bare
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return Some("is not a Message-ID (no spaces, control characters or inner brackets)");
    }
    None
}

fn bare_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// An attachment ready for the builder.
struct Part {
    content_type: String,
    filename: Option<String>,
    content_id: Option<String>,
    bytes: Vec<u8>,
}

fn decode_attachments(errors: &mut Vec<FieldError>, attachments: &[Attachment]) -> Vec<Part> {
    let mut parts = Vec::with_capacity(attachments.len());
    for (index, attachment) in attachments.iter().enumerate() {
        let path = |name: &str| format!("attachments[{index}].{name}");
        let compact: String = attachment
            .content_base64
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = match STANDARD.decode(compact) {
            Ok(bytes) => bytes,
            Err(error) => {
                errors.push(field(
                    &path("content_base64"),
                    format!("is not base64: {error}"),
                ));
                continue;
            }
        };
        let content_type = attachment
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        if !is_mime_type(&content_type) {
            errors.push(field(
                &path("content_type"),
                "is not a MIME type like image/png",
            ));
        }
        check_one_line(errors, &path("filename"), attachment.filename.as_deref());
        let content_id = attachment.content_id.as_deref().map(bare_id);
        if let Some(problem) = content_id.as_deref().and_then(message_id_problem) {
            errors.push(field(&path("content_id"), problem));
        }
        parts.push(Part {
            content_type,
            filename: attachment.filename.clone(),
            content_id,
            bytes,
        });
    }
    parts
}

/// `type/subtype`, both RFC 2045 tokens (parameters are not accepted here).
fn is_mime_type(text: &str) -> bool {
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    text.split_once('/')
        .is_some_and(|(kind, subtype)| token(kind) && token(subtype))
}

fn build(
    request: &SendRequest,
    from: &Address,
    message_id: &str,
    reply: Option<(String, Vec<String>)>,
    parts: Vec<Part>,
) -> std::io::Result<Vec<u8>> {
    let list = |addresses: &[Address]| {
        BuiltAddress::new_list(addresses.iter().map(Address::built).collect())
    };
    let mut builder = MessageBuilder::new()
        .from(from.built())
        .message_id(MessageId::new(message_id.to_owned()));
    if !request.to.is_empty() {
        builder = builder.to(list(&request.to));
    }
    if !request.cc.is_empty() {
        builder = builder.cc(list(&request.cc));
    }
    if !request.reply_to.is_empty() {
        builder = builder.reply_to(list(&request.reply_to));
    }
    builder = builder.subject(Text::new(request.subject.clone().unwrap_or_default()));
    if let Some((parent, references)) = reply {
        builder = builder
            .in_reply_to(MessageId::new(parent))
            .references(MessageId::new_list(references.into_iter()));
    }
    for (name, value) in &request.headers {
        builder = builder.header(name.clone(), Text::new(value.clone()));
    }
    if let Some(text) = &request.text {
        builder = builder.text_body(text.clone());
    }
    if let Some(html) = &request.html {
        builder = builder.html_body(html.clone());
    }
    for part in parts {
        builder = match part.content_id {
            Some(cid) => builder.inline(part.content_type, cid, part.bytes),
            None => builder.attachment(
                part.content_type,
                part.filename.unwrap_or_else(|| "attachment".to_owned()),
                part.bytes,
            ),
        };
    }
    builder.write_to_vec()
}

#[cfg(test)]
#[path = "compose_tests.rs"]
mod tests;
