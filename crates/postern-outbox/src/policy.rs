//! One account's sending policy: its pace, its daily limit and its Sent copy, resolved.
//!
//! Purpose: [`SendPolicy::for_account`] merges, most specific first, the account's own settings
//! (`postern_store::AccountSettings`), its provider's preset ([`crate::presets`]) and the outbox's
//! configuration ([`OutboxConfig`]). The worker resolves it for every message, so a changed setting
//! applies from the next message on.
//! Non-goal: enforcing anything; the worker does, with the rate limiter and the daily limiter.
//! Key decision: each knob is merged on its own. An account that only sets `sent_copy` keeps its
//! provider's limits; one that sets only a daily limit keeps its provider's pace.

use std::num::NonZeroU32;

use postern_store::{Account, SentCopyMode};

use crate::OutboxConfig;
use crate::presets::provider_preset;
use crate::rate::RateLimit;
use crate::sent_copy::SentCopy;

/// How one account sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendPolicy {
    /// The pace; `None` for none.
    pub rate: Option<RateLimit>,
    /// Messages in any 24 hours; `None` for no limit.
    pub daily_limit: Option<NonZeroU32>,
    /// Whether sent messages are copied to Sent.
    pub sent_copy: SentCopy,
    /// The provider whose preset applies to the account, if any (e.g. `gmail`).
    pub provider: Option<&'static str>,
}

impl SendPolicy {
    /// The policy of `account`: its settings, else its provider's preset, else `config`.
    pub fn for_account(account: &Account, config: &OutboxConfig) -> SendPolicy {
        let settings = &account.settings;
        let preset = provider_preset(&account.smtp.host);
        let preset_rate = preset
            .and_then(|preset| preset.per_minute)
            .and_then(NonZeroU32::new);
        let rate = settings
            .send_rate_per_minute
            .or(preset_rate)
            .map(paced)
            .or(config.rate_limit);
        let preset_daily = preset
            .and_then(|preset| preset.daily)
            .and_then(NonZeroU32::new);
        SendPolicy {
            rate,
            daily_limit: settings.send_daily_limit.or(preset_daily),
            sent_copy: settings.sent_copy.map_or(config.sent_copy, SentCopy::from),
            provider: preset.map(|preset| preset.provider),
        }
    }
}

/// `per_minute` messages a minute, evenly paced (a burst of one): no minute ever holds more than
/// `per_minute` sends plus the one at its edge, which a provider's own per-minute limit allows.
fn paced(per_minute: NonZeroU32) -> RateLimit {
    RateLimit::per_minute(per_minute.get(), 1)
}

impl From<SentCopyMode> for SentCopy {
    fn from(mode: SentCopyMode) -> Self {
        match mode {
            SentCopyMode::Auto => SentCopy::Auto,
            SentCopyMode::Always => SentCopy::Always,
            SentCopyMode::Never => SentCopy::Never,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use postern_store::{
        AccountAuth, AccountId, AccountSettings, AccountState, Endpoint, Security,
    };

    use super::*;

    fn account_on(smtp_host: &str, settings: AccountSettings) -> Account {
        let endpoint = Endpoint {
            host: smtp_host.to_owned(),
            port: 587,
            security: Security::StartTls,
            ca_file: None,
        };
        Account {
            id: AccountId::generate(),
            email: "ada@example.test".to_owned(),
            name: None,
            imap: endpoint.clone(),
            smtp: endpoint,
            auth: AccountAuth::Password { username: None },
            state: AccountState::Connected,
            last_error: None,
            settings,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn limit(n: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(n)
    }

    #[test]
    fn a_plain_account_on_an_unknown_host_gets_the_outbox_defaults() {
        let config = OutboxConfig {
            rate_limit: Some(RateLimit::per_minute(10, 5)),
            sent_copy: SentCopy::Never,
            ..OutboxConfig::default()
        };
        let policy = SendPolicy::for_account(
            &account_on("mail.example.test", AccountSettings::default()),
            &config,
        );
        assert_eq!(
            policy,
            SendPolicy {
                rate: Some(RateLimit::per_minute(10, 5)),
                daily_limit: None,
                sent_copy: SentCopy::Never,
                provider: None,
            }
        );
    }

    #[test]
    fn a_provider_preset_beats_the_outbox_defaults() {
        let config = OutboxConfig {
            rate_limit: Some(RateLimit::per_minute(100, 10)),
            ..OutboxConfig::default()
        };
        let microsoft = SendPolicy::for_account(
            &account_on("smtp.office365.com", AccountSettings::default()),
            &config,
        );
        assert_eq!(microsoft.provider, Some("microsoft"));
        assert_eq!(microsoft.daily_limit, limit(10_000));
        assert_eq!(
            microsoft.rate,
            Some(RateLimit {
                burst: 1,
                interval: Duration::from_secs(2)
            })
        );
        let gmail = SendPolicy::for_account(
            &account_on("smtp.gmail.com", AccountSettings::default()),
            &config,
        );
        assert_eq!(gmail.daily_limit, limit(500));
        assert_eq!(
            gmail.rate,
            Some(RateLimit::per_minute(100, 10)),
            "no preset pace: the outbox's"
        );
        assert!(!gmail.sent_copy.wants_copy("smtp.gmail.com"));
    }

    #[test]
    fn the_accounts_settings_beat_the_preset_knob_by_knob() {
        let config = OutboxConfig::default();
        let only_daily = AccountSettings {
            send_daily_limit: limit(2_000),
            ..AccountSettings::default()
        };
        let policy =
            SendPolicy::for_account(&account_on("smtp.office365.com", only_daily), &config);
        assert_eq!(policy.daily_limit, limit(2_000));
        assert_eq!(
            policy.rate,
            Some(RateLimit::per_minute(30, 1)),
            "the preset pace stays"
        );

        let all = AccountSettings {
            sync_mailboxes: None,
            sent_copy: Some(SentCopyMode::Always),
            send_rate_per_minute: limit(6),
            send_daily_limit: limit(3),
        };
        let policy = SendPolicy::for_account(&account_on("smtp.gmail.com", all), &config);
        assert_eq!(
            policy.rate,
            Some(RateLimit {
                burst: 1,
                interval: Duration::from_secs(10)
            })
        );
        assert_eq!(policy.daily_limit, limit(3));
        assert_eq!(policy.sent_copy, SentCopy::Always);
        assert!(policy.sent_copy.wants_copy("smtp.gmail.com"));
        assert_eq!(policy.provider, Some("gmail"));
    }

    #[test]
    fn every_stored_sent_copy_mode_maps_to_its_namesake() {
        assert_eq!(SentCopy::from(SentCopyMode::Auto), SentCopy::Auto);
        assert_eq!(SentCopy::from(SentCopyMode::Always), SentCopy::Always);
        assert_eq!(SentCopy::from(SentCopyMode::Never), SentCopy::Never);
    }
}
