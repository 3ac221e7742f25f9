//! How the supervisors run: one [`SyncConfig`] for the whole service, resolved per account into
//! [`AccountSettings`].
//!
//! Purpose: every knob of the keep-in-step loop (resync interval, IDLE restart, back-off, the
//! connection cap, the staggered start) with defaults that suit a node holding thousands of accounts.
//! Non-goal: reading a config file; the binary builds a `SyncConfig` from its own configuration.
//! Key decision: per-account values go through [`SyncConfig::settings_for`], which merges, most
//! specific first, the account's stored settings (`sync_mailboxes`), provider presets (Yahoo and
//! AOL cut IDLE after ~3 minutes) and the service defaults. A supervisor reads them when it opens
//! a session, so a changed setting takes effect at the next session (the API restarts the
//! supervisor when `sync_mailboxes` changes).

use std::time::Duration;

use postern_store::Account;

use crate::engine::{MailboxSelection, SyncOptions};
use crate::supervisor::schedule::Backoff;

/// RFC 2177 asks clients to re-issue IDLE at least every 29 minutes; a margin below that.
pub const DEFAULT_IDLE_RESTART: Duration = Duration::from_secs(25 * 60);

/// IDLE restart for providers that cut an IDLE after ~3 minutes (Yahoo, AOL).
pub const SHORT_IDLE_RESTART: Duration = Duration::from_secs(150);

/// Everything the sync service and its supervisors need to know.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncConfig {
    /// How passes run (window, bodies, mailbox selection, batch size), for every account.
    pub sync: SyncOptions,
    /// How often every synced mailbox is checked, as a safety net behind IDLE on INBOX.
    pub resync_interval: Duration,
    /// IDLE is ended and re-issued after this long (see [`SyncConfig::settings_for`] for presets).
    pub idle_restart: Duration,
    /// How often INBOX is checked on a server without IDLE.
    pub poll_interval: Duration,
    /// Waits between reconnection attempts after a transient failure.
    pub backoff: Backoff,
    /// Consecutive transient failures after which the account is marked `error` (it keeps retrying).
    pub failures_before_error: u32,
    /// After a failure that retrying soon cannot fix (a wrong password, a refused command), the
    /// account waits this long before trying again, unless restarted.
    pub error_retry: Duration,
    /// Simultaneous IMAP connections per account: the supervisor's own, plus on-demand ones
    /// ([`SyncService::open_session`](crate::supervisor::SyncService::open_session)).
    pub max_connections: usize,
    /// How long an on-demand session waits for a free connection before giving up.
    pub connection_wait: Duration,
    /// [`SyncService::start_all`](crate::supervisor::SyncService::start_all) spreads the accounts'
    /// first connections evenly over this window.
    pub start_window: Duration,
    /// How long stopping may take: IDLE ended with DONE, LOGOUT, within this bound.
    pub stop_grace: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            sync: SyncOptions::default(),
            resync_interval: Duration::from_secs(5 * 60),
            idle_restart: DEFAULT_IDLE_RESTART,
            poll_interval: Duration::from_secs(60),
            backoff: Backoff::default(),
            failures_before_error: 5,
            error_retry: Duration::from_secs(60 * 60),
            max_connections: 2,
            connection_wait: Duration::from_secs(10),
            start_window: Duration::from_secs(10),
            stop_grace: Duration::from_millis(900),
        }
    }
}

/// The settings one account's supervisor runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountSettings {
    /// How passes run.
    pub sync: SyncOptions,
    /// How often every synced mailbox is checked.
    pub resync_interval: Duration,
    /// IDLE is re-issued after this long.
    pub idle_restart: Duration,
    /// INBOX check interval on a server without IDLE.
    pub poll_interval: Duration,
}

impl SyncConfig {
    /// The settings for `account`: the service defaults, with the account's own mailbox
    /// selection when it has one, and the IDLE restart shortened for providers known to cut IDLE
    /// early (never lengthened).
    pub fn settings_for(&self, account: &Account) -> AccountSettings {
        let idle_restart = idle_restart_preset(&account.imap.host)
            .map_or(self.idle_restart, |preset| preset.min(self.idle_restart));
        let mut sync = self.sync.clone();
        if let Some(entries) = &account.settings.sync_mailboxes {
            sync.mailboxes = MailboxSelection::Only(entries.clone());
        }
        AccountSettings {
            sync,
            resync_interval: self.resync_interval,
            idle_restart,
            poll_interval: self.poll_interval,
        }
    }
}

/// The IDLE restart a provider needs, by IMAP host: Yahoo and AOL end an IDLE after ~3 minutes.
pub fn idle_restart_preset(host: &str) -> Option<Duration> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let cuts_early = ["yahoo.com", "aol.com"]
        .iter()
        .any(|domain| host == *domain || host.ends_with(&format!(".{domain}")));
    cuts_early.then_some(SHORT_IDLE_RESTART)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yahoo_and_aol_hosts_get_the_short_idle_restart() {
        assert_eq!(
            idle_restart_preset("imap.mail.yahoo.com"),
            Some(SHORT_IDLE_RESTART)
        );
        assert_eq!(
            idle_restart_preset("IMAP.AOL.COM."),
            Some(SHORT_IDLE_RESTART)
        );
        assert_eq!(idle_restart_preset("imap.gmail.com"), None);
        assert_eq!(idle_restart_preset("notyahoo.com"), None);
    }

    fn account_on(host: &str) -> Account {
        let endpoint = postern_store::Endpoint {
            host: host.to_owned(),
            port: 993,
            security: postern_store::Security::Tls,
            ca_file: None,
        };
        Account {
            id: postern_store::AccountId::generate(),
            email: "someone@example.test".to_owned(),
            name: None,
            imap: endpoint.clone(),
            smtp: endpoint,
            auth: postern_store::AccountAuth::Password { username: None },
            state: postern_store::AccountState::Connecting,
            last_error: None,
            settings: postern_store::AccountSettings::default(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn settings_take_the_shorter_of_default_and_preset() {
        let config = SyncConfig::default();
        let yahoo = config.settings_for(&account_on("imap.mail.yahoo.com"));
        assert_eq!(yahoo.idle_restart, SHORT_IDLE_RESTART);
        let other = config.settings_for(&account_on("mail.example.test"));
        assert_eq!(other.idle_restart, DEFAULT_IDLE_RESTART);
        assert_eq!(other.resync_interval, Duration::from_secs(300));

        let impatient = SyncConfig {
            idle_restart: Duration::from_secs(60),
            ..SyncConfig::default()
        };
        let yahoo = impatient.settings_for(&account_on("imap.mail.yahoo.com"));
        assert_eq!(yahoo.idle_restart, Duration::from_secs(60));
    }

    #[test]
    fn the_accounts_own_mailbox_selection_wins_over_the_service_default() {
        let config = SyncConfig {
            sync: SyncOptions {
                mailboxes: MailboxSelection::Only(vec!["Archive".into()]),
                ..SyncOptions::default()
            },
            ..SyncConfig::default()
        };
        let mut account = account_on("mail.example.test");
        let default = config.settings_for(&account);
        assert_eq!(default.sync.mailboxes, config.sync.mailboxes);

        account.settings.sync_mailboxes = Some(vec!["INBOX".into(), "Projects/*".into()]);
        let own = config.settings_for(&account);
        assert_eq!(
            own.sync.mailboxes,
            MailboxSelection::Only(vec!["INBOX".into(), "Projects/*".into()])
        );
        assert_eq!(
            own.sync.batch_size, config.sync.batch_size,
            "the rest stays"
        );
    }
}
