//! What a test asks of its Dovecot ([`DovecotConfig`]) and how that becomes Dovecot's config files.
//!
//! Non-goal: a general Dovecot config generator; the template ships in this crate
//! (`dovecot.conf.tmpl`) and only paths, ports, the user and the relay vary. Key decision: plain
//! `@NAME@` placeholders filled by string replacement, checked by a test to leave none behind, so the
//! template stays readable as a Dovecot config and needs no template engine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MAIN_TEMPLATE: &str = include_str!("dovecot.conf.tmpl");

/// Environment variable that overrides where the Dovecot binary is looked up.
pub const DOVECOT_BIN_ENV: &str = "POSTERN_DOVECOT_BIN";
const DEFAULT_DOVECOT_BIN: &str = "/usr/sbin/dovecot";

/// What a test needs from its Dovecot.
#[derive(Debug, Clone)]
pub struct DovecotConfig {
    /// RFC 7662 introspection endpoint Dovecot's `oauth2` passdb asks about every XOAUTH2 /
    /// OAUTHBEARER token (the test OAuth provider's `introspect_url()`).
    pub introspection_url: String,
    /// SMTP server the submission service relays to (an [`SmtpSink`](crate::smtp_sink::SmtpSink)).
    /// `None` leaves the submission service off.
    pub relay: Option<SocketAddr>,
    /// The Dovecot binary; defaults to `$POSTERN_DOVECOT_BIN` or `/usr/sbin/dovecot`.
    pub binary: PathBuf,
    /// Bound on the wait for all listeners to accept connections.
    pub start_timeout: Duration,
    /// Bound on the wait after SIGTERM before SIGKILL. Dovecot takes ~1.1 s to exit on SIGTERM
    /// here; `Duration::ZERO` kills it at once (its children exit when they see the master gone).
    pub stop_timeout: Duration,
}

impl DovecotConfig {
    /// A config validating OAuth tokens at `introspection_url`, without submission.
    pub fn new(introspection_url: impl Into<String>) -> Self {
        DovecotConfig {
            introspection_url: introspection_url.into(),
            relay: None,
            binary: std::env::var_os(DOVECOT_BIN_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DOVECOT_BIN)),
            start_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_millis(1500),
        }
    }

    /// Turns the submission service on, relaying to `relay`.
    pub fn with_relay(mut self, relay: SocketAddr) -> Self {
        self.relay = Some(relay);
        self
    }
}

/// The loopback ports Dovecot listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ports {
    pub imap: u16,
    pub imaps: u16,
    pub submission: u16,
    pub lmtp: u16,
}

/// The unprivileged user and group every Dovecot process runs as.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub user: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    /// Whether the harness must switch to this identity (it runs as root) or already is it.
    pub switch_user: bool,
}

/// Where each file of one Dovecot instance lives, all under one root directory.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_file(&self) -> PathBuf {
        self.root.join("dovecot.conf")
    }

    pub fn oauth2_file(&self) -> PathBuf {
        self.root.join("oauth2.conf.ext")
    }

    /// One passwd-file per password user, named after the lower-cased user name.
    pub fn passwd_dir(&self) -> PathBuf {
        self.root.join("passwd.d")
    }

    pub fn log_file(&self) -> PathBuf {
        self.root.join("dovecot.log")
    }

    /// Dovecot's own stdout/stderr: config errors land here before the log file is open.
    pub fn stderr_file(&self) -> PathBuf {
        self.root.join("stderr.log")
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// Directories Dovecot expects to exist (base_dir, state_dir, the maildir root, ...).
    pub fn dirs(&self) -> [PathBuf; 5] {
        [
            self.root.join("run"),
            self.root.join("state"),
            self.root.join("mail"),
            self.passwd_dir(),
            self.tls_dir(),
        ]
    }
}

/// Renders `dovecot.conf` from the shipped template.
pub(crate) fn render_main(
    layout: &Layout,
    identity: &Identity,
    ports: Ports,
    relay: Option<SocketAddr>,
    instance: &str,
) -> String {
    let protocols = if relay.is_some() {
        "imap submission lmtp"
    } else {
        "imap lmtp"
    };
    // Unused while submission is off, but Dovecot still parses the setting.
    let relay_port = relay.map_or(25, |addr| addr.port());
    let replacements = [
        ("@ROOT@", layout.root().display().to_string()),
        ("@USER@", identity.user.clone()),
        ("@GROUP@", identity.group.clone()),
        ("@PROTOCOLS@", protocols.to_owned()),
        ("@INSTANCE@", instance.to_owned()),
        ("@RELAY_PORT@", relay_port.to_string()),
        ("@IMAP_PORT@", ports.imap.to_string()),
        ("@IMAPS_PORT@", ports.imaps.to_string()),
        ("@SUBMISSION_PORT@", ports.submission.to_string()),
        ("@LMTP_PORT@", ports.lmtp.to_string()),
    ];
    replacements
        .iter()
        .fold(MAIN_TEMPLATE.to_owned(), |text, (placeholder, value)| {
            text.replace(placeholder, value)
        })
}

/// Renders the `oauth2` passdb's settings file.
pub(crate) fn render_oauth2(introspection_url: &str) -> String {
    format!(
        "introspection_url = {introspection_url}\n\
         introspection_mode = post\n\
         force_introspection = yes\n\
         username_attribute = email\n\
         active_attribute = active\n\
         active_value = true\n\
         timeout_msecs = 5000\n"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn render(relay: Option<SocketAddr>) -> String {
        let identity = Identity {
            user: "dovecot".into(),
            group: "dovecot".into(),
            uid: 102,
            gid: 105,
            switch_user: true,
        };
        let ports = Ports {
            imap: 1143,
            imaps: 1993,
            submission: 1587,
            lmtp: 1024,
        };
        render_main(
            &Layout::new(Path::new("/tmp/x")),
            &identity,
            ports,
            relay,
            "t1",
        )
    }

    #[test]
    fn template_leaves_no_placeholder_behind() {
        let text = render(None);
        let leftover = text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .find(|line| line.contains('@') && !line.contains("postmaster@"));
        assert_eq!(leftover, None);
    }

    #[test]
    fn ports_paths_and_relay_are_filled_in() {
        let text = render(Some("127.0.0.1:2525".parse().unwrap()));
        assert!(text.contains("protocols = imap submission lmtp"));
        assert!(text.contains("submission_relay_port = 2525"));
        assert!(text.contains("port = 1993"));
        assert!(text.contains("base_dir = /tmp/x/run"));
        assert!(text.contains("default_login_user = dovecot"));
    }

    #[test]
    fn submission_is_off_without_relay() {
        assert!(render(None).contains("protocols = imap lmtp\n"));
    }

    #[test]
    fn oauth2_settings_point_at_the_introspection_url() {
        let text = render_oauth2("http://127.0.0.1:9/introspect");
        assert!(text.starts_with("introspection_url = http://127.0.0.1:9/introspect\n"));
        assert!(text.contains("force_introspection = yes"));
    }
}
