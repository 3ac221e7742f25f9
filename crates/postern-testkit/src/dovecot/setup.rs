//! Preparing a Dovecot instance's directory: identity, ports, files, ownership, and sweeping what
//! killed test runs left behind.
//!
//! Non-goal: portability beyond Linux (`/proc`, `chown`, `setpriv` are assumed). Key decision: the
//! whole tree is handed to the unprivileged user Dovecot runs as, so no Dovecot process needs root.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User, chown};

use super::HarnessError;
use super::config::{self, DovecotConfig, Identity, Layout, Ports};
use crate::tls::TestPki;

/// Prefix of the temporary directories, so a later run can sweep what a killed run left behind.
pub(crate) const DIR_PREFIX: &str = "postern-dovecot-";
/// Marker file holding the pid of the test process that owns a directory.
const OWNER_FILE: &str = "owner.pid";
/// The system user Dovecot runs as when the harness is root.
const SYSTEM_USER: &str = "dovecot";

pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Asks the kernel for four free loopback ports. Another process may take one before Dovecot binds
/// it; [`Dovecot::start`](super::Dovecot::start) then retries with new ports.
pub(crate) fn free_ports() -> Result<Ports, HarnessError> {
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

/// Writes config, certificates and the owner marker; hands the tree to the
/// identity Dovecot runs as.
pub(crate) fn write_files(
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

pub(crate) fn resolve_identity() -> Result<Identity, HarnessError> {
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

pub(crate) fn chown_to(path: &Path, identity: &Identity) -> Result<(), HarnessError> {
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

/// Memory-backed scratch space, preferred for the instance directory: maildir creates a file per
/// message, and on this kind of machine's disk that caps APPEND at ~1,000 messages/s, against
/// ~25,000/s on tmpfs.
const TMPFS: &str = "/dev/shm";

/// Creates the instance directory, on tmpfs when there is one we may write to.
pub(crate) fn create_instance_dir() -> Result<tempfile::TempDir, HarnessError> {
    let builder = {
        let mut builder = tempfile::Builder::new();
        builder.prefix(DIR_PREFIX);
        builder
    };
    builder
        .tempdir_in(TMPFS)
        .or_else(|_| builder.tempdir())
        .map_err(|source| HarnessError::io_at("creating Dovecot's temp dir", source))
}

/// Removes instance dirs of earlier test processes that died without cleaning up (a shared
/// Dovecot's directory is never dropped). Best effort: errors are ignored.
pub(crate) fn sweep_stale_dirs() {
    for parent in [PathBuf::from(TMPFS), std::env::temp_dir()] {
        sweep_stale_dirs_in(&parent);
    }
}

fn sweep_stale_dirs_in(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports().unwrap();
        let mut all = [ports.imap, ports.imaps, ports.submission, ports.lmtp];
        all.sort_unstable();
        all.windows(2).for_each(|pair| assert_ne!(pair[0], pair[1]));
    }

    #[test]
    fn a_directory_whose_owner_is_alive_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string()).unwrap();
        assert!(!owner_is_gone(dir.path()));
        std::fs::write(dir.path().join(OWNER_FILE), u32::MAX.to_string()).unwrap();
        assert!(owner_is_gone(dir.path()));
    }
}
