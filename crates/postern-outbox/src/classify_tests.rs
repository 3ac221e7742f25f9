//! The classification table, row by row, with replies seen from Dovecot and the big providers.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::error::Stage;
use crate::smtp::RecipientReply;
use postern_auth::sasl::decode_oauth_error;

fn reply(code: u16, text: &str) -> Reply {
    Reply::new(code, vec![text.to_owned()])
}

fn pending(addresses: &[&str]) -> Vec<RecipientResult> {
    addresses
        .iter()
        .map(|a| RecipientResult::pending(*a))
        .collect()
}

fn transaction(rcpts: &[(&str, Reply)], data: Option<Reply>) -> Transaction {
    Transaction {
        recipients: rcpts
            .iter()
            .map(|(address, reply)| RecipientReply {
                address: (*address).to_owned(),
                reply: reply.clone(),
            })
            .collect(),
        data,
    }
}

#[test]
fn all_accepted_is_sent_with_the_final_reply_recorded() {
    let tx = transaction(
        &[
            ("a@x", reply(250, "2.1.5 OK")),
            ("b@x", reply(250, "2.1.5 OK")),
        ],
        Some(reply(250, "2.0.0 OK queued")),
    );
    let (results, outcome) = classify_transaction(&pending(&["a@x", "b@x"]), &tx);
    assert_eq!(outcome, Outcome::Sent);
    assert!(
        results
            .iter()
            .all(|r| r.status == RecipientStatus::Accepted)
    );
    assert_eq!(results[0].reply.as_deref(), Some("250 2.0.0 OK queued"));
}

#[test]
fn a_permanent_refusal_fails_with_the_servers_words() {
    let refused = reply(550, "5.7.1 Rejected (test sink PermFail)");
    let tx = transaction(&[("a@x", refused)], None);
    let (results, outcome) = classify_transaction(&pending(&["a@x"]), &tx);
    assert_eq!(results[0].status, RecipientStatus::Rejected);
    assert_eq!(results[0].code, Some(550));
    assert_eq!(
        outcome,
        Outcome::Fail("550 5.7.1 Rejected (test sink PermFail) (a@x)".to_owned())
    );
}

#[test]
fn a_temporary_refusal_retries_and_groups_recipients_by_reply() {
    let later = reply(451, "4.3.0 Try again later");
    let tx = transaction(&[("a@x", later.clone()), ("b@x", later)], None);
    let (_, outcome) = classify_transaction(&pending(&["a@x", "b@x"]), &tx);
    assert_eq!(
        outcome,
        Outcome::Retry("451 4.3.0 Try again later (a@x, b@x)".to_owned())
    );
}

#[test]
fn mixed_results_retry_only_the_deferred_and_keep_the_rest() {
    let tx = transaction(
        &[
            ("ok@x", reply(250, "OK")),
            ("later@x", reply(452, "4.2.2 Mailbox full")),
            ("gone@x", reply(550, "5.1.1 No such user")),
        ],
        Some(reply(250, "2.0.0 Queued")),
    );
    let all = pending(&["ok@x", "later@x", "gone@x"]);
    let (results, outcome) = classify_transaction(&all, &tx);
    let statuses: Vec<_> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            RecipientStatus::Accepted,
            RecipientStatus::Deferred,
            RecipientStatus::Rejected
        ]
    );
    assert!(
        matches!(outcome, Outcome::Retry(ref why) if why.contains("later@x") && !why.contains("ok@x"))
    );

    // The retry goes to `later@x` only; the others keep their results.
    let retry = transaction(
        &[("later@x", reply(250, "OK"))],
        Some(reply(250, "2.0.0 Queued")),
    );
    let (results, outcome) = classify_transaction(&results, &retry);
    assert_eq!(outcome, Outcome::Sent);
    assert_eq!(results[1].status, RecipientStatus::Accepted);
    assert_eq!(results[2].status, RecipientStatus::Rejected);
}

#[test]
fn the_final_reply_decides_for_accepted_recipients() {
    let tx = transaction(
        &[("a@x", reply(250, "OK"))],
        Some(reply(552, "5.3.4 Message too big")),
    );
    let (results, outcome) = classify_transaction(&pending(&["a@x"]), &tx);
    assert_eq!(results[0].status, RecipientStatus::Rejected);
    assert!(matches!(outcome, Outcome::Fail(ref why) if why.contains("5.3.4")));
    let tx = transaction(
        &[("a@x", reply(250, "OK"))],
        Some(reply(451, "4.4.0 Relay down")),
    );
    let (_, outcome) = classify_transaction(&pending(&["a@x"]), &tx);
    assert!(matches!(outcome, Outcome::Retry(_)));
}

#[test]
fn network_errors_and_4xx_retry_5xx_fail() {
    let refused = SmtpError::Connect {
        host: "h".into(),
        port: 587,
        source: std::io::ErrorKind::ConnectionRefused.into(),
    };
    assert!(matches!(classify_error(&refused), Outcome::Retry(_)));
    let timeout = SmtpError::Timeout {
        stage: Stage::DataEnd,
        after: std::time::Duration::from_secs(1),
    };
    assert!(matches!(classify_error(&timeout), Outcome::Retry(_)));
    let busy = SmtpError::Rejected {
        stage: Stage::Greeting,
        reply: reply(421, "4.3.2 Service not available"),
    };
    assert!(matches!(classify_error(&busy), Outcome::Retry(_)));
    let unavailable = SmtpError::AuthRejected {
        reply: reply(454, "4.7.0 Temporary authentication failure"),
        challenge: None,
    };
    assert!(matches!(classify_error(&unavailable), Outcome::Retry(_)));
    let quota = SmtpError::Rejected {
        stage: Stage::MailFrom,
        reply: reply(550, "5.4.5 Daily user sending limit exceeded"),
    };
    assert!(
        matches!(classify_error(&quota), Outcome::Fail(ref why) if why.contains("5.4.5 Daily"))
    );
    let untrusted = SmtpError::Tls {
        host: "h".into(),
        detail: "invalid peer certificate: UnknownIssuer".into(),
        untrusted_certificate: true,
    };
    assert!(matches!(classify_error(&untrusted), Outcome::Fail(_)));
}

#[test]
fn oauth_challenges_decide_between_refresh_and_failure() {
    let dovecot =
        decode_oauth_error(br#"{"status":"401","schemes":"bearer","scope":"mail"}"#).unwrap();
    let expired = SmtpError::AuthRejected {
        reply: reply(535, "5.7.8 Authentication failed."),
        challenge: Some(Box::new(dovecot)),
    };
    assert_eq!(classify_error(&expired), Outcome::TokenRejected);
    let google = decode_oauth_error(
        br#"{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}"#,
    )
    .unwrap();
    let scope = SmtpError::AuthRejected {
        reply: reply(535, "5.7.8 Username and Password not accepted."),
        challenge: Some(Box::new(google)),
    };
    let Outcome::Fail(why) = classify_error(&scope) else {
        panic!("scope problems are not retried");
    };
    assert!(why.contains("https://mail.google.com/"), "{why}");
    assert!(why.contains(r#""status":"400""#), "the JSON is kept: {why}");
    let password = SmtpError::AuthRejected {
        reply: reply(535, "5.7.8 Authentication failed."),
        challenge: None,
    };
    assert!(
        matches!(classify_error(&password), Outcome::Fail(ref why) if why.contains("535 5.7.8"))
    );
}
