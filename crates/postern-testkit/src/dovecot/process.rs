//! The Dovecot master process: spawned, watched and stopped by a dedicated keeper thread.
//!
//! Non-goal: supervising or restarting Dovecot; a test that loses its server fails.
//!
//! Key decision: the process is spawned from a keeper thread that lives exactly as long as the
//! server, through `setpriv --pdeathsig KILL`. The kernel sends the parent-death signal when the
//! *thread* that forked the child exits, so spawning from a test thread would kill a shared server
//! when that one test ends; the keeper thread ends only on `stop()`/`Drop` or with the whole test
//! process, so even a server held in a never-dropped `static` dies with the test binary, and no
//! `unsafe` `prctl` call is needed.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::HarnessError;
use super::config::{Identity, Layout};

const SETPRIV: &str = "setpriv";
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// SIGTERM grace when no owner chose one (the owner was dropped without `stop`).
const DEFAULT_GRACE: Duration = Duration::from_millis(1500);

/// A running Dovecot master process, owned by its keeper thread.
#[derive(Debug)]
pub(crate) struct DovecotProcess {
    pid: u32,
    stop_tx: Option<mpsc::Sender<Duration>>,
    keeper: Option<JoinHandle<()>>,
    exit_status: Arc<OnceLock<String>>,
}

impl DovecotProcess {
    /// Starts `binary -F -c <config>` in the foreground under the keeper thread.
    pub fn spawn(
        binary: &Path,
        layout: &Layout,
        identity: &Identity,
    ) -> Result<Self, HarnessError> {
        let command = build_command(binary, layout, identity)?;
        let (started_tx, started_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel();
        let exit_status = Arc::new(OnceLock::new());
        let status_slot = Arc::clone(&exit_status);
        let keeper = std::thread::Builder::new()
            .name("dovecot-keeper".into())
            .spawn(move || keep(command, &started_tx, &stop_rx, &status_slot))
            .map_err(|source| HarnessError::io_at("spawning the dovecot keeper thread", source))?;
        let pid = match started_rx.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(source)) => {
                let _ = keeper.join();
                return Err(HarnessError::Spawn {
                    program: SETPRIV.into(),
                    source,
                });
            }
            Err(_) => {
                let _ = keeper.join();
                return Err(HarnessError::io_at(
                    "dovecot keeper thread ended before spawning",
                    std::io::Error::other("keeper thread died"),
                ));
            }
        };
        Ok(DovecotProcess {
            pid,
            stop_tx: Some(stop_tx),
            keeper: Some(keeper),
            exit_status,
        })
    }

    /// The master's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status if the master has exited on its own.
    pub fn exit_status(&self) -> Option<&str> {
        self.exit_status.get().map(String::as_str)
    }

    /// SIGTERM, then SIGKILL after `grace`; waits until the master is reaped. Idempotent.
    pub fn stop(&mut self, grace: Duration) {
        if let Some(stop_tx) = self.stop_tx.take() {
            // A send error means the keeper already saw the process exit: nothing to stop.
            let _ = stop_tx.send(grace);
        }
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.join();
        }
    }
}

impl Drop for DovecotProcess {
    fn drop(&mut self) {
        self.stop(DEFAULT_GRACE);
    }
}

fn build_command(
    binary: &Path,
    layout: &Layout,
    identity: &Identity,
) -> Result<Command, HarnessError> {
    let stdout = File::create(layout.stderr_file())
        .map_err(|source| HarnessError::io(&layout.stderr_file(), source))?;
    let stderr = stdout
        .try_clone()
        .map_err(|source| HarnessError::io(&layout.stderr_file(), source))?;
    let mut command = Command::new(SETPRIV);
    if identity.switch_user {
        command.args([
            format!("--reuid={}", identity.uid),
            format!("--regid={}", identity.gid),
            "--init-groups".to_owned(),
        ]);
    }
    command
        .args(["--pdeathsig", "KILL", "--"])
        .arg(binary)
        .arg("-F")
        .arg("-c")
        .arg(layout.config_file())
        .current_dir(layout.root())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    Ok(command)
}

/// The keeper thread's body: spawn, report the pid, then watch for an exit or a stop request.
fn keep(
    mut command: Command,
    started_tx: &mpsc::Sender<std::io::Result<u32>>,
    stop_rx: &mpsc::Receiver<Duration>,
    exit_status: &OnceLock<String>,
) {
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let _ = started_tx.send(Err(err));
            return;
        }
    };
    let _ = started_tx.send(Ok(child.id()));
    loop {
        match stop_rx.recv_timeout(POLL_INTERVAL * 5) {
            Ok(grace) => return terminate(&mut child, grace),
            // The owner vanished without asking (it was leaked or panicked): stop anyway.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return terminate(&mut child, DEFAULT_GRACE);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            let _ = exit_status.set(status.to_string());
            return;
        }
    }
}

fn terminate(child: &mut Child, grace: Duration) {
    let Ok(raw_pid) = i32::try_from(child.id()) else {
        return;
    };
    let pid = Pid::from_raw(raw_pid);
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let _ = kill(pid, Signal::SIGKILL);
    let _ = child.wait();
}
