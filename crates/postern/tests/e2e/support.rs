//! Runs the real `postern` binary for tests: a server on a free port, or a one-shot command.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_postern");

/// A running `postern serve`.
pub struct Postern {
    child: Child,
    pub address: String,
    pub banner: Vec<String>,
    pub admin_token: Option<String>,
    pub client: reqwest::Client,
}

fn command(data_dir: &Path, env: &[(&str, &str)]) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command
        .current_dir(data_dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("POSTERN_DATA_DIR", data_dir)
        .env("POSTERN_LOG", "info");
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Runs a one-shot command to completion.
pub fn run_postern(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(data_dir, env).args(args).output().unwrap()
}

impl Postern {
    /// Starts `postern serve` on a free loopback port and waits for its banner.
    pub async fn start(data_dir: &Path, env: &[(&str, &str)]) -> Postern {
        let mut command: Command = command(data_dir, env).into();
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        let read_banner = async {
            // The `stop:` line ends the banner, after the token lines if any.
            while let Some(line) = lines.next_line().await.unwrap() {
                let done = line.trim_start().starts_with("stop:");
                banner.push(line);
                if done {
                    return;
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(20), read_banner)
            .await
            .is_err()
        {
            panic!("postern did not print its banner in 20 s: {banner:?}");
        }
        let api_line = banner.iter().find(|line| line.contains("API:")).unwrap();
        let address = api_line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap()
            .to_owned();
        let admin_token = banner
            .iter()
            .find_map(|line| line.trim().strip_prefix("admin token:"))
            .map(|token| token.trim().to_owned());
        Postern {
            child,
            address,
            banner,
            admin_token,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// SIGKILL, as a crash or an OOM kill would end it: nothing is flushed, nothing shut down.
    pub async fn kill_hard(mut self) {
        self.child.start_kill().unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("postern did not die within 10 s of SIGKILL")
            .unwrap();
    }

    /// SIGTERM, wait for a clean exit, and return everything the server logged.
    pub async fn stop(mut self) -> String {
        let pid = nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("postern did not stop within 10 s of SIGTERM")
            .unwrap();
        assert!(
            status.success(),
            "postern exited with {status} after SIGTERM"
        );
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        stderr
    }
}

impl Postern {
    /// A JSON request with the given method, path, token and body.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The data dir's database and WAL files, as bytes.
    pub fn database_bytes(data_dir: &Path) -> Vec<Vec<u8>> {
        std::fs::read_dir(data_dir)
            .unwrap()
            .filter_map(|entry| {
                let path = entry.unwrap().path();
                let name = path.file_name()?.to_str()?.to_owned();
                name.starts_with("postern.db")
                    .then(|| std::fs::read(&path).unwrap())
            })
            .collect()
    }
}

/// The one Dovecot of this test binary: OAuth2 through the shared test provider, submission
/// relaying to the shared SMTP sink. Every module uses this, so whichever test starts it first
/// starts it with everything the others need.
pub fn dovecot() -> &'static postern_testkit::dovecot::Dovecot {
    use postern_testkit::dovecot::{Dovecot, DovecotConfig};
    use postern_testkit::oauth_provider::TestOAuthProvider;
    use postern_testkit::smtp_sink::SmtpSink;
    Dovecot::shared(|| {
        let sink = SmtpSink::shared().unwrap_or_else(|e| panic!("{e}"));
        DovecotConfig::new(TestOAuthProvider::shared().introspect_url()).with_relay(sink.addr())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A mailbox address no other test of this run uses: `<name>-<nanoseconds>@example.test`.
pub fn unique_email(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos:x}@example.test")
}

/// Makes `email` a password user of the shared Dovecot and returns the `POST /v1/accounts` body for
/// it: IMAPS and the submission port (STARTTLS), both trusting the test CA.
pub fn password_account_body(email: &str, password: &str) -> serde_json::Value {
    let dovecot = dovecot();
    dovecot.add_password_user(email, password).unwrap();
    let ca_file = dovecot.ca_file().display().to_string();
    let submission = dovecot
        .submission_addr()
        .expect("the shared Dovecot relays submissions");
    serde_json::json!({
        "email": email,
        "imap": {"host": "localhost", "port": dovecot.imaps_addr().port(), "security": "tls", "ca_file": ca_file},
        "smtp": {"host": "localhost", "port": submission.port(), "security": "starttls", "ca_file": ca_file},
        "auth": {"type": "password", "password": password},
    })
}

/// Creates the account `body` describes through the API, asserts it answered 201 and logged in,
/// and returns its id.
pub async fn create_account(server: &Postern, admin: &str, body: &serde_json::Value) -> String {
    let response = server
        .send_json(reqwest::Method::POST, "/v1/accounts", admin, body)
        .await;
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    assert_eq!(created["state"], "connected", "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// The mailbox's listing once `done` holds for it (or after 10 s, for the assertion to report).
pub async fn wait_for_listing(
    server: &Postern,
    token: &str,
    id: &str,
    mailbox: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed: serde_json::Value = server
            .get(
                &format!("/v1/accounts/{id}/messages?mailbox={mailbox}"),
                Some(token),
            )
            .await
            .json()
            .await
            .unwrap();
        let messages = listed["messages"].as_array().cloned().unwrap_or_default();
        if done(&messages) || std::time::Instant::now() > deadline {
            return messages;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates an API token with `scopes` (bound to `accounts` when given) through the API, asserts it
/// answered 201, and returns the token.
pub async fn new_token(
    server: &Postern,
    admin: &str,
    scopes: &[&str],
    accounts: Option<&[&str]>,
) -> String {
    let mut body = serde_json::json!({"name": unique_email("token"), "scopes": scopes});
    if let Some(accounts) = accounts {
        body["account_ids"] = serde_json::json!(accounts);
    }
    let response = server
        .send_json(reqwest::Method::POST, "/v1/tokens", admin, &body)
        .await;
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    created["token"].as_str().unwrap().to_owned()
}

/// The value of the one series whose line starts with `name{` and contains every label.
pub fn metric_sample(body: &str, name: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit_once(' '))
        .map_or(0.0, |(_, value)| value.parse().unwrap())
}
