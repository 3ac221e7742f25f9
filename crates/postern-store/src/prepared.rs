//! A sync batch with its new messages encoded for storage before the write transaction starts.
//!
//! Purpose: [`SyncBatch::prepare`] turns every new message into the values its rows will hold
//! (JSON text for addresses, flags and the MIME summary, milliseconds for times, the search
//! row's text, the `message.new` event's fields), so the transaction that stores the batch only
//! binds ready values and the writer never waits while a batch is serialized.
//! Non-goal: anything a transaction must decide: ids, whether a UID is already stored, which
//! mailbox name the event carries (read in the transaction, as before).
//! Key decision: the one value known only after the insert, the message's id, is left out of
//! the event; [`PreparedMessage::event_fields`] holds the other members of the payload object,
//! and the store writes `{"message_id":ID,` + those members + `}`.

use serde::Serialize;

use crate::messages::{EmailAddress, NewMessage, SyncBatch};

/// A [`SyncBatch`] whose new messages are encoded; [`crate::Messages::apply_prepared`] stores it.
#[derive(Debug)]
pub struct PreparedBatch {
    /// The batch, its `new_messages` moved into `messages`.
    pub(crate) batch: SyncBatch,
    pub(crate) messages: Vec<PreparedMessage>,
}

/// One new message as its rows will hold it.
#[derive(Debug)]
pub(crate) struct PreparedMessage {
    pub uid: u32,
    pub row: MessageColumns,
    pub body: Option<Vec<u8>>,
    pub search: SearchText,
    /// The `message.new` payload's members other than the account, mailbox and message ids,
    /// as JSON object members without the braces.
    pub event_fields: String,
}

/// The `messages` columns of a new message (those the batch or the mailbox do not give).
#[derive(Debug)]
pub(crate) struct MessageColumns {
    pub modseq: Option<i64>,
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub refs: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub subject: Option<String>,
    pub sent_at: Option<i64>,
    pub internaldate: i64,
    pub size: i64,
    pub flags: String,
    pub snippet: Option<String>,
    pub mime: String,
    pub parse_problems: Option<String>,
}

/// What the full-text index gets besides the subject.
#[derive(Debug, Default)]
pub(crate) struct SearchText {
    pub subject: String,
    /// From and To, each name and address, space-separated ([`people_text`]).
    pub people: String,
    /// Empty when `body` has text: the snippet is the start of that text, so indexing it again
    /// would only count its words twice.
    pub snippet: String,
    pub body: String,
}

/// The per-message members of a `message.new` payload.
#[derive(Serialize)]
struct NewMessageEventFields<'m> {
    uid: u32,
    subject: Option<&'m str>,
    from: Option<&'m str>,
    internaldate: String,
    initial_sync: bool,
}

impl SyncBatch {
    /// Encodes the new messages; pure CPU work, meant to run off the writer's path (the sync
    /// engine does it while the batch before is being committed).
    pub fn prepare(mut self) -> PreparedBatch {
        let initial = self.initial;
        let messages = std::mem::take(&mut self.new_messages)
            .into_iter()
            .map(|message| PreparedMessage::new(message, initial))
            .collect();
        PreparedBatch {
            batch: self,
            messages,
        }
    }
}

impl PreparedMessage {
    fn new(message: NewMessage, initial_sync: bool) -> PreparedMessage {
        let body_text = match (message.body_text, &message.body) {
            (Some(text), _) => text,
            (None, Some(raw)) => crate::search::raw_body_text(raw),
            (None, None) => String::new(),
        };
        let envelope = message.envelope;
        let event_fields = object_members(&NewMessageEventFields {
            uid: message.uid,
            subject: envelope.subject.as_deref(),
            from: envelope
                .from
                .first()
                .and_then(|from| from.address.as_deref()),
            internaldate: message.internaldate.to_rfc3339(),
            initial_sync,
        });
        let search = SearchText {
            subject: envelope.subject.clone().unwrap_or_default(),
            people: people_text(envelope.from.iter().chain(&envelope.to)),
            snippet: match body_text.is_empty() {
                true => message.snippet.clone().unwrap_or_default(),
                false => String::new(),
            },
            body: body_text,
        };
        let row = MessageColumns {
            modseq: modseq_column(message.modseq),
            message_id: envelope.message_id,
            in_reply_to: envelope.in_reply_to,
            refs: json_text(&envelope.references),
            from: json_text(&envelope.from),
            to: json_text(&envelope.to),
            cc: json_text(&envelope.cc),
            subject: envelope.subject,
            sent_at: envelope.date.map(|date| date.timestamp_millis()),
            internaldate: message.internaldate.timestamp_millis(),
            size: i64::from(message.size),
            flags: json_text(&normalized_flags(message.flags)),
            snippet: message.snippet,
            mime: json_text(&message.mime),
            parse_problems: message.parse_problems,
        };
        PreparedMessage {
            uid: message.uid,
            row,
            body: message.body,
            search,
            event_fields,
        }
    }
}

/// A MODSEQ as stored (SQLite integers are signed). RFC 7162 caps mod-sequences at 2^63 - 1,
/// so this conversion never saturates in practice.
pub(crate) fn modseq_column(modseq: Option<u64>) -> Option<i64> {
    modseq.map(|modseq| i64::try_from(modseq).unwrap_or(i64::MAX))
}

/// Flags as stored: sorted, without duplicates, so equal sets compare equal as text.
pub(crate) fn normalized_flags(mut flags: Vec<String>) -> Vec<String> {
    flags.sort();
    flags.dedup();
    flags
}

/// Names and addresses as one text: `name address` for each, space-separated, an absent part
/// empty. The same text the SQL of migration 0008's back-fill builds from the stored JSON
/// (tested alike in the SQLite search module).
pub(crate) fn people_text<'a>(addresses: impl Iterator<Item = &'a EmailAddress>) -> String {
    let mut text = String::new();
    for (index, address) in addresses.enumerate() {
        if index > 0 {
            text.push(' ');
        }
        text.push_str(address.name.as_deref().unwrap_or_default());
        text.push(' ');
        text.push_str(address.address.as_deref().unwrap_or_default());
    }
    text
}

/// JSON text of a value that always serializes (plain data: strings, numbers, vectors).
fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// The members of a JSON object, without its braces: `"a":1,"b":2`.
pub(crate) fn object_members(value: &impl Serialize) -> String {
    let object = json_text(value);
    object
        .strip_prefix('{')
        .and_then(|inner| inner.strip_suffix('}'))
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_members_drop_only_the_outer_braces() {
        #[derive(Serialize)]
        struct Fields<'a> {
            subject: &'a str,
            uid: u32,
        }
        let members = object_members(&Fields {
            subject: "{braces} \"quoted\"",
            uid: 7,
        });
        assert_eq!(members, r#""subject":"{braces} \"quoted\"","uid":7"#);
        let rebuilt: serde_json::Value =
            serde_json::from_str(&format!("{{\"message_id\":1,{members}}}")).unwrap();
        assert_eq!(rebuilt["subject"], "{braces} \"quoted\"");
        assert_eq!(rebuilt["message_id"], 1);
    }

    #[test]
    fn flags_are_sorted_once_each() {
        let flags = vec![
            "\\Seen".to_owned(),
            "$Label".to_owned(),
            "\\Seen".to_owned(),
        ];
        assert_eq!(normalized_flags(flags), vec!["$Label", "\\Seen"]);
    }
}
