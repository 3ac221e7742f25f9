//! Prometheus figures of the mail connections and sync passes, through the `metrics` facade.
//!
//! Purpose: the names and the one guard that keeps the open-connection gauge right.
//! Non-goal: rendering; the API installs the recorder and serves `/metrics`.
//! Key decision: the gauge moves in a guard's constructor and `Drop`, so a connection lost on
//! any path (error, timeout, cancelled task) is counted out, not only a clean logout.

/// Open mail-server connections, labelled `protocol`: `imap` or `smtp`.
pub const CONNECTIONS_METRIC: &str = "postern_mail_connections";
/// Finished sync passes (full passes and single-mailbox ones), labelled `result`: `ok` or `error`.
pub const PASSES_METRIC: &str = "postern_sync_passes_total";
/// How long sync passes took, in seconds, labelled `kind`: `account` or `mailbox`.
pub const PASS_DURATION_METRIC: &str = "postern_sync_pass_duration_seconds";

/// Counts one open connection of `protocol` for as long as it lives.
#[derive(Debug)]
pub struct OpenConnection {
    protocol: &'static str,
}

impl OpenConnection {
    /// Counts a connection in.
    pub fn count(protocol: &'static str) -> Self {
        metrics::gauge!(CONNECTIONS_METRIC, "protocol" => protocol).increment(1.0);
        OpenConnection { protocol }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS_METRIC, "protocol" => self.protocol).decrement(1.0);
    }
}
