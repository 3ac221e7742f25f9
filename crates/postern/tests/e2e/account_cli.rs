//! `postern app …` and `postern account …` run as a real process against the shared test OAuth
//! provider and the shared Dovecot: the browser flow on a loopback listener (the test plays the
//! browser), the device flow, password accounts, and that no secret ever reaches the output.

use crate::support::{Postern, run_postern};
use postern_testkit::dovecot::Dovecot;
use postern_testkit::oauth_provider::{ClientConfig, Decision, TestOAuthProvider};
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

const BIN: &str = env!("CARGO_BIN_EXE_postern");

fn provider() -> &'static TestOAuthProvider {
    TestOAuthProvider::shared()
}

fn dovecot() -> &'static Dovecot {
    // The same configuration as `oauth_http`: whichever test starts the shared Dovecot first wins.
    crate::support::dovecot()
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}{nanos:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A loopback port nothing listens on (bound, then released for the CLI to take).
fn free_loopback_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The flags that point an account at the shared Dovecot, trusting its CA.
fn mail_server_flags() -> Vec<String> {
    let dovecot = dovecot();
    let ca = dovecot.ca_file().display().to_string();
    // Submission runs only with a relay; `account add` verifies IMAP alone, so any port will do.
    let submission = dovecot
        .submission_addr()
        .map_or(587, |address| address.port());
    [
        "--imap",
        &format!("localhost:{}", dovecot.imaps_addr().port()),
        "--imap-ca-file",
        &ca,
        "--smtp",
        &format!("localhost:{submission}"),
        "--smtp-ca-file",
        &ca,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A data dir, and an OAuth client registered with the shared provider.
struct Fixture {
    dir: tempfile::TempDir,
    client_id: String,
    client_secret: String,
    /// The `--redirect-uri` of `app add`; `None` leaves the app on the server's callback.
    app_redirect: Option<String>,
}

impl Fixture {
    fn new(redirect: &str, adjust: impl FnOnce(&mut ClientConfig)) -> Fixture {
        Fixture::in_dir(tempfile::tempdir().unwrap(), redirect, adjust)
    }

    fn in_dir(
        dir: tempfile::TempDir,
        redirect: &str,
        adjust: impl FnOnce(&mut ClientConfig),
    ) -> Fixture {
        let client_id = unique("cli-client");
        let client_secret = unique("cli-secret");
        let mut client = ClientConfig::confidential(&client_id, &client_secret, redirect);
        adjust(&mut client);
        provider().register_client(client);
        Fixture {
            dir,
            client_id,
            client_secret,
            app_redirect: Some(redirect.to_owned()),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs a command to its end; asserts that no secret of the fixture is in its output.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let output = run_postern(self.path(), args, env);
        self.assert_no_secret(&output.stdout, &output.stderr);
        output
    }

    fn assert_no_secret(&self, stdout: &[u8], stderr: &[u8]) {
        for (stream, text) in [("stdout", stdout), ("stderr", stderr)] {
            let text = String::from_utf8_lossy(text);
            assert!(
                !text.contains(&self.client_secret),
                "client secret in {stream}: {text}"
            );
            // The test provider's access and refresh tokens.
            assert!(
                !text.contains("pat_") && !text.contains("prt_"),
                "a token in {stream}: {text}"
            );
        }
    }

    /// `app add` for the test provider with the given secret flags; returns the app id.
    fn add_app(&self, secret_flags: &[&str], env: &[(&str, &str)]) -> String {
        let base = provider().base_url();
        let mut args = vec![
            "app",
            "add",
            "--provider",
            "generic",
            "--name",
            "CLI test app",
            "--client-id",
            &self.client_id,
            "--scope",
            "mail",
        ];
        if let Some(redirect) = &self.app_redirect {
            args.extend(["--redirect-uri", redirect]);
        }
        let endpoints = [
            ("--authorize-url", format!("{base}/authorize")),
            ("--token-url", format!("{base}/token")),
            ("--device-url", format!("{base}/device/code")),
            ("--revoke-url", format!("{base}/revoke")),
        ];
        for (flag, url) in &endpoints {
            args.extend([*flag, url.as_str()]);
        }
        args.extend(secret_flags);
        let output = self.run(&args, env);
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        let words: Vec<&str> = stdout.split_whitespace().collect();
        assert_eq!(
            (words[0], words.last().copied()),
            ("app", Some("registered")),
            "{stdout}"
        );
        words[1].to_owned()
    }

    /// Starts a command whose output the test reads while it runs.
    fn spawn(&self, args: &[String]) -> Running {
        self.start(args, Stdio::null())
    }

    /// Starts a command and writes `input` to its standard input, then closes it.
    async fn spawn_with_stdin(&self, args: &[String], input: &str) -> Running {
        let mut running = self.start(args, Stdio::piped());
        let mut stdin = running.child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        running
    }

    fn start(&self, args: &[String], stdin: Stdio) -> Running {
        let mut child = Command::new(BIN)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("POSTERN_DATA_DIR", self.path())
            .env("POSTERN_LOG", "info")
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            stderr.read_to_string(&mut text).await.unwrap();
            text
        });
        Running {
            lines: BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
            stderr,
            seen: Vec::new(),
        }
    }

    fn stdout_of(&self, args: &[&str]) -> String {
        let output = self.run(args, &[]);
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    }
}

/// A `postern` process that is still running.
struct Running {
    child: tokio::process::Child,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
    seen: Vec<String>,
}

impl Running {
    /// The next line of standard output that `wanted` accepts (within 30 s).
    async fn line_where(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                self.seen.push(line.clone());
                if wanted(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!("no such line; stdout so far: {:?}", self.seen),
        }
    }

    /// Waits for the exit (within 30 s): status, all of stdout, all of stderr.
    async fn finish(mut self) -> (ExitStatus, String, String) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("postern did not exit within 30 s")
            .unwrap();
        while let Some(line) = self.lines.next_line().await.unwrap() {
            self.seen.push(line);
        }
        (status, self.seen.join("\n"), self.stderr.await.unwrap())
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Plays the browser at the provider: returns where the provider sends it back.
async fn consent(authorize_url: &str) -> String {
    let response = no_redirects().get(authorize_url).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The `account <id> <email> connected` line's id.
fn connected_id(stdout: &str, email: &str) -> String {
    let line = stdout
        .lines()
        .find(|line| line.starts_with("account ") && line.ends_with(&format!(" {email} connected")))
        .unwrap_or_else(|| panic!("no `connected` line: {stdout}"));
    line.split_whitespace().nth(1).unwrap().to_owned()
}

#[tokio::test]
async fn an_oauth_account_is_added_through_the_browser_on_a_loopback_listener_and_removed() {
    let redirect = format!("http://127.0.0.1:{}/callback", free_loopback_port());
    let fixture = Fixture::new(&redirect, |_| {});
    let secret_file = fixture.path().join("client-secret");
    std::fs::write(&secret_file, format!("{}\n", fixture.client_secret)).unwrap();
    let app_id = fixture.add_app(
        &["--client-secret-file", secret_file.to_str().unwrap()],
        &[],
    );
    let apps = fixture.stdout_of(&["app", "list"]);
    assert!(
        apps.contains(&app_id) && apps.contains(&fixture.client_id),
        "{apps}"
    );

    let email = format!("{}@example.test", unique("cli-browser"));
    let mut args = [
        "account",
        "add",
        "--email",
        &email,
        "--app",
        &app_id,
        "--timeout",
        "60",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(mail_server_flags());
    let mut cli = fixture.spawn(&args);
    let link = cli
        .line_where(|line| line.trim_start().starts_with("http"))
        .await;

    // A return this data dir never issued (another program, a stale tab) does not end the wait.
    let forged = no_redirects()
        .get(format!("{redirect}?state=forged&code=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let location = consent(link.trim()).await;
    assert!(location.starts_with(&redirect), "{location}");
    let page = no_redirects().get(&location).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!("{email} is connected"))
    );

    let (status, stdout, stderr) = cli.finish().await;
    fixture.assert_no_secret(stdout.as_bytes(), stderr.as_bytes());
    assert!(status.success(), "{stdout}\n{stderr}");
    let id = connected_id(&stdout, &email);

    let list = fixture.stdout_of(&["account", "list"]);
    assert!(
        list.contains(&format!("{id}  {email}  connected")),
        "{list}"
    );
    let shown = fixture.stdout_of(&["account", "show", &id]);
    for expected in [
        "state:            connected",
        "token expires:",
        "(in 59 min)",
        "mail",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in {shown}");
    }
    assert!(
        shown.contains(&format!("oauth2 (app {app_id}, xoauth2)")),
        "{shown}"
    );

    // Removing revokes the grant at the provider first; the app can go once no account uses it.
    assert_eq!(
        fixture.stdout_of(&["account", "remove", &id]),
        format!("account {id} removed\n")
    );
    assert_eq!(provider().counters_for(&fixture.client_id).revoke, 1);
    assert!(!fixture.stdout_of(&["account", "list"]).contains(&id));
    assert_eq!(
        fixture.stdout_of(&["app", "remove", &app_id]),
        format!("app {app_id} removed\n")
    );
}

#[tokio::test]
async fn while_the_server_runs_on_the_callback_address_the_server_takes_the_return() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let callback = format!("http://{}/oauth/callback", server.address);
    let mut fixture = Fixture::in_dir(dir, &callback, |_| {});
    // No redirect URI of its own: the app returns to the server's callback, where the server
    // listens already, so the command cannot and must not take the return itself.
    fixture.app_redirect = None;
    let app_id = fixture.add_app(
        &["--client-secret-env", "CLIENT_SECRET"],
        &[("CLIENT_SECRET", &fixture.client_secret)],
    );

    let email = format!("{}@example.test", unique("cli-via-server"));
    let mut args = ["account", "add", "--email", &email, "--app", &app_id]
        .map(str::to_owned)
        .to_vec();
    args.extend(["--listen".to_owned(), server.address.clone()]);
    args.extend(mail_server_flags());
    let mut cli = fixture.spawn(&args);
    let link = cli
        .line_where(|line| line.trim_start().starts_with("http"))
        .await;
    cli.line_where(|line| line.contains("waiting for the Postern server there"))
        .await;
    let location = consent(link.trim()).await;
    assert!(location.starts_with(&callback), "{location}");
    let page = no_redirects().get(&location).send().await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());

    let (status, stdout, stderr) = cli.finish().await;
    assert!(status.success(), "{stdout}\n{stderr}");
    connected_id(&stdout, &email);
    let server_log = server.stop().await;
    fixture.assert_no_secret(server_log.as_bytes(), b"");
}

#[tokio::test]
async fn a_declined_consent_fails_with_the_providers_words_and_keeps_nothing() {
    let redirect = format!("http://127.0.0.1:{}/callback", free_loopback_port());
    let fixture = Fixture::new(&redirect, |_| {});
    let app_id = fixture.add_app(
        &["--client-secret-env", "CLIENT_SECRET"],
        &[("CLIENT_SECRET", &fixture.client_secret)],
    );
    let email = format!("{}@example.test", unique("cli-declines"));
    provider().set_user_decision(&email, Decision::Deny);
    let mut args = ["account", "add", "--email", &email, "--app", &app_id]
        .map(str::to_owned)
        .to_vec();
    args.extend(mail_server_flags());
    let mut cli = fixture.spawn(&args);
    let link = cli
        .line_where(|line| line.trim_start().starts_with("http"))
        .await;
    let location = consent(link.trim()).await;
    let page = no_redirects().get(&location).send().await.unwrap();
    assert_eq!(page.status(), 400);

    let (status, stdout, stderr) = cli.finish().await;
    fixture.assert_no_secret(stdout.as_bytes(), stderr.as_bytes());
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("account {email} was not connected"))
            && stderr.contains("authorization was declined: access_denied"),
        "{stderr}"
    );
    assert_eq!(fixture.stdout_of(&["account", "list"]), "");
}

#[tokio::test]
async fn the_device_flow_connects_the_account_of_the_one_app_of_a_provider() {
    let fixture = Fixture::new("http://127.0.0.1:9/unused", |client| {
        client.device_poll_interval = Duration::from_millis(200);
    });
    fixture.add_app(
        &["--client-secret-env", "CLIENT_SECRET"],
        &[("CLIENT_SECRET", &fixture.client_secret)],
    );
    let email = format!("{}@example.test", unique("cli-device"));
    let mut args = [
        "account",
        "add",
        "--email",
        &email,
        "--provider",
        "generic",
        "--device",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(mail_server_flags());
    let mut cli = fixture.spawn(&args);
    let page = cli
        .line_where(|line| line.trim_start().starts_with("page:"))
        .await;
    assert!(page.contains(&provider().base_url()), "{page}");
    let code = cli
        .line_where(|line| line.trim_start().starts_with("code:"))
        .await;
    let code = code.trim_start().trim_start_matches("code:").trim();
    provider().approve_device(code, &email).unwrap();

    let (status, stdout, stderr) = cli.finish().await;
    fixture.assert_no_secret(stdout.as_bytes(), stderr.as_bytes());
    assert!(status.success(), "{stdout}\n{stderr}");
    let id = connected_id(&stdout, &email);
    assert!(
        provider()
            .counters_for(&fixture.client_id)
            .token_device_code
            >= 1
    );
    let list = fixture.stdout_of(&["account", "list"]);
    assert!(
        list.contains(&format!("{id}  {email}  connected")),
        "{list}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_the_servers_words_and_a_right_one_connects() {
    let fixture = Fixture::new("http://127.0.0.1:9/unused", |_| {});
    let email = format!("{}@example.test", unique("cli-password"));
    let (right, wrong) = (unique("right-password"), unique("wrong-password"));
    dovecot().add_password_user(&email, &right).unwrap();
    let servers = mail_server_flags();
    let servers: Vec<&str> = servers.iter().map(String::as_str).collect();

    let mut args = vec![
        "account",
        "add",
        "--email",
        &email,
        "--password-env",
        "MAIL_PASSWORD",
    ];
    args.extend(&servers);
    let refused = fixture.run(&args, &[("MAIL_PASSWORD", &wrong)]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        stderr.contains(&format!("account {email} was not added"))
            && stderr.contains("the mail server refused the login")
            && stderr.contains("AUTHENTICATIONFAILED"),
        "{stderr}"
    );
    assert!(!stderr.contains(&wrong) && !String::from_utf8_lossy(&refused.stdout).contains(&wrong));
    assert_eq!(fixture.stdout_of(&["account", "list"]), "");

    // The right password, piped in.
    let mut args = ["account", "add", "--email", &email, "--password-stdin"]
        .map(str::to_owned)
        .to_vec();
    args.extend(mail_server_flags());
    let cli = fixture.spawn_with_stdin(&args, &format!("{right}\n")).await;
    let (status, stdout, stderr) = cli.finish().await;
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains(&right) && !stderr.contains(&right));
    let id = connected_id(&stdout, &email);
    let shown = fixture.stdout_of(&["account", "show", &id]);
    assert!(
        shown.contains("password (user: the email address)"),
        "{shown}"
    );
    assert!(!shown.contains("token expires"), "{shown}");
}

#[test]
fn provider_lookup_names_what_it_found_when_it_is_not_exactly_one_app() {
    let fixture = Fixture::new("http://127.0.0.1:9/unused", |_| {});
    let add = [
        "account",
        "add",
        "--email",
        "x@example.test",
        "--provider",
        "generic",
    ];
    let none = fixture.run(&add, &[]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no OAuth app of provider generic"),
        "{none:?}"
    );
    // Standard input is empty here: these are public clients, without a secret.
    let first = fixture.add_app(&[], &[]);
    let second = fixture.add_app(&[], &[]);
    let several = fixture.run(&add, &[]);
    let stderr = String::from_utf8_lossy(&several.stderr);
    assert_eq!(several.status.code(), Some(1));
    assert!(
        stderr.contains("2 OAuth apps of provider generic")
            && stderr.contains(&first)
            && stderr.contains(&second)
            && stderr.contains("choose one with --app"),
        "{stderr}"
    );
}
