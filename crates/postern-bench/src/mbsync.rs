//! The mbsync peer: Debian's isync pulling INBOX into an empty maildir, fsync off, TLS trusting the
//! test CA.
//!
//! Non-goal: installing isync; `bench/sync` does that (`apt-get install isync`).
//!
//! Key decision: a config file per run in a fresh directory, so every run is a full initial pull
//! (no sync state left over from the run before).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Who and where mbsync pulls from.
pub struct MbsyncArgs<'a> {
    pub port: u16,
    pub ca_file: &'a Path,
    pub user: &'a str,
    pub password: &'a str,
}

/// What one pull did.
pub struct MbsyncRun {
    pub elapsed: Duration,
    pub messages: usize,
}

/// Whether `mbsync` is on the PATH.
pub fn available() -> bool {
    Command::new("mbsync").arg("--version").output().is_ok()
}

/// Pulls INBOX into a new maildir under `work`; returns the time and the number of files written.
pub fn pull(args: &MbsyncArgs<'_>, work: &Path) -> anyhow::Result<MbsyncRun> {
    let dir = tempfile::tempdir_in(work)?;
    let maildir = dir.path().join("mail");
    std::fs::create_dir_all(&maildir)?;
    let config = dir.path().join("mbsyncrc");
    std::fs::write(&config, config_text(args, &maildir, dir.path()))?;
    let started = Instant::now();
    let output = Command::new("mbsync")
        .arg("-q")
        .arg("-c")
        .arg(&config)
        .arg("-a")
        .output()
        .context("running mbsync")?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "mbsync failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let messages = count_files(&maildir.join("INBOX").join("cur"))?
        + count_files(&maildir.join("INBOX").join("new"))?;
    Ok(MbsyncRun { elapsed, messages })
}

fn config_text(args: &MbsyncArgs<'_>, maildir: &Path, state: &Path) -> String {
    format!(
        "Fsync no\n\
         \n\
         IMAPAccount bench\n\
         Host localhost\n\
         Port {port}\n\
         User \"{user}\"\n\
         Pass \"{password}\"\n\
         SSLType IMAPS\n\
         CertificateFile {ca}\n\
         AuthMechs LOGIN\n\
         \n\
         IMAPStore remote\n\
         Account bench\n\
         \n\
         MaildirStore local\n\
         Path {maildir}/\n\
         Inbox {maildir}/INBOX\n\
         \n\
         Channel pull\n\
         Far :remote:\n\
         Near :local:\n\
         Patterns INBOX\n\
         Create Near\n\
         Sync Pull\n\
         SyncState {state}/\n",
        port = args.port,
        user = args.user,
        password = args.password,
        ca = args.ca_file.display(),
        maildir = maildir.display(),
        state = state.display(),
    )
}

fn count_files(dir: &Path) -> anyhow::Result<usize> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.count()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(error.into()),
    }
}
