//! Postern's configuration: `postern.toml`, overridden by `POSTERN_*` variables, overridden by flags.
//!
//! Loading is two-phase, as in ripgrep: [`raw`] and [`env`] only read and validate what was written
//! (unknown keys refused, with file, line and key named); [`Config::resolve`] turns the merged result
//! into ready values and reports every problem at once rather than the first.
//!
//! Non-goal: reloading at run time. A changed file takes effect at the next start.

pub mod env;
pub mod raw;

pub use raw::LogFormat;
use raw::RawConfig;
use secrecy::SecretString;
use serde::Serialize;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

/// The file read when `--config` / `POSTERN_CONFIG` are not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "postern.toml";
const DEFAULT_DATA_DIR: &str = "./data";
const DEFAULT_LISTEN: &str = "127.0.0.1:7080";
const DEFAULT_LOG: &str = "info";
const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;

/// A mistake in the configuration, naming where it was made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Occurs when the configuration file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Occurs when the file is not valid TOML or has an unknown key or a wrong type; the message
    /// carries the line, the column and the key.
    #[error("in config file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// The parser's description, with line, column and the offending key.
        message: String,
    },
    /// Occurs when a `POSTERN_*` variable names no setting or holds a bad value.
    #[error("environment variable {name}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Occurs when a value parses but cannot be used (an address that is not one, say).
    #[error("setting `{key}`: {reason}")]
    Invalid {
        /// The setting, as `section.key`.
        key: &'static str,
        /// What is wrong and what would be right.
        reason: String,
    },
}

/// Several configuration mistakes, reported together.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for error in &self.0 {
            writeln!(f, "  - {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// What the command line says about configuration; flags win over everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config` / `POSTERN_CONFIG`.
    pub config_file: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
}

/// The resolved configuration every part of the binary reads.
#[derive(Debug, Serialize)]
pub struct Config {
    /// The file that was read, if any.
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
    /// Where the database and the master key file live.
    pub data_dir: PathBuf,
    /// The API's listen address.
    pub listen: SocketAddr,
    /// The master key given as text, if it was (environment or file); otherwise the key file is used.
    #[serde(serialize_with = "redacted")]
    pub master_key: Option<SecretString>,
    /// The master key file, read (or created on first start) when no key is given as text.
    pub master_key_file: PathBuf,
    /// The log filter.
    pub log: String,
    /// Text or JSON log lines.
    pub log_format: LogFormat,
    /// Storage.
    pub store: StoreConfig,
    /// HTTP API.
    pub api: ApiConfig,
    /// OAuth.
    pub oauth: OAuthConfig,
    /// Webhooks.
    pub webhooks: WebhooksConfig,
    /// IMAP sync.
    pub sync: SyncSettings,
}

/// `[sync]`, resolved.
#[derive(Debug, Serialize)]
pub struct SyncSettings {
    /// How much of each message is stored.
    pub bodies: raw::BodiesSetting,
    /// Days of mail the initial sync takes, if limited.
    pub window_days: Option<u32>,
    /// Newest messages per mailbox the initial sync takes, if limited.
    pub newest_per_mailbox: Option<u32>,
    /// Seconds between safety-net resyncs.
    pub resync_interval_secs: u64,
}

/// `[webhooks]`, resolved.
#[derive(Debug, Serialize)]
pub struct WebhooksConfig {
    /// Whether loopback and private targets are allowed.
    pub allow_private_targets: bool,
    /// Seconds a failing delivery is retried before it is dead.
    pub retry_for_secs: u64,
}

/// `[store]`, resolved.
#[derive(Debug, Serialize)]
pub struct StoreConfig {
    /// The database URL.
    pub url: String,
}

/// `[api]`, resolved.
#[derive(Debug, Serialize)]
pub struct ApiConfig {
    /// The base URL people and integrations use to reach this server, when set; otherwise it is
    /// `http://` + the address the server actually bound (see [`Config::public_url_for`]).
    pub public_url: Option<String>,
    /// The per-request time limit, in seconds.
    pub request_timeout_secs: u64,
    /// Requests per second per API token.
    pub rate_limit_per_second: NonZeroU32,
    /// Burst per API token.
    pub rate_limit_burst: NonZeroU32,
}

/// `[oauth]`, resolved.
#[derive(Debug, Serialize)]
pub struct OAuthConfig {
    /// Where the callback sends the browser when done, if not to Postern's own page.
    pub return_url: Option<String>,
    /// Seconds before expiry at which tokens are refreshed.
    pub refresh_margin_secs: u64,
    /// Seconds past a token's expiry before a failing refresh marks the account `error`.
    pub refresh_grace_secs: u64,
}

impl OAuthConfig {
    /// The callback URL Postern registers with providers by default.
    pub fn callback_url(public_url: &str) -> String {
        format!("{}/oauth/callback", public_url.trim_end_matches('/'))
    }
}

fn redacted<S: serde::Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("<redacted>"),
        None => s.serialize_none(),
    }
}

impl Config {
    /// Loads the file (if any), the process environment and the flags, and resolves them.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigErrors> {
        Self::load_from(overrides, std::env::vars())
    }

    /// As [`Config::load`], with the environment given explicitly (for tests).
    pub fn load_from(
        overrides: &Overrides,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigErrors> {
        let (file_raw, source_file) = read_file(overrides).map_err(|e| ConfigErrors(vec![e]))?;
        let env_raw = env::read(vars).map_err(ConfigErrors)?;
        let flags_raw = RawConfig {
            data_dir: overrides.data_dir.clone(),
            listen: overrides.listen.clone(),
            ..RawConfig::default()
        };
        let merged = file_raw.overlay(env_raw).overlay(flags_raw);
        Config::resolve(merged, source_file)
    }

    /// Turns the merged raw settings into ready values, collecting every problem.
    pub fn resolve(raw: RawConfig, source_file: Option<PathBuf>) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let data_dir = raw
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            errors.push(ConfigError::Invalid {
                key: "listen",
                reason: format!("{listen_text:?} is not an address; write e.g. 127.0.0.1:7080"),
            });
            SocketAddr::from(([127, 0, 0, 1], 7080))
        });
        let store_url = raw
            .store
            .url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("postern.db").display()));
        if !store_url.starts_with("sqlite://") && !store_url.starts_with("postgres://") {
            errors.push(ConfigError::Invalid {
                key: "store.url",
                reason: "must start with sqlite:// or postgres://".to_owned(),
            });
        }
        let request_timeout_secs = raw
            .api
            .request_timeout_secs
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECS);
        if request_timeout_secs == 0 {
            errors.push(ConfigError::Invalid {
                key: "api.request_timeout_secs",
                reason: "must be at least 1".to_owned(),
            });
        }
        let rate_limit_per_second = positive(
            raw.api.rate_limit_per_second,
            100,
            "api.rate_limit_per_second",
            &mut errors,
        );
        let rate_limit_burst = positive(
            raw.api.rate_limit_burst,
            200,
            "api.rate_limit_burst",
            &mut errors,
        );
        let return_url = raw.oauth.return_url;
        if let Some(url) = &return_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            errors.push(ConfigError::Invalid {
                key: "oauth.return_url",
                reason: format!("{url:?} is not an http(s) URL"),
            });
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Config {
            sync: SyncSettings {
                bodies: raw.sync.bodies.unwrap_or(raw::BodiesSetting::OnDemand),
                window_days: raw.sync.window_days,
                newest_per_mailbox: raw.sync.newest_per_mailbox,
                resync_interval_secs: raw.sync.resync_interval_secs.unwrap_or(300).max(10),
            },
            webhooks: WebhooksConfig {
                allow_private_targets: raw.webhooks.allow_private_targets.unwrap_or(false),
                retry_for_secs: raw.webhooks.retry_for_secs.unwrap_or(86_400),
            },
            oauth: OAuthConfig {
                return_url,
                refresh_margin_secs: raw.oauth.refresh_margin_secs.unwrap_or(300),
                refresh_grace_secs: raw.oauth.refresh_grace_secs.unwrap_or(900),
            },
            source_file,
            master_key_file: raw
                .master_key_file
                .unwrap_or_else(|| data_dir.join("master.key")),
            api: ApiConfig {
                public_url: raw.api.public_url,
                rate_limit_per_second,
                rate_limit_burst,
                request_timeout_secs,
            },
            data_dir,
            listen,
            master_key: raw.master_key,
            log: raw.log.unwrap_or_else(|| DEFAULT_LOG.to_owned()),
            log_format: raw.log_format.unwrap_or_default(),
            store: StoreConfig { url: store_url },
        })
    }

    /// The public base URL: the configured one, or `http://` + `bound` (the address actually
    /// listened on, which differs from `listen` when that asks for port 0).
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        self.api
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }

    /// The effective configuration as TOML, secrets replaced by `<redacted>`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|error| format!("# cannot render: {error}\n"))
    }
}

/// A setting that must be at least 1, with its default.
fn positive(
    value: Option<u32>,
    default: u32,
    key: &'static str,
    errors: &mut Vec<ConfigError>,
) -> NonZeroU32 {
    let value = value.unwrap_or(default);
    NonZeroU32::new(value).unwrap_or_else(|| {
        errors.push(ConfigError::Invalid {
            key,
            reason: "must be at least 1".to_owned(),
        });
        NonZeroU32::MIN
    })
}

/// Reads the explicit file (which must exist) or `./postern.toml` (which may not).
fn read_file(overrides: &Overrides) -> Result<(RawConfig, Option<PathBuf>), ConfigError> {
    let (path, required) = match &overrides.config_file {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_file(&path, &text).map(|raw| (raw, Some(path))),
        Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => {
            Ok((RawConfig::default(), None))
        }
        Err(source) => Err(ConfigError::Read { path, source }),
    }
}

fn parse_file(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|error| ConfigError::File {
        path: path.to_owned(),
        message: error.to_string().trim_end().to_owned(),
    })
}

#[cfg(test)]
mod tests;
