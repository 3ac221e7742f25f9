//! Which events a webhook receives: event-type patterns and the account binding.
//!
//! Purpose: validate the patterns a caller subscribes with, and decide for one event and one
//! webhook whether the webhook must receive it.
//! Patterns: `*` (every event), `account.*` (every type starting with `account.`, at any depth,
//! e.g. `account.connected` and `account.sync.failed`), or an exact type such as `message.new`.
//! Types and patterns are dot-separated segments of lower-case letters, digits and `_`.
//! Non-goal: any I/O; this is pure so the rules can be tested alone.
//! Key decision: a webhook bound to accounts receives only events of those accounts, never
//! server-wide events (which may concern other accounts); and a `webhook.test` event goes only to
//! the webhook its payload names, whatever the patterns, so testing one webhook never pings the
//! others.

use postern_store::{Event, Webhook};

/// The type of the event [`crate::WebhookService::send_test`] appends.
pub const TEST_EVENT: &str = "webhook.test";

/// The longest pattern accepted.
const MAX_PATTERN_LEN: usize = 128;

/// Checks one subscription pattern; the error says what is wrong, for people.
pub fn validate_pattern(pattern: &str) -> Result<(), &'static str> {
    if pattern == "*" {
        return Ok(());
    }
    if pattern.len() > MAX_PATTERN_LEN {
        return Err("is longer than 128 characters");
    }
    let exact = pattern.strip_suffix(".*").unwrap_or(pattern);
    let well_formed = exact.split('.').all(|segment| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    });
    if well_formed {
        Ok(())
    } else {
        Err("must be `*`, an event type like `message.new`, or a prefix like `account.*`")
    }
}

/// True when `pattern` (already valid) covers the event type `kind`.
pub fn pattern_matches(pattern: &str, kind: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix('*') {
        // `account.*` keeps its dot, so `accounts.x` or a bare `account` do not match.
        Some(prefix) => kind.len() > prefix.len() && kind.starts_with(prefix),
        None => pattern == kind,
    }
}

/// True when `webhook` must receive `event`.
pub fn webhook_wants(webhook: &Webhook, event: &Event) -> bool {
    if event.kind == TEST_EVENT {
        return event.payload.get("webhook_id").and_then(|id| id.as_str())
            == Some(webhook.id.as_str());
    }
    account_allowed(webhook.account_ids.as_deref(), event.account_id.as_deref())
        && webhook
            .events
            .iter()
            .any(|pattern| pattern_matches(pattern, &event.kind))
}

/// The account binding: no binding lets every event through; a binding only its accounts' events.
pub fn account_allowed(binding: Option<&[String]>, account_id: Option<&str>) -> bool {
    match (binding, account_id) {
        (None, _) => true,
        (Some(ids), Some(account_id)) => ids.iter().any(|id| id == account_id),
        (Some(_), None) => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use chrono::Utc;
    use postern_store::{EventId, WebhookId};

    use super::*;

    fn webhook(events: &[&str], account_ids: Option<&[&str]>) -> Webhook {
        Webhook {
            id: WebhookId::generate(),
            url: "https://example.com/hook".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            account_ids: account_ids.map(|ids| ids.iter().map(|id| id.to_string()).collect()),
            enabled: true,
            cursor: EventId(0),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn event(kind: &str, account_id: Option<&str>) -> Event {
        Event {
            id: EventId(1),
            account_id: account_id.map(str::to_owned),
            kind: kind.to_owned(),
            payload: serde_json::json!({}),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn patterns_match_everything_a_prefix_or_one_type() {
        assert!(pattern_matches("*", "message.new"));
        assert!(pattern_matches("account.*", "account.connected"));
        assert!(pattern_matches("account.*", "account.sync.failed"));
        assert!(!pattern_matches("account.*", "account"));
        assert!(!pattern_matches("account.*", "accounts.connected"));
        assert!(!pattern_matches("account.*", "message.new"));
        assert!(pattern_matches("message.new", "message.new"));
        assert!(!pattern_matches("message.new", "message.newer"));
        assert!(!pattern_matches("message.new", "message"));
    }

    #[test]
    fn only_well_formed_patterns_are_valid() {
        for good in ["*", "message.new", "account.*", "outbox.sent_2", "x"] {
            assert_eq!(validate_pattern(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "**",
            "account*",
            "*.new",
            "Message.New",
            "a..b",
            ".a",
            "a.",
            "a.*.b",
            "a b",
            "a.**",
        ] {
            assert!(validate_pattern(bad).is_err(), "{bad:?}");
        }
        assert!(validate_pattern(&"a".repeat(129)).is_err());
    }

    #[test]
    fn the_account_binding_filters_events_and_excludes_server_wide_ones() {
        let bound = webhook(&["*"], Some(&["acc-1", "acc-2"]));
        assert!(webhook_wants(&bound, &event("message.new", Some("acc-2"))));
        assert!(!webhook_wants(&bound, &event("message.new", Some("acc-3"))));
        assert!(!webhook_wants(&bound, &event("server.started", None)));

        let unbound = webhook(&["message.*"], None);
        assert!(webhook_wants(
            &unbound,
            &event("message.new", Some("acc-9"))
        ));
        assert!(webhook_wants(&unbound, &event("message.deleted", None)));
        assert!(!webhook_wants(
            &unbound,
            &event("account.connected", Some("acc-9"))
        ));
    }

    #[test]
    fn a_test_event_reaches_only_the_webhook_it_names() {
        let target = webhook(&["message.new"], Some(&["acc-1"]));
        let other = webhook(&["*"], None);
        let mut test = event(TEST_EVENT, None);
        test.payload = serde_json::json!({ "webhook_id": target.id.as_str() });
        assert!(webhook_wants(&target, &test));
        assert!(!webhook_wants(&other, &test));
    }
}
