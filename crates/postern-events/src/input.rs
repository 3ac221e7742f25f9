//! What callers send to create and change webhooks, and the checks that run before anything is
//! stored.
//!
//! Purpose: turn a request into a valid `NewWebhook`/`WebhookChange`, collecting every problem as a
//! [`FieldError`] naming its field, so a caller sees all of its mistakes at once.
//! Non-goal: the SSRF rules themselves (`ssrf.rs`) and the pattern grammar (`filter.rs`).
//! Key decision: a caller-chosen secret must be at least 16 characters of visible ASCII; a weak or
//! copy-pasted-with-a-newline secret is refused rather than silently used.

use std::str::FromStr;

use postern_store::{AccountId, Store};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::error::{FieldError, WebhookError};
use crate::filter::validate_pattern;
use crate::ssrf::{check_target, parse_target};

/// The most patterns one webhook may have.
const MAX_PATTERNS: usize = 64;
/// The most accounts one webhook may be bound to.
const MAX_ACCOUNTS: usize = 1_000;
/// A caller-chosen secret's length bounds, in bytes.
const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// `POST /v1/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookInput {
    /// Where events are POSTed (`http` or `https`).
    pub url: String,
    /// Event-type patterns: `*`, `account.*`, `message.new`…
    pub events: Vec<String>,
    /// Only events of these accounts; omitted for every account (and server-wide events).
    #[serde(default)]
    pub account_ids: Option<Vec<String>>,
    /// The signing secret; generated when omitted. Returned once, at creation.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// Whether deliveries run; default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `PATCH /v1/webhooks/{id}`: omitted fields stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdateInput {
    /// A new target URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New event-type patterns.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// A new account binding; `null` removes the binding.
    #[serde(default, deserialize_with = "present")]
    pub account_ids: Option<Option<Vec<String>>>,
    /// A new signing secret (rotation); receivers must switch to it.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// Enable or disable deliveries. A disabled webhook is paused: its events are delivered when
    /// it is enabled again.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Tells "given as null" (`Some(None)`) from "omitted" (`None`, via `#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Checks the URL's form and where it leads; returns it normalized (as it will be requested).
pub(crate) async fn check_url(
    url: &str,
    allow_private: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let parsed = match parse_target(url) {
        Ok(parsed) => parsed,
        Err(err) => {
            errors.push(FieldError::new("url", err.to_string()));
            return None;
        }
    };
    match check_target(&parsed, allow_private).await {
        Ok(()) => Some(parsed.into()),
        Err(err) => {
            errors.push(FieldError::new("url", err.to_string()));
            None
        }
    }
}

/// Checks the patterns; returns them without duplicates, in the order given.
pub(crate) fn check_patterns(patterns: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if patterns.is_empty() {
        errors.push(FieldError::new(
            "events",
            "give at least one pattern, e.g. `*` for every event",
        ));
    }
    if patterns.len() > MAX_PATTERNS {
        errors.push(FieldError::new("events", "at most 64 patterns"));
    }
    let mut unique: Vec<String> = Vec::new();
    for (index, pattern) in patterns.iter().enumerate() {
        if let Err(reason) = validate_pattern(pattern) {
            errors.push(FieldError::new(format!("events[{index}]"), reason));
        } else if !unique.contains(pattern) {
            unique.push(pattern.clone());
        }
    }
    unique
}

/// Checks that every bound account exists; returns the ids in canonical form.
pub(crate) async fn check_accounts(
    store: &Store,
    ids: &[String],
    errors: &mut Vec<FieldError>,
) -> Result<Vec<String>, WebhookError> {
    if ids.is_empty() {
        errors.push(FieldError::new(
            "account_ids",
            "give at least one account, or omit the field for every account",
        ));
    }
    if ids.len() > MAX_ACCOUNTS {
        errors.push(FieldError::new("account_ids", "at most 1000 accounts"));
        return Ok(Vec::new());
    }
    let mut canonical = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let known = match AccountId::from_str(id) {
            Ok(id) => store.accounts().get(&id).await?.map(|account| account.id),
            Err(_) => None,
        };
        match known {
            Some(id) if !canonical.contains(&id.to_string()) => canonical.push(id.to_string()),
            Some(_) => {}
            None => errors.push(FieldError::new(
                format!("account_ids[{index}]"),
                "no such account",
            )),
        }
    }
    Ok(canonical)
}

/// Checks a caller-chosen secret.
pub(crate) fn check_secret(secret: &SecretString, errors: &mut Vec<FieldError>) {
    let text = secret.expose_secret();
    if !SECRET_LEN.contains(&text.len()) {
        errors.push(FieldError::new(
            "secret",
            "must be 16 to 256 characters; omit it to have one generated",
        ));
    } else if !text.bytes().all(|b| b.is_ascii_graphic()) {
        errors.push(FieldError::new(
            "secret",
            "must be visible ASCII characters only (no spaces or line breaks)",
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use super::*;

    #[test]
    fn an_update_tells_a_null_binding_from_an_omitted_one() {
        let omitted: WebhookUpdateInput = serde_json::from_str(r#"{"enabled": false}"#).unwrap();
        assert_eq!(omitted.account_ids, None);
        let cleared: WebhookUpdateInput = serde_json::from_str(r#"{"account_ids": null}"#).unwrap();
        assert_eq!(cleared.account_ids, Some(None));
        let set: WebhookUpdateInput = serde_json::from_str(r#"{"account_ids": ["a"]}"#).unwrap();
        assert_eq!(set.account_ids, Some(Some(vec!["a".to_owned()])));
        assert!(serde_json::from_str::<WebhookUpdateInput>(r#"{"colour": 1}"#).is_err());
    }

    #[test]
    fn patterns_are_checked_each_by_index_and_deduplicated() {
        let mut errors = Vec::new();
        let patterns = ["message.new", "Bad", "message.new", "account.*"].map(String::from);
        let unique = check_patterns(&patterns, &mut errors);
        assert_eq!(unique, ["message.new", "account.*"]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "events[1]");

        let mut errors = Vec::new();
        check_patterns(&[], &mut errors);
        assert_eq!(errors[0].field, "events");
    }

    #[test]
    fn secrets_must_be_long_enough_and_visible() {
        for (secret, ok) in [
            ("short", false),
            ("a-long-enough-secret", true),
            ("with a space inside it", false),
            ("trailing-newline-secret\n", false),
        ] {
            let mut errors = Vec::new();
            check_secret(&SecretString::from(secret), &mut errors);
            assert_eq!(errors.is_empty(), ok, "{secret:?}");
        }
    }
}
