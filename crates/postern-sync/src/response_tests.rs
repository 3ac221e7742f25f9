//! Tests of response interpretation: async-imap's error text and parsed responses as Dovecot and
//! other servers send them, and every greeting shape.

#![allow(clippy::unwrap_used)]

use super::*;

fn parse(line: &[u8]) -> Response<'_> {
    Response::parse(line).unwrap().1
}

#[test]
fn dovecot_authenticationfailed_from_async_imap_text() {
    let reply = ServerReply::from_async_imap(
        r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#,
    );
    assert_eq!(reply.response_code.as_deref(), Some("AUTHENTICATIONFAILED"));
    assert_eq!(
        reply.server_text,
        "[AUTHENTICATIONFAILED] Authentication failed."
    );
}

#[test]
fn dovecot_unavailable_from_async_imap_text() {
    let reply = ServerReply::from_async_imap(
        r#"code: None, info: Some("[UNAVAILABLE] Temporary authentication failure. [host:2026-01-01 10:00:00]")"#,
    );
    assert_eq!(reply.response_code.as_deref(), Some("UNAVAILABLE"));
    assert!(reply.server_text.ends_with("10:00:00]"));
}

#[test]
fn a_code_imap_proto_knows_is_named_and_put_back_in_the_text() {
    let reply = ServerReply::from_async_imap(
        r#"code: Some(Alert), info: Some("Too many simultaneous connections")"#,
    );
    assert_eq!(reply.response_code.as_deref(), Some("ALERT"));
    assert_eq!(
        reply.server_text,
        "[ALERT] Too many simultaneous connections"
    );
}

#[test]
fn escaped_quotes_and_no_information_are_handled() {
    let reply =
        ServerReply::from_async_imap(r#"code: None, info: Some("Mailbox \"X\" \\ gone\n")"#);
    assert_eq!(reply.server_text, "Mailbox \"X\" \\ gone");
    assert_eq!(reply.response_code, None);
    let empty = ServerReply::from_async_imap("code: None, info: None");
    assert_eq!(empty.server_text, "");
    assert_eq!(unescape_debug(r"caf\u{e9}"), "café");
}

#[test]
fn unknown_shapes_are_kept_whole_without_a_code() {
    let reply = ServerReply::from_async_imap("something else entirely");
    assert_eq!(reply.response_code, None);
    assert_eq!(reply.server_text, "something else entirely");
}

#[test]
fn reply_from_a_parsed_tagged_response() {
    let Response::Done { outcome, .. } = parse(b"a1 NO [UNAVAILABLE] Try later\r\n") else {
        panic!("not tagged");
    };
    let reply = ServerReply::from_outcome(&outcome);
    assert_eq!(reply.response_code.as_deref(), Some("UNAVAILABLE"));
    assert_eq!(reply.server_text, "[UNAVAILABLE] Try later");
}

#[test]
fn greeting_with_capabilities() {
    let caps = interpret_greeting(&parse(
        b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready.\r\n",
    ))
    .unwrap()
    .unwrap();
    assert!(caps.starttls());
    assert_eq!(caps.sasl_mechanisms(), ["PLAIN"]);
    assert_eq!(interpret_greeting(&parse(b"* OK ready\r\n")).unwrap(), None);
}

#[test]
fn bye_and_preauth_greetings_are_refused() {
    let err = interpret_greeting(&parse(b"* BYE Too many connections\r\n")).unwrap_err();
    assert!(
        matches!(&err, ImapError::GreetingRefused { server_text } if server_text == "Too many connections")
    );
    assert!(err.is_transient());
    let err = interpret_greeting(&parse(b"* PREAUTH welcome\r\n")).unwrap_err();
    assert!(matches!(
        err,
        ImapError::Protocol {
            stage: Stage::Greeting,
            ..
        }
    ));
    let err = interpret_greeting(&parse(b"a1 OK done\r\n")).unwrap_err();
    assert!(matches!(err, ImapError::Protocol { .. }));
}

#[test]
fn quotes_are_cut() {
    let long = "x".repeat(500);
    assert_eq!(quote(&long).chars().count(), MAX_QUOTED + 1);
    assert_eq!(quote("short"), "short");
}
