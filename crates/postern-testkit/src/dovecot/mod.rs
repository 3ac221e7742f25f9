//! A real Dovecot 2.3 for integration tests: IMAP (plain + STARTTLS), IMAPS, submission and LMTP on
//! loopback ports, OAuth2 tokens checked by introspection, password users from a passwd-file.
//!
//! ```no_run
//! use postern_testkit::dovecot::{Dovecot, DovecotConfig};
//! let dovecot = Dovecot::shared(|| DovecotConfig::new("http://127.0.0.1:9/introspect"))
//!     .unwrap_or_else(|err| panic!("{err}"));
//! dovecot.add_password_user("alice@example.test", "secret")?;
//! let _imap = dovecot.imap_addr();
//! # Ok::<(), postern_testkit::dovecot::HarnessError>(())
//! ```
//!
//! Non-goal: configuring Dovecot per test. One config (the shipped `dovecot.conf.tmpl`) serves every
//! test; tests isolate themselves by inventing their own address (the static userdb accepts any).
//!
//! Key decisions:
//! - Everything lives in one temporary directory owned by the unprivileged `dovecot` user (or the
//!   caller, when not root), so no system path is touched and no root process runs.
//! - One server per test binary ([`Dovecot::shared`]): a start costs ~0.5 s and a stop ~1 s.
//! - A missing Dovecot is an error that says how to install it, never a skipped test.

mod config;
mod error;
mod process;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Group, Uid, User, chown};

pub use config::{DOVECOT_BIN_ENV, DovecotConfig};
pub use error::{DOVECOT_INSTALL_HINT, HarnessError};

use config::{Identity, Layout, Ports};
use process::DovecotProcess;

use crate::tls::TestPki;

/// Prefix of the temporary directories, so a later run can sweep what a killed run left behind.
const DIR_PREFIX: &str = "postern-dovecot-";
/// Marker file holding the pid of the test process that owns a directory.
const OWNER_FILE: &str = "owner.pid";
/// The system user Dovecot runs as when the harness is root.
const SYSTEM_USER: &str = "dovecot";
/// Attempts with fresh ports when another process grabbed one between probing and binding.
const PORT_ATTEMPTS: usize = 3;
const LOG_TAIL_LINES: usize = 40;

/// A running Dovecot; stopped (SIGTERM, then SIGKILL) on [`Dovecot::stop`] or drop.
#[derive(Debug)]
pub struct Dovecot {
    process: DovecotProcess,
    layout: Layout,
    identity: Identity,
    pki: TestPki,
    ports: Ports,
    relay: Option<SocketAddr>,
    stop_timeout: Duration,
    started_in: Duration,
    passwd_lock: Mutex<()>,
    // Last field: dropped after the process is stopped.
    _dir: tempfile::TempDir,
}

static SHARED: OnceLock<Result<Dovecot, HarnessError>> = OnceLock::new();

impl Dovecot {
    /// Starts a Dovecot and waits until all its listeners accept connections.
    pub fn start(config: DovecotConfig) -> Result<Dovecot, HarnessError> {
        if !config.binary.is_file() {
            return Err(HarnessError::DovecotMissing {
                binary: config.binary,
            });
        }
        sweep_stale_dirs();
        let identity = resolve_identity()?;
        let mut attempt = 1;
        loop {
            match Self::start_once(&config, &identity) {
                Err(HarnessError::DovecotExited { log_tail, .. })
                    if attempt < PORT_ATTEMPTS && log_tail.contains("Address already in use") =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The process-wide Dovecot: started by the first caller with `config()`, shared by every
    /// later caller (whose `config` is ignored), killed when the test process exits.
    ///
    /// A failed start is remembered, so every test that needs the server fails with the same error.
    pub fn shared(
        config: impl FnOnce() -> DovecotConfig,
    ) -> Result<&'static Dovecot, &'static HarnessError> {
        SHARED.get_or_init(|| Dovecot::start(config())).as_ref()
    }

    fn start_once(config: &DovecotConfig, identity: &Identity) -> Result<Dovecot, HarnessError> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .map_err(|source| HarnessError::io_at("creating Dovecot's temp dir", source))?;
        let layout = Layout::new(dir.path());
        let ports = free_ports()?;
        let pki = write_files(config, identity, &layout, ports)?;
        let process = DovecotProcess::spawn(&config.binary, &layout, identity)?;
        let mut dovecot = Dovecot {
            process,
            layout,
            identity: identity.clone(),
            pki,
            ports,
            relay: config.relay,
            stop_timeout: config.stop_timeout,
            started_in: Duration::ZERO,
            passwd_lock: Mutex::new(()),
            _dir: dir,
        };
        dovecot.wait_until_listening(config.start_timeout)?;
        dovecot.started_in = started.elapsed();
        Ok(dovecot)
    }

    /// Plain IMAP (STARTTLS offered, plaintext login allowed on loopback).
    pub fn imap_addr(&self) -> SocketAddr {
        loopback(self.ports.imap)
    }

    /// IMAP over implicit TLS.
    pub fn imaps_addr(&self) -> SocketAddr {
        loopback(self.ports.imaps)
    }

    /// Submission (SMTP with STARTTLS and AUTH), relaying to the configured relay; `None` when the
    /// config had no relay and the service is off.
    pub fn submission_addr(&self) -> Option<SocketAddr> {
        self.relay.map(|_| loopback(self.ports.submission))
    }

    /// LMTP, for delivering mail as an MTA would.
    pub fn lmtp_addr(&self) -> SocketAddr {
        loopback(self.ports.lmtp)
    }

    /// The test CA that signed Dovecot's certificate (PEM file).
    pub fn ca_file(&self) -> &Path {
        self.pki.ca_file()
    }

    /// The test CA that signed Dovecot's certificate (PEM text).
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_pem()
    }

    /// The Dovecot master's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The directory holding this instance's config, log, maildirs and certificates.
    pub fn root_dir(&self) -> &Path {
        self.layout.root()
    }

    /// How long the start took, from creating the temp dir until every port accepted a connection.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Dovecot's log file, followed by anything it wrote to stdout/stderr.
    pub fn log(&self) -> String {
        let mut log = std::fs::read_to_string(self.layout.log_file()).unwrap_or_default();
        let stderr = std::fs::read_to_string(self.layout.stderr_file()).unwrap_or_default();
        if !stderr.is_empty() {
            log.push_str("--- stderr ---\n");
            log.push_str(&stderr);
        }
        log
    }

    /// Adds (or replaces) a user who logs in with PLAIN / LOGIN and `password`.
    ///
    /// Dovecot notices the changed passwd-file at the next login; no reload is needed.
    pub fn add_password_user(&self, user: &str, password: &str) -> Result<(), HarnessError> {
        validate_passwd_field(user, user)?;
        validate_passwd_field(user, password)?;
        let _guard = self
            .passwd_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = self.layout.passwd_file();
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        let prefix = format!("{user}:");
        let mut text: String = current
            .lines()
            .filter(|line| !line.starts_with(&prefix))
            .map(|line| format!("{line}\n"))
            .collect();
        text.push_str(&format!("{user}:{{PLAIN}}{password}::::::\n"));
        // Write-then-rename: Dovecot never reads a half-written file, and the new inode tells it
        // the file changed even within the same second.
        let staging = path.with_extension("new");
        std::fs::write(&staging, text).map_err(|source| HarnessError::io(&staging, source))?;
        chown_to(&staging, &self.identity)?;
        std::fs::rename(&staging, &path).map_err(|source| HarnessError::io(&path, source))
    }

    /// Stops Dovecot now (SIGTERM, then SIGKILL after the config's `stop_timeout`).
    pub fn stop(mut self) {
        self.process.stop(self.stop_timeout);
    }

    fn wait_until_listening(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        let mut pending = self.listeners();
        loop {
            pending.retain(|(_, addr)| {
                TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_err()
            });
            if pending.is_empty() {
                return Ok(());
            }
            if let Some(status) = self.process.exit_status() {
                return Err(HarnessError::DovecotExited {
                    status: status.to_owned(),
                    log_tail: self.log_tail(),
                });
            }
            if Instant::now() >= deadline {
                self.process.stop(self.stop_timeout);
                let pending = pending.iter().map(|(name, addr)| format!("{name} {addr}"));
                return Err(HarnessError::StartTimeout {
                    pending: pending.collect::<Vec<_>>().join(", "),
                    waited: timeout,
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn listeners(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut listeners = vec![
            ("imap", self.imap_addr()),
            ("imaps", self.imaps_addr()),
            ("lmtp", self.lmtp_addr()),
        ];
        if let Some(addr) = self.submission_addr() {
            listeners.push(("submission", addr));
        }
        listeners
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.process.stop(self.stop_timeout);
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Asks the kernel for four free loopback ports. Another process may take one before Dovecot binds
/// it; [`Dovecot::start`] then retries with new ports.
fn free_ports() -> Result<Ports, HarnessError> {
    let bind = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr().map(|addr| (listener, addr.port())))
            .map_err(|source| HarnessError::io_at("probing for a free port", source))
    };
    // All four stay bound until the end, so they are distinct.
    let (imap, imaps, submission, lmtp) = (bind()?, bind()?, bind()?, bind()?);
    Ok(Ports {
        imap: imap.1,
        imaps: imaps.1,
        submission: submission.1,
        lmtp: lmtp.1,
    })
}

/// Writes config, certificates, an empty passwd-file and the owner marker; hands the tree to the
/// identity Dovecot runs as.
fn write_files(
    config: &DovecotConfig,
    identity: &Identity,
    layout: &Layout,
    ports: Ports,
) -> Result<TestPki, HarnessError> {
    for dir in layout.dirs() {
        std::fs::create_dir_all(&dir).map_err(|source| HarnessError::io(&dir, source))?;
    }
    let pki = TestPki::generate_into(&layout.tls_dir())?;
    let instance = format!(
        "postern-{}-{}",
        std::process::id(),
        ports.imap // unique among running instances, since the port is bound
    );
    let files = [
        (
            layout.config_file(),
            config::render_main(layout, identity, ports, config.relay, &instance),
        ),
        (
            layout.oauth2_file(),
            config::render_oauth2(&config.introspection_url),
        ),
        (layout.passwd_file(), String::new()),
        (
            layout.root().join(OWNER_FILE),
            std::process::id().to_string(),
        ),
    ];
    for (path, text) in files {
        std::fs::write(&path, text).map_err(|source| HarnessError::io(&path, source))?;
    }
    chown_tree(layout.root(), identity)?;
    Ok(pki)
}

fn resolve_identity() -> Result<Identity, HarnessError> {
    let lookup_error = |source: nix::Error| {
        HarnessError::io_at("looking up the Dovecot user", std::io::Error::from(source))
    };
    let (user, switch_user) = if Uid::effective().is_root() {
        let user = User::from_name(SYSTEM_USER)
            .map_err(lookup_error)?
            .ok_or_else(|| HarnessError::UserMissing {
                user: SYSTEM_USER.to_owned(),
            })?;
        (user, true)
    } else {
        let user = User::from_uid(Uid::current())
            .map_err(lookup_error)?
            .ok_or_else(|| HarnessError::UserMissing {
                user: Uid::current().to_string(),
            })?;
        (user, false)
    };
    let group = Group::from_gid(user.gid)
        .map_err(lookup_error)?
        .map_or_else(|| user.gid.to_string(), |group| group.name);
    Ok(Identity {
        user: user.name,
        group,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        switch_user,
    })
}

fn chown_to(path: &Path, identity: &Identity) -> Result<(), HarnessError> {
    if !identity.switch_user {
        return Ok(());
    }
    chown(
        path,
        Some(Uid::from_raw(identity.uid)),
        Some(Gid::from_raw(identity.gid)),
    )
    .map_err(|source| HarnessError::io(path, std::io::Error::from(source)))
}

fn chown_tree(root: &Path, identity: &Identity) -> Result<(), HarnessError> {
    chown_to(root, identity)?;
    let entries = std::fs::read_dir(root).map_err(|source| HarnessError::io(root, source))?;
    for entry in entries {
        let path = entry
            .map_err(|source| HarnessError::io(root, source))?
            .path();
        if path.is_dir() {
            chown_tree(&path, identity)?;
        } else {
            chown_to(&path, identity)?;
        }
    }
    Ok(())
}

fn validate_passwd_field(user: &str, value: &str) -> Result<(), HarnessError> {
    let reason = if value.is_empty() {
        "empty"
    } else if value.contains(':') {
        "contains ':'"
    } else if value.contains(['\n', '\r']) {
        "contains a line break"
    } else {
        return Ok(());
    };
    Err(HarnessError::InvalidPasswordUser {
        user: user.to_owned(),
        reason,
    })
}

/// Removes temp dirs of earlier test processes that died without cleaning up (a shared Dovecot's
/// directory is never dropped). Best effort: errors are ignored.
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(DIR_PREFIX));
        if is_ours && owner_is_gone(&path) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn owner_is_gone(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(OWNER_FILE)) else {
        return false; // still being written, or not ours after all
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return false;
    };
    pid != std::process::id() && !PathBuf::from(format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_fields_reject_separators_and_line_breaks() {
        assert!(validate_passwd_field("u", "good pass").is_ok());
        for bad in ["", "a:b", "a\nb", "a\rb"] {
            let err = validate_passwd_field("u", bad).unwrap_err();
            assert!(matches!(err, HarnessError::InvalidPasswordUser { .. }));
        }
    }

    #[test]
    fn missing_binary_names_the_install_command() {
        let mut config = DovecotConfig::new("http://127.0.0.1:9/introspect");
        config.binary = PathBuf::from("/nonexistent/dovecot");
        let message = Dovecot::start(config).unwrap_err().to_string();
        assert!(message.contains("/nonexistent/dovecot"), "{message}");
        assert!(message.contains("scripts/test"), "{message}");
        assert!(
            message.contains("apt-get install -y dovecot-core dovecot-imapd"),
            "{message}"
        );
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports().unwrap();
        let mut all = [ports.imap, ports.imaps, ports.submission, ports.lmtp];
        all.sort_unstable();
        all.windows(2).for_each(|pair| assert_ne!(pair[0], pair[1]));
    }
}
