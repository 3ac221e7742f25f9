//! The JSON shape of an event on the wire, the same for webhooks and the pull stream.
//!
//! Purpose: one definition of `{id, type, account_id, created_at, data}`, so a receiver can handle
//! pushed and pulled events with the same code.
//! Non-goal: versioning the `data` of each event type; the producers own those.
//! Key decision: `id` is the event-log id, a JSON number, the same value as the
//! `Postern-Event-Id` header and the pull stream's `after` cursor; receivers deduplicate with it.
//! `created_at` is RFC 3339 with milliseconds in UTC.

use postern_store::Event;
use serde::Serialize;

/// An event as sent to receivers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventBody<'a> {
    /// The event-log id: stable across retries and redeliveries.
    pub id: i64,
    /// The event type, e.g. `message.new`.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// The account it is about; `null` for server-wide events.
    pub account_id: Option<&'a str>,
    /// When it happened, e.g. `2026-08-01T12:00:00.123Z`.
    pub created_at: String,
    /// The event's own fields.
    pub data: &'a serde_json::Value,
}

impl<'a> EventBody<'a> {
    /// The wire form of `event`.
    pub fn of(event: &'a Event) -> Self {
        EventBody {
            id: event.id.0,
            kind: &event.kind,
            account_id: event.account_id.as_deref(),
            created_at: event
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            data: &event.payload,
        }
    }

    /// The JSON bytes, as POSTed and signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain strings, numbers and an already valid `Value` cannot fail.
        serde_json::to_vec(self).unwrap_or_else(|_| unreachable!("an event body always serializes"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use chrono::TimeZone;
    use postern_store::EventId;

    use super::*;

    #[test]
    fn the_body_has_the_documented_fields() {
        let event = Event {
            id: EventId(42),
            account_id: Some("acc-1".into()),
            kind: "message.new".into(),
            payload: serde_json::json!({ "uid": 7 }),
            created_at: chrono::Utc.timestamp_millis_opt(1_785_585_600_123).unwrap(),
        };
        let json: serde_json::Value =
            serde_json::from_slice(&EventBody::of(&event).to_bytes()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": 42,
                "type": "message.new",
                "account_id": "acc-1",
                "created_at": "2026-08-01T12:00:00.123Z",
                "data": { "uid": 7 },
            })
        );
    }
}
