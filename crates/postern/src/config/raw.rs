//! The configuration as written: every field optional, unknown keys refused.
//!
//! Both `postern.toml` and the `POSTERN_*` environment variables are read into this one shape, so a
//! setting has the same name and type wherever it is given. Resolution into ready values (defaults,
//! derived paths, parsed addresses) happens in the parent module.

use secrecy::SecretString;
use serde::Deserialize;
use std::path::PathBuf;

/// `postern.toml` as parsed. Top-level keys first, then one table per section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Where the database and the generated master key live. Default `./data`.
    pub data_dir: Option<PathBuf>,
    /// The API's listen address. Default `127.0.0.1:7080`.
    pub listen: Option<String>,
    /// The master key as 64 hex characters; prefer the environment or the key file.
    pub master_key: Option<SecretString>,
    /// The master key file. Default `<data_dir>/master.key`, created on first start.
    pub master_key_file: Option<PathBuf>,
    /// A `tracing` filter such as `info` or `postern=debug,info`. Default `info`.
    pub log: Option<String>,
    /// `text` (default) or `json`.
    pub log_format: Option<LogFormat>,
    /// Storage settings.
    pub store: RawStore,
    /// HTTP API settings.
    pub api: RawApi,
    /// OAuth settings.
    pub oauth: RawOAuth,
    /// Webhook settings.
    pub webhooks: RawWebhooks,
    /// IMAP sync settings.
    pub sync: RawSync,
}

/// `[sync]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSync {
    /// `on_demand` (default: bodies fetched and cached when read), `cache` (the same), or `full`
    /// (every body fetched and stored at sync).
    pub bodies: Option<BodiesSetting>,
    /// The initial sync takes mail of the last this many days (default: all).
    pub window_days: Option<u32>,
    /// The initial sync takes at most the newest this many messages per mailbox (default: all).
    pub newest_per_mailbox: Option<u32>,
    /// Seconds between safety-net resyncs of every mailbox. Default 300.
    pub resync_interval_secs: Option<u64>,
}

/// How much of each message the sync stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodiesSetting {
    /// Headers and structure at sync; bodies fetched when read.
    OnDemand,
    /// As on_demand; read bodies are kept.
    Cache,
    /// Whole messages at sync.
    Full,
}

/// `[webhooks]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebhooks {
    /// Allow webhook targets on loopback and private networks (off: the guard against SSRF).
    /// Also `POSTERN_WEBHOOKS_ALLOW_PRIVATE`.
    pub allow_private_targets: Option<bool>,
    /// How long a failing delivery is retried before it is marked dead, in seconds. Default 86400.
    pub retry_for_secs: Option<u64>,
}

/// `[store]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    /// `sqlite://PATH` (default `sqlite://<data_dir>/postern.db`).
    pub url: Option<String>,
}

/// `[api]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApi {
    /// The URL browsers and integrations reach this server at (used in OAuth redirect links).
    /// Default: `http://` + the listen address.
    pub public_url: Option<String>,
    /// Seconds a request may take before the server answers 503. Default 30.
    pub request_timeout_secs: Option<u64>,
    /// Requests per second each API token may make. Default 100.
    pub rate_limit_per_second: Option<u32>,
    /// Requests a token may make at once above that rate. Default 200.
    pub rate_limit_burst: Option<u32>,
}

/// `[oauth]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOAuth {
    /// Where the OAuth callback sends the browser when it is done (with `account_id`, `status` and
    /// `error` in the query), instead of showing Postern's own result page.
    pub return_url: Option<String>,
    /// Refresh access tokens this many seconds before they expire. Default 300.
    pub refresh_margin_secs: Option<u64>,
    /// After a failed refresh, keep an account healthy this many seconds past its token's expiry
    /// before marking it `error`. Default 900.
    pub refresh_grace_secs: Option<u64>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl RawConfig {
    /// Lays `over` on top of `self`: every value `over` sets wins.
    pub fn overlay(self, over: RawConfig) -> RawConfig {
        RawConfig {
            data_dir: over.data_dir.or(self.data_dir),
            listen: over.listen.or(self.listen),
            master_key: over.master_key.or(self.master_key),
            master_key_file: over.master_key_file.or(self.master_key_file),
            log: over.log.or(self.log),
            log_format: over.log_format.or(self.log_format),
            store: RawStore {
                url: over.store.url.or(self.store.url),
            },
            api: RawApi {
                public_url: over.api.public_url.or(self.api.public_url),
                request_timeout_secs: over
                    .api
                    .request_timeout_secs
                    .or(self.api.request_timeout_secs),
                rate_limit_per_second: over
                    .api
                    .rate_limit_per_second
                    .or(self.api.rate_limit_per_second),
                rate_limit_burst: over.api.rate_limit_burst.or(self.api.rate_limit_burst),
            },
            sync: RawSync {
                bodies: over.sync.bodies.or(self.sync.bodies),
                window_days: over.sync.window_days.or(self.sync.window_days),
                newest_per_mailbox: over
                    .sync
                    .newest_per_mailbox
                    .or(self.sync.newest_per_mailbox),
                resync_interval_secs: over
                    .sync
                    .resync_interval_secs
                    .or(self.sync.resync_interval_secs),
            },
            webhooks: RawWebhooks {
                allow_private_targets: over
                    .webhooks
                    .allow_private_targets
                    .or(self.webhooks.allow_private_targets),
                retry_for_secs: over
                    .webhooks
                    .retry_for_secs
                    .or(self.webhooks.retry_for_secs),
            },
            oauth: RawOAuth {
                return_url: over.oauth.return_url.or(self.oauth.return_url),
                refresh_margin_secs: over
                    .oauth
                    .refresh_margin_secs
                    .or(self.oauth.refresh_margin_secs),
                refresh_grace_secs: over
                    .oauth
                    .refresh_grace_secs
                    .or(self.oauth.refresh_grace_secs),
            },
        }
    }
}
