//! Per-account settings: the few knobs an operator may set for one account rather than the server.
//!
//! Purpose: [`AccountSettings`], stored with the account as one JSON object, where every field is
//! an optional override and `{}` means "the defaults": which mailboxes sync, whether sent mail is
//! copied to Sent, and the account's sending pace and daily limit.
//! Non-goal: resolving the defaults. The sync service and the outbox merge these overrides with
//! their provider presets and their own configuration (settings > preset > server default); the
//! store only remembers what the operator chose.
//! Key decision: reading is lenient and writing is exact. A key this build does not know (written
//! by a newer Postern) is ignored on read rather than making the account unreadable, while the API
//! refuses unknown keys from callers. Limits are `NonZeroU32`, so a rate of 0 cannot be stored.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::ids::text_enum;

text_enum! {
    /// Whether a sent message is also appended to the account's Sent mailbox.
    SentCopyMode {
        /// Copy unless the provider files a copy itself (Gmail).
        Auto => "auto",
        /// Always copy.
        Always => "always",
        /// Never copy.
        Never => "never",
    }
}

/// One account's overrides; `None` everywhere (the [`Default`], stored as `{}`) means "defaults".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettings {
    /// The mailboxes that sync: names as the server spells them (`INBOX` in any case) and IMAP
    /// `LIST` patterns (`*` matches anything, `%` anything within one hierarchy level).
    /// `None`: every mailbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_mailboxes: Option<Vec<String>>,
    /// Whether sent messages are copied to Sent. `None`: the server's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_copy: Option<SentCopyMode>,
    /// At most this many messages a minute. `None`: the provider's preset, else the server's pace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_rate_per_minute: Option<NonZeroU32>,
    /// At most this many messages in any 24 hours. `None`: the provider's preset, else no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_daily_limit: Option<NonZeroU32>,
}

impl AccountSettings {
    /// True when nothing is overridden.
    pub fn is_default(&self) -> bool {
        *self == AccountSettings::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_stored_as_an_empty_object_and_read_back() {
        let json = serde_json::to_string(&AccountSettings::default()).unwrap();
        assert_eq!(json, "{}");
        let read: AccountSettings = serde_json::from_str("{}").unwrap();
        assert!(read.is_default());
    }

    #[test]
    fn every_field_round_trips_by_its_snake_case_name() {
        let settings = AccountSettings {
            sync_mailboxes: Some(vec!["INBOX".into(), "Projects/*".into()]),
            sent_copy: Some(SentCopyMode::Never),
            send_rate_per_minute: NonZeroU32::new(30),
            send_daily_limit: NonZeroU32::new(500),
        };
        let json = serde_json::to_value(&settings).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "sync_mailboxes": ["INBOX", "Projects/*"],
                "sent_copy": "never",
                "send_rate_per_minute": 30,
                "send_daily_limit": 500,
            })
        );
        assert_eq!(
            serde_json::from_value::<AccountSettings>(json).unwrap(),
            settings
        );
        assert!(!settings.is_default());
    }

    #[test]
    fn a_key_from_a_newer_postern_is_ignored_and_a_zero_limit_is_refused() {
        let read: AccountSettings =
            serde_json::from_str(r#"{"sent_copy": "always", "from_the_future": true}"#).unwrap();
        assert_eq!(read.sent_copy, Some(SentCopyMode::Always));
        assert!(serde_json::from_str::<AccountSettings>(r#"{"send_daily_limit": 0}"#).is_err());
    }
}
