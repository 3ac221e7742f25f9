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
//! - Everything lives in one temporary directory (on tmpfs when `/dev/shm` exists: 25x faster
//!   APPEND than this machine's disk) owned by the unprivileged `dovecot` user (or the caller, when
//!   not root), so no system path is touched and no root process runs.
//! - One server per test binary ([`Dovecot::shared`]). A start is cheap (first greeting ~50–150 ms
//!   here) but a stop is not (Dovecot takes ~1.1 s to exit on SIGTERM), and every test sharing one
//!   server keeps the whole binary fast.
//! - A missing Dovecot is an error that says how to install it, never a skipped test.

mod config;
mod error;
mod passwd;
mod process;
mod setup;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use config::{DOVECOT_BIN_ENV, DovecotConfig};
pub use error::{DOVECOT_INSTALL_HINT, HarnessError};

use config::{Identity, Layout, Ports};
use process::DovecotProcess;
use setup::{
    create_instance_dir, free_ports, loopback, resolve_identity, sweep_stale_dirs, write_files,
};

use crate::tls::TestPki;

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
        let dir = create_instance_dir()?;
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

    /// Adds a user who logs in with PLAIN / LOGIN and `password`; no reload is needed.
    ///
    /// Returns at once for a new user or an unchanged password. Changing an existing user's
    /// password takes up to ~2 s: Dovecot re-reads a passwd-file at most once a second.
    pub fn add_password_user(&self, user: &str, password: &str) -> Result<(), HarnessError> {
        let _guard = self
            .passwd_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        passwd::write_user(&self.layout.passwd_dir(), &self.identity, user, password)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_names_the_install_command() {
        let mut config = DovecotConfig::new("http://127.0.0.1:9/introspect");
        config.binary = std::path::PathBuf::from("/nonexistent/dovecot");
        let message = Dovecot::start(config).unwrap_err().to_string();
        assert!(message.contains("/nonexistent/dovecot"), "{message}");
        assert!(message.contains("scripts/test"), "{message}");
        assert!(
            message.contains("apt-get install -y dovecot-core dovecot-imapd"),
            "{message}"
        );
    }
}
