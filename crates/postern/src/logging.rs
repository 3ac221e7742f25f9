//! Log output: `tracing` to standard error, as text or JSON, filtered by `log` / `POSTERN_LOG`.
//!
//! Standard output is kept for what a person must read once (the banner, a new token); logs go to
//! standard error, so a token printed at first start never lands in a log collector that only
//! reads the log stream.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. A bad filter falls back to `info` and says so.
pub fn init(filter: &str, format: LogFormat) {
    let (env_filter, filter_error) = match EnvFilter::try_new(filter) {
        Ok(parsed) => (parsed, None),
        Err(error) => (EnvFilter::new("info"), Some(error)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if installed.is_ok()
        && let Some(error) = filter_error
    {
        tracing::warn!(%filter, %error, "invalid log filter; using `info`");
    }
}
