//! IMAP responses (as imap-proto parses them) → the engine's own values.
//!
//! Purpose: LIST lines → [`ListedMailbox`], STATUS attributes and SELECT responses →
//! [`ServerStatus`], FETCH attributes → [`FetchedMessage`] (and on to a store
//! [`NewMessage`]), BODYSTRUCTURE → [`MimeSummary`]. Pure functions, tested with byte strings.
//! Non-goal: reading from the connection (`wire` does) or deciding anything (`plan` does).
//! Key decision: a response that lacks what the engine asked for is not an error here but a
//! `None` (an unsolicited `FETCH (FLAGS ...)` for another message, a SELECT without UIDNEXT), so
//! the caller decides whether to skip it or ask another way.

use std::ops::RangeInclusive;

use async_imap::imap_proto::{
    AttributeValue, BodyStructure, MailboxDatum, MailboxListData, MessageSection, NameAttribute,
    Response, ResponseCode, SectionPath, Status, StatusAttribute,
};
use chrono::{DateTime, Utc};
use postern_store::{AttachmentSummary, MailboxRole, MimeSummary, NewMessage};

use crate::engine::discovery::ListedMailbox;
use crate::engine::parse::{parse_head, parse_message};
use crate::engine::plan::{ServerStatus, normalize_flags};

/// A mailbox of a LIST response.
pub fn listed_mailbox(data: &MailboxListData<'_>) -> ListedMailbox {
    let mut role = None;
    let mut selectable = true;
    for attribute in &data.name_attributes {
        match attribute {
            NameAttribute::NoSelect => selectable = false,
            NameAttribute::Extension(name) if name.eq_ignore_ascii_case("\\NonExistent") => {
                selectable = false;
            }
            other => role = role.or_else(|| special_use(other)),
        }
    }
    if data.name.eq_ignore_ascii_case("INBOX") {
        role = Some(MailboxRole::Inbox);
    }
    ListedMailbox {
        name: data.name.to_string(),
        delimiter: data.delimiter.as_ref().map(ToString::to_string),
        role,
        selectable,
        status: None,
    }
}

fn special_use(attribute: &NameAttribute<'_>) -> Option<MailboxRole> {
    match attribute {
        NameAttribute::Sent => Some(MailboxRole::Sent),
        NameAttribute::Drafts => Some(MailboxRole::Drafts),
        NameAttribute::Trash => Some(MailboxRole::Trash),
        NameAttribute::Junk => Some(MailboxRole::Junk),
        NameAttribute::Archive => Some(MailboxRole::Archive),
        NameAttribute::All => Some(MailboxRole::All),
        _ => None,
    }
}

/// A mailbox status being put together from STATUS attributes or SELECT responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusParts {
    /// UIDVALIDITY.
    pub uidvalidity: Option<u32>,
    /// UIDNEXT.
    pub uidnext: Option<u32>,
    /// EXISTS / MESSAGES.
    pub exists: Option<u32>,
    /// HIGHESTMODSEQ.
    pub highest_modseq: Option<u64>,
    /// UNSEEN (STATUS only; SELECT's `[UNSEEN n]` is a sequence number, not a count).
    pub unseen: Option<u32>,
}

impl StatusParts {
    /// Takes in the attributes of a `* STATUS` response.
    pub fn absorb_status(&mut self, attributes: &[StatusAttribute]) {
        for attribute in attributes {
            match attribute {
                StatusAttribute::UidValidity(value) => self.uidvalidity = Some(*value),
                StatusAttribute::UidNext(value) => self.uidnext = Some(*value),
                StatusAttribute::Messages(value) => self.exists = Some(*value),
                StatusAttribute::HighestModSeq(value) => self.highest_modseq = Some(*value),
                StatusAttribute::Unseen(value) => self.unseen = Some(*value),
                _ => {}
            }
        }
    }

    /// Takes in one untagged response of a SELECT; false if it was not one SELECT answers with.
    pub fn absorb_select(&mut self, response: &Response<'_>) -> bool {
        match response {
            Response::MailboxData(MailboxDatum::Exists(exists)) => self.exists = Some(*exists),
            Response::Data {
                status: Status::Ok,
                outcome,
            } => match outcome.code {
                Some(ResponseCode::UidValidity(value)) => self.uidvalidity = Some(value),
                Some(ResponseCode::UidNext(value)) => self.uidnext = Some(value),
                Some(ResponseCode::HighestModSeq(value)) => self.highest_modseq = Some(value),
                _ => {}
            },
            Response::MailboxData(MailboxDatum::Recent(_) | MailboxDatum::Flags(_)) => {}
            _ => return false,
        }
        true
    }

    /// The status, if UIDVALIDITY and EXISTS are known. A missing UIDNEXT is taken from
    /// `uidnext_fallback` (the caller finds it by other means); `None` if that is missing too.
    pub fn complete(self, uidnext_fallback: Option<u32>) -> Option<ServerStatus> {
        Some(ServerStatus {
            uidvalidity: self.uidvalidity?,
            uidnext: self.uidnext.or(uidnext_fallback)?,
            exists: self.exists?,
            highest_modseq: self.highest_modseq,
            unseen: self.unseen,
        })
    }
}

/// What one FETCH response carried, copied out of the connection's buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchedMessage {
    /// UID.
    pub uid: u32,
    /// FLAGS, normalized.
    pub flags: Option<Vec<String>>,
    /// INTERNALDATE.
    pub internaldate: Option<DateTime<Utc>>,
    /// RFC822.SIZE.
    pub size: Option<u32>,
    /// MODSEQ.
    pub modseq: Option<u64>,
    /// `BODY[]`: the whole message.
    pub body: Option<Vec<u8>>,
    /// `BODY[HEADER]`.
    pub header: Option<Vec<u8>>,
    /// `BODY[TEXT]<0>`: the start of the text.
    pub text_start: Option<Vec<u8>>,
    /// BODYSTRUCTURE, summarized.
    pub mime: Option<MimeSummary>,
}

/// The attributes of a FETCH response; `None` without a UID (an unsolicited flag update by
/// sequence number, which the next pass sees through MODSEQ or the flag comparison anyway).
pub fn fetched_message(attributes: &[AttributeValue<'_>]) -> Option<FetchedMessage> {
    let mut fetched = FetchedMessage::default();
    let mut uid = None;
    for attribute in attributes {
        match attribute {
            AttributeValue::Uid(value) => uid = Some(*value),
            AttributeValue::Flags(flags) => fetched.flags = Some(normalize_flags(flags)),
            AttributeValue::InternalDate(date) => fetched.internaldate = parse_internaldate(date),
            AttributeValue::Rfc822Size(size) => fetched.size = Some(*size),
            AttributeValue::ModSeq(modseq) => fetched.modseq = Some(*modseq),
            AttributeValue::BodyStructure(structure) => {
                fetched.mime = Some(bodystructure_summary(structure));
            }
            AttributeValue::Rfc822(data) => fetched.body = data.as_ref().map(|d| d.to_vec()),
            AttributeValue::BodySection { section, data, .. } => {
                let data = data.as_ref().map(|d| d.to_vec());
                match section {
                    None => fetched.body = data,
                    Some(SectionPath::Full(MessageSection::Header)) => fetched.header = data,
                    Some(SectionPath::Full(MessageSection::Text)) => fetched.text_start = data,
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }
    fetched.uid = uid?;
    Some(fetched)
}

/// An IMAP date-time (`17-Jul-1996 02:44:25 -0700`; the day may be space-padded).
pub fn parse_internaldate(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|date| date.with_timezone(&Utc))
}

/// The store's message for a FETCH answer that carries the message (its body, or its header);
/// `None` for one that does not (an unsolicited flag update). A missing or unreadable
/// INTERNALDATE or size is noted as a problem and replaced (by the Date header or the current
/// time, and 0), never a reason to skip the message: the cursor moves past it either way.
pub fn new_message(fetched: FetchedMessage) -> Option<NewMessage> {
    let FetchedMessage {
        uid,
        flags,
        internaldate,
        size,
        modseq,
        body,
        header,
        text_start,
        mime,
    } = fetched;
    let mut parsed = match (&body, &header) {
        (Some(body), _) => parse_message(body),
        (None, Some(header)) => {
            let mut parsed = parse_head(header, text_start.as_deref().unwrap_or_default());
            parsed.mime = mime.unwrap_or_default();
            parsed
        }
        (None, None) => return None,
    };
    if internaldate.is_none() {
        parsed
            .problems
            .push("the server sent no readable INTERNALDATE (the Date header is used)".to_owned());
    }
    if size.is_none() {
        parsed
            .problems
            .push("the server sent no RFC822.SIZE".to_owned());
    }
    let internaldate = internaldate
        .or(parsed.envelope.date)
        .unwrap_or_else(Utc::now);
    Some(NewMessage {
        uid,
        modseq,
        flags: flags.unwrap_or_default(),
        internaldate,
        size: size.unwrap_or(0),
        snippet: parsed.snippet.clone(),
        parse_problems: parsed.problems_text(),
        envelope: parsed.envelope,
        mime: parsed.mime,
        body_text: body.as_ref().and(parsed.body_text),
        body,
    })
}

/// The UIDs a `VANISHED` response reports, as ranges.
pub fn vanished_ranges(response: &Response<'_>) -> Option<Vec<RangeInclusive<u32>>> {
    match response {
        Response::Vanished { uids, .. } => Some(uids.clone()),
        _ => None,
    }
}

/// The MIME summary of a BODYSTRUCTURE: content type, whether text and HTML bodies exist, and
/// every attachment with its section number and transferred size.
pub fn bodystructure_summary(structure: &BodyStructure<'_>) -> MimeSummary {
    let mut summary = MimeSummary {
        content_type: type_of(structure),
        ..MimeSummary::default()
    };
    match structure {
        BodyStructure::Multipart { bodies, .. } => summarize_children(bodies, "", &mut summary),
        single => summarize_part(single, "1", &mut summary),
    }
    summary
}

fn summarize_children(bodies: &[BodyStructure<'_>], prefix: &str, summary: &mut MimeSummary) {
    for (position, body) in bodies.iter().enumerate() {
        let id = if prefix.is_empty() {
            (position + 1).to_string()
        } else {
            format!("{prefix}.{}", position + 1)
        };
        match body {
            BodyStructure::Multipart { bodies, .. } => summarize_children(bodies, &id, summary),
            single => summarize_part(single, &id, summary),
        }
    }
}

fn summarize_part(part: &BodyStructure<'_>, id: &str, summary: &mut MimeSummary) {
    let (common, other) = match part {
        BodyStructure::Basic { common, other, .. }
        | BodyStructure::Text { common, other, .. }
        | BodyStructure::Message { common, other, .. } => (common, other),
        BodyStructure::Multipart { .. } => return,
    };
    let is_attachment = common
        .disposition
        .as_ref()
        .is_some_and(|d| d.ty.eq_ignore_ascii_case("attachment"));
    if let (BodyStructure::Text { .. }, false) = (part, is_attachment) {
        if common.ty.subtype.eq_ignore_ascii_case("html") {
            summary.has_html = true;
        } else {
            summary.has_text = true;
        }
        return;
    }
    let disposition_name = common
        .disposition
        .as_ref()
        .and_then(|d| param(&d.params, "filename"));
    summary.attachments.push(AttachmentSummary {
        part: id.to_owned(),
        filename: disposition_name.or_else(|| param(&common.ty.params, "name")),
        content_type: type_of(part),
        size: u64::from(other.octets),
    });
}

fn type_of(structure: &BodyStructure<'_>) -> String {
    let common = match structure {
        BodyStructure::Basic { common, .. }
        | BodyStructure::Text { common, .. }
        | BodyStructure::Message { common, .. }
        | BodyStructure::Multipart { common, .. } => common,
    };
    format!("{}/{}", common.ty.ty, common.ty.subtype).to_ascii_lowercase()
}

fn param(params: &async_imap::imap_proto::BodyParams<'_>, name: &str) -> Option<String> {
    params
        .as_ref()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.to_string())
}

#[cfg(test)]
#[path = "interpret_tests.rs"]
mod tests;
