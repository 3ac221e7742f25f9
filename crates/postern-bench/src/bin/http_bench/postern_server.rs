//! A real `postern serve` for the benches that measure what a user gets: the release binary on a
//! free loopback port with a fresh data dir, its banner read for the address and the admin token,
//! its logs kept in a file, stopped with SIGTERM. Shared by `http-bench` and `accounts-bench`
//! (the latter includes this file with `#[path]`).
//!
//! Non-goal: checking the server's behaviour; the e2e tests do that. Every failure here is a bench
//! that cannot run, returned as an error that says which step failed.
//!
//! Key decision: a child process, not the router built in-process, so the figures include
//! everything `postern serve` does (the rate limiter, the timeout layer, the background tasks) and
//! the server's RSS is its own, not shared with the load generator's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the server may take to print its banner.
const BANNER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd server may take to stop its supervisors and exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `postern serve`.
pub struct PosternServer {
    child: Child,
    pid: u32,
    address: SocketAddr,
    admin_token: String,
    log_file: PathBuf,
    client: reqwest::Client,
}

/// The `postern` binary: `explicit`, or the one next to this bench's own executable (the bench
/// scripts build both into the same target dir).
pub fn postern_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench executable has no parent directory")?
            .join("postern"),
    };
    if !path.is_file() {
        bail!(
            "no postern binary at {} (build it with `cargo build --release -p postern` into the same target dir, or pass --postern PATH)",
            path.display()
        );
    }
    Ok(path)
}

impl PosternServer {
    /// Starts `binary serve` on a free loopback port with `data_dir` (created if missing) and the
    /// extra `env` (`POSTERN_*` settings); its logs go to `<data_dir>/postern.log`.
    pub async fn start(
        binary: &Path,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<PosternServer> {
        std::fs::create_dir_all(data_dir)?;
        let log_file = data_dir.join("postern.log");
        let log = std::fs::File::create(&log_file)?;
        let mut command = Command::new(binary);
        command
            .current_dir(data_dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("POSTERN_DATA_DIR", data_dir)
            .env("POSTERN_LOG", "info")
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let banner = tokio::time::timeout(BANNER_TIMEOUT, read_banner(stdout))
            .await
            .with_context(|| {
                format!(
                    "postern printed no banner in {BANNER_TIMEOUT:?}; see {}",
                    log_file.display()
                )
            })??;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .build()?;
        Ok(PosternServer {
            child,
            pid,
            address: banner.address,
            admin_token: banner.admin_token,
            log_file,
            client,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where the API listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The admin token the first start printed.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The server's log file.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// `http://ADDRESS{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// GET `path` as the admin; the body as JSON, or an error naming the status.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await?;
        json_of(response, path, reqwest::StatusCode::OK).await
    }

    /// POST `body` to `path` as the admin; the body as JSON, or an error naming the status.
    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await?;
        json_of(response, path, reqwest::StatusCode::CREATED).await
    }

    /// SIGTERM, then waits for the exit (killing it after [`STOP_TIMEOUT`]); returns how long the
    /// clean stop took.
    pub async fn stop(mut self) -> anyhow::Result<Duration> {
        let started = std::time::Instant::now();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid)?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!(
                        "postern exited with {status} after SIGTERM; see {}",
                        self.log_file.display()
                    );
                }
                Ok(started.elapsed())
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("postern did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed it")
            }
        }
    }
}

/// What the banner says.
struct Banner {
    address: SocketAddr,
    admin_token: String,
}

/// Reads stdout up to the admin token line, then keeps draining it in the background so the
/// server never blocks on a full pipe.
async fn read_banner(stdout: tokio::process::ChildStdout) -> anyhow::Result<Banner> {
    let mut lines = BufReader::new(stdout).lines();
    let mut address = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.split("http://").nth(1)
            && line.contains("API:")
        {
            let host = rest.split('/').next().unwrap_or_default();
            address = Some(host.parse::<SocketAddr>()?);
        }
        if let Some(token) = line.trim().strip_prefix("admin token:") {
            let address = address.context("the banner named no API address")?;
            let admin_token = token.trim().to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(Banner {
                address,
                admin_token,
            });
        }
    }
    bail!("postern closed stdout before printing an admin token (not a fresh data dir?)")
}

async fn json_of(
    response: reqwest::Response,
    path: &str,
    expected: reqwest::StatusCode,
) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await?;
    if status != expected {
        bail!("{path} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// The `POST /v1/accounts` body for a password user of the test Dovecot: IMAPS on `imaps_port`
/// trusting `ca_file`. The SMTP endpoint is stored but never used by these benches.
pub fn password_account_body(
    email: &str,
    password: &str,
    imaps_port: u16,
    ca_file: &Path,
) -> Value {
    let ca_file = ca_file.display().to_string();
    serde_json::json!({
        "email": email,
        "imap": {"host": "localhost", "port": imaps_port, "security": "tls", "ca_file": ca_file},
        "smtp": {"host": "localhost", "port": 587, "security": "starttls", "ca_file": ca_file},
        "auth": {"type": "password", "password": password},
    })
}

/// The `sync.activity` of `GET /v1/accounts/{id}` (`idling` once the first pass is done and the
/// supervisor waits in IDLE), or `none` when no supervisor runs.
pub async fn sync_activity(server: &PosternServer, account_id: &str) -> anyhow::Result<String> {
    let account = server
        .get_json(&format!("/v1/accounts/{account_id}"))
        .await?;
    Ok(account["sync"]["activity"]
        .as_str()
        .unwrap_or("none")
        .to_owned())
}

/// A process's resident set from `/proc/<pid>/status`, in KiB (`VmRSS`, or `VmHWM` for the peak).
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// The CPU time a process has used so far (user + system, from `/proc/<pid>/stat`).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis start
    // with the state (field 3), so utime and stime (fields 14 and 15) are at 11 and 12 there.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no command name in /proc/<pid>/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(index)
            .with_context(|| format!("/proc/{pid}/stat is short"))?
            .parse()?)
    };
    // /proc reports in USER_HZ, which is 100 on Linux whatever the kernel's own tick.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// The 1-minute load average, to tell a quiet machine from a busy one in the report.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
