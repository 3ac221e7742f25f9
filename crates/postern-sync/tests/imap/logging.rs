//! Secrets never reach a log line, even with every logger turned up to trace.
//!
//! async-imap traces each command it writes through the `log` crate (`encode: input: ...`), which
//! would include a `LOGIN` password and the base64 SASL response carrying the token.

use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use postern_sync::{OAuthMechanism, Security, authenticate, connect};
use secrecy::SecretString;

use crate::support::{Line, Scripted, oauth, password, timeouts, within};

/// Records every `log` record of the test binary.
struct Recorder(Mutex<Vec<String>>);

impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        self.0.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<&'static Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder: &'static Recorder = Box::leak(Box::new(Recorder(Mutex::new(Vec::new()))));
        log::set_logger(recorder).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
        recorder
    })
}

fn logged_containing(needle: &str) -> Vec<String> {
    let lines = recorder().0.lock().unwrap();
    lines
        .iter()
        .filter(|line| line.contains(needle))
        .cloned()
        .collect()
}

#[tokio::test]
async fn passwords_and_tokens_are_not_logged_at_any_level() {
    recorder();
    within(async {
        let token = "tok-NEVER-LOGGED";
        let server = Scripted::start(vec![
            Line::Send("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] fake server ready"),
            Line::Receive,
            Line::Send("+ "),
            Line::Receive,
            Line::Send("A0001 NO [AUTHENTICATIONFAILED] no"),
        ])
        .await;
        let endpoint =
            postern_sync::ImapEndpoint::new("127.0.0.1", server.addr.port(), Security::None);
        let client = connect(&endpoint, &timeouts()).await.unwrap();
        let login = oauth(
            "a@example.test",
            SecretString::from(token),
            OAuthMechanism::XOAuth2,
        );
        authenticate(client, &login).await.unwrap_err();
        let sent = server.received().await;
        let sasl = base64::engine::general_purpose::STANDARD.encode(format!(
            "user=a@example.test\x01auth=Bearer {token}\x01\x01"
        ));
        assert_eq!(sent[1], sasl, "the token did go out");

        let server = Scripted::start(vec![
            Line::Send("* OK [CAPABILITY IMAP4rev1] fake server ready"),
            Line::Receive,
            Line::Send("A0001 NO [AUTHENTICATIONFAILED] no"),
        ])
        .await;
        let endpoint =
            postern_sync::ImapEndpoint::new("127.0.0.1", server.addr.port(), Security::None);
        let client = connect(&endpoint, &timeouts()).await.unwrap();
        authenticate(client, &password("bob", "pw-NEVER-LOGGED"))
            .await
            .unwrap_err();
        assert!(server.received().await[0].contains("pw-NEVER-LOGGED"));

        log::debug!(target: "probe", "the recorder is listening");
        assert_eq!(logged_containing("the recorder is listening").len(), 1);
        assert_eq!(logged_containing("NEVER-LOGGED"), Vec::<String>::new());
        assert_eq!(logged_containing(&sasl), Vec::<String>::new());
    })
    .await;
}
