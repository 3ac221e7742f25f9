//! Schemas of the webhook routes' bodies that are types of `postern-events`
//! ([`postern_events::NewWebhookInput`], [`postern_events::WebhookUpdateInput`],
//! [`postern_events::EventBody`]), which stay free of OpenAPI.
//!
//! Non-goal: being used on the wire. Key decision: the tests below hold each description to its
//! real type, so the two cannot drift apart without a test failing.
#![allow(dead_code)] // the fields only describe

use utoipa::ToSchema;

/// `POST /v1/webhooks`.
#[derive(ToSchema)]
#[schema(example = json!({"url": "https://hooks.example.com/postern", "events": ["message.new", "account.*"]}))]
pub(super) struct WebhookRequest {
    /// Where events are POSTed (`http` or `https`).
    #[schema(pattern = "^https?://")]
    url: String,
    /// Event-type patterns: `*`, `account.*`, `message.new`... (at most 64).
    #[schema(min_items = 1, max_items = 64)]
    events: Vec<String>,
    /// Only events of these accounts; omit for every account (and server-wide events).
    account_ids: Option<Vec<String>>,
    /// The signing secret; generated when omitted. Returned once, at creation.
    secret: Option<String>,
    /// Whether deliveries run; default `true`.
    enabled: Option<bool>,
}

/// `PATCH /v1/webhooks/{id}`: omitted fields stay as they are.
#[derive(ToSchema)]
#[schema(example = json!({"enabled": false}))]
pub(super) struct WebhookChange {
    /// A new target URL.
    url: Option<String>,
    /// New event-type patterns.
    events: Option<Vec<String>>,
    /// A new account binding; `null` removes the binding.
    account_ids: Option<Vec<String>>,
    /// A new signing secret (rotation); receivers must switch to it.
    secret: Option<String>,
    /// Enable or disable deliveries. A disabled webhook is paused: its events are delivered when
    /// it is enabled again.
    enabled: Option<bool>,
}

/// One event, as the stream lists it and webhooks receive it.
#[derive(ToSchema)]
#[schema(as = Event)]
pub(super) struct EventDoc {
    /// The event-log id: stable across retries and redeliveries.
    id: i64,
    /// The event type, e.g. `message.new`.
    #[schema(rename = "type")]
    kind: String,
    /// The account it is about; `null` for server-wide events.
    account_id: Option<String>,
    /// When it happened, e.g. `2026-08-01T12:00:00.123Z`.
    created_at: chrono::DateTime<chrono::Utc>,
    /// The event's own fields.
    #[schema(value_type = Object)]
    data: (),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use utoipa::PartialSchema;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    fn example<T: PartialSchema>() -> serde_json::Value {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let example = schema["example"].clone();
        assert!(example.is_object(), "{schema}");
        example
    }

    #[test]
    fn the_documented_examples_are_valid_requests() {
        serde_json::from_value::<postern_events::NewWebhookInput>(example::<WebhookRequest>())
            .unwrap();
        serde_json::from_value::<postern_events::WebhookUpdateInput>(example::<WebhookChange>())
            .unwrap();
    }

    #[test]
    fn a_real_event_has_exactly_the_described_fields() {
        let event = postern_store::Event {
            id: postern_store::EventId(7),
            kind: "message.new".to_owned(),
            account_id: Some("a1".to_owned()),
            payload: serde_json::json!({"uid": 3}),
            created_at: chrono::Utc::now(),
        };
        let json = serde_json::to_value(postern_events::EventBody::of(&event)).unwrap();
        let fields: BTreeSet<String> = json.as_object().unwrap().keys().cloned().collect();
        let RefOr::T(Schema::Object(object)) = EventDoc::schema() else {
            panic!("not an object schema");
        };
        let described: BTreeSet<String> = object.properties.into_keys().collect();
        assert_eq!(fields, described);
    }
}
