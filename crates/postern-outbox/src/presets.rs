//! What Postern knows about the big providers' sending side, by SMTP host, as one table of data.
//!
//! Purpose: [`PROVIDER_PRESETS`] says, per provider, whether it files sent mail in Sent by itself
//! and how fast and how much one account may send; [`provider_preset`] finds the row of an SMTP
//! host. The outbox applies a preset to every account on that host unless the account's own
//! settings say otherwise (see [`crate::policy`]).
//! Non-goal: being exact. Providers change their limits without notice, count differently (Microsoft
//! counts recipients, not messages) and vary by plan; the presets aim a little below the documented
//! figure, and a provider that refuses anyway still gets the refusal classified as usual.
//! Key decisions:
//! - Matched by SMTP host, exactly (any case, a final dot ignored), not by domain suffix: a
//!   self-hosted `smtp.example.com` that relays through Google is not Gmail's account.
//! - Where a provider has several plans, the preset takes the lowest documented limit; an account
//!   on a bigger plan raises its own limit in its settings.
//!
//! The figures and their sources:
//!
//! | provider | SMTP hosts | per minute | per 24 h | source |
//! |---|---|---|---|---|
//! | Gmail | `smtp.gmail.com`, `smtp.googlemail.com` | — | 500 | Google Workspace: 2,000 messages a day per user, 500 on trial accounts (support.google.com/a/answer/166852); consumer Gmail: 500. The preset takes 500: a Workspace account sets `send_daily_limit: 2000`. |
//! | Microsoft 365 / Outlook.com | `smtp.office365.com`, `smtp-mail.outlook.com` | 30 | 10,000 | Exchange Online limits: 30 messages a minute (SMTP client submission), 10,000 *recipients* a day; counted here as messages, an approximation that is generous for messages with many recipients. |
//! | Yahoo | `smtp.mail.yahoo.com` | — | 500 | No published figure; 500 is an estimate. |
//!
//! Every daily limit is a rolling 24 hours, as Google and Microsoft count it.

/// What Postern knows of one provider's sending side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderPreset {
    /// A short name for people and logs, e.g. `gmail`.
    pub provider: &'static str,
    /// The SMTP hosts of the provider.
    pub smtp_hosts: &'static [&'static str],
    /// Whether the provider files every message sent through it in the account's Sent mailbox
    /// itself (so a copy of ours would show twice).
    pub saves_sent: bool,
    /// Messages per minute one account may send, if the provider limits it.
    pub per_minute: Option<u32>,
    /// Messages one account may send in any 24 hours, if the provider limits it.
    pub daily: Option<u32>,
}

/// Every known provider; see the module's table for the sources.
pub const PROVIDER_PRESETS: [ProviderPreset; 3] = [
    ProviderPreset {
        provider: "gmail",
        smtp_hosts: &["smtp.gmail.com", "smtp.googlemail.com"],
        saves_sent: true,
        per_minute: None,
        // Consumer Gmail's limit; Google Workspace allows 2,000 (trial accounts 500).
        daily: Some(500),
    },
    ProviderPreset {
        provider: "microsoft",
        smtp_hosts: &["smtp.office365.com", "smtp-mail.outlook.com"],
        saves_sent: false,
        per_minute: Some(30),
        // 10,000 recipients a day, counted as messages (an approximation).
        daily: Some(10_000),
    },
    ProviderPreset {
        provider: "yahoo",
        smtp_hosts: &["smtp.mail.yahoo.com"],
        saves_sent: false,
        per_minute: None,
        // Not published: an estimate.
        daily: Some(500),
    },
];

/// The preset of the provider behind `smtp_host`, whatever its case, with or without a final dot.
pub fn provider_preset(smtp_host: &str) -> Option<&'static ProviderPreset> {
    let host = smtp_host.trim_end_matches('.');
    PROVIDER_PRESETS.iter().find(|preset| {
        preset
            .smtp_hosts
            .iter()
            .any(|known| host.eq_ignore_ascii_case(known))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_provider_is_found_by_each_of_its_hosts_in_any_spelling() {
        let found = |host: &str| provider_preset(host).map(|preset| preset.provider);
        assert_eq!(found("smtp.gmail.com"), Some("gmail"));
        assert_eq!(found("SMTP.GoogleMail.com."), Some("gmail"));
        assert_eq!(found("smtp.office365.com"), Some("microsoft"));
        assert_eq!(found("smtp-mail.outlook.com"), Some("microsoft"));
        assert_eq!(found("smtp.mail.yahoo.com"), Some("yahoo"));
        for stranger in [
            "smtp.example.com",
            "gmail.com",
            "imap.gmail.com",
            "smtp.gmail.com.evil.test",
            "evil-smtp.gmail.com",
            "",
        ] {
            assert_eq!(found(stranger), None, "{stranger}");
        }
    }

    #[test]
    fn the_figures_are_the_documented_ones() {
        let gmail = provider_preset("smtp.gmail.com").unwrap();
        assert_eq!(
            (gmail.daily, gmail.per_minute, gmail.saves_sent),
            (Some(500), None, true)
        );
        let microsoft = provider_preset("smtp.office365.com").unwrap();
        assert_eq!(
            (microsoft.daily, microsoft.per_minute, microsoft.saves_sent),
            (Some(10_000), Some(30), false)
        );
        let yahoo = provider_preset("smtp.mail.yahoo.com").unwrap();
        assert_eq!((yahoo.daily, yahoo.per_minute), (Some(500), None));
    }

    #[test]
    fn no_host_belongs_to_two_providers() {
        let hosts: Vec<&str> = PROVIDER_PRESETS
            .iter()
            .flat_map(|preset| preset.smtp_hosts.iter().copied())
            .collect();
        let mut unique = hosts.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), hosts.len());
    }
}
