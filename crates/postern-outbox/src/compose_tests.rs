//! Composition: what the built message holds, read back with mail-parser, and every refusal.

#![allow(clippy::unwrap_used)]

use super::*;
use mail_parser::{MessageParser, MimeHeaders};

const ACCOUNT: &str = "me@example.test";

fn request() -> SendRequest {
    SendRequest {
        to: vec!["bob@example.test".into()],
        subject: Some("Hello".into()),
        text: Some("Hi Bob".into()),
        ..SendRequest::default()
    }
}

fn fields(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn from_defaults_to_the_account_and_the_message_id_uses_its_domain() {
    let composed = compose(ACCOUNT, &request()).unwrap();
    assert_eq!(composed.envelope.from, ACCOUNT);
    assert_eq!(composed.envelope.recipients, ["bob@example.test"]);
    let (local, domain) = composed.message_id.split_once('@').unwrap();
    assert_eq!(domain, "example.test");
    assert_eq!(local.len(), 32, "a simple UUID: {local}");
    let parsed = MessageParser::default().parse(&composed.raw).unwrap();
    assert_eq!(parsed.message_id(), Some(composed.message_id.as_str()));
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some(ACCOUNT)
    );
    assert_eq!(parsed.subject(), Some("Hello"));
    assert_eq!(parsed.body_text(0).as_deref(), Some("Hi Bob"));
    assert!(parsed.date().is_some());
}

#[test]
fn bcc_is_in_the_envelope_and_nowhere_in_the_message() {
    let mut req = request();
    req.from = Some(Address::Named {
        name: Some("Alias".into()),
        email: "alias@other.test".into(),
    });
    req.cc = vec!["carol@example.test".into(), "BOB@example.test".into()];
    req.bcc = vec!["hidden@example.test".into()];
    let composed = compose(ACCOUNT, &req).unwrap();
    assert_eq!(composed.envelope.from, "alias@other.test");
    assert_eq!(
        composed.envelope.recipients,
        [
            "bob@example.test",
            "carol@example.test",
            "hidden@example.test"
        ]
    );
    assert!(composed.message_id.ends_with("@other.test"));
    let text = String::from_utf8_lossy(&composed.raw);
    assert!(!text.contains("hidden@"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("\nbcc:"), "{text}");
}

#[test]
fn replies_carry_in_reply_to_and_the_whole_thread_in_references() {
    let mut req = request();
    req.in_reply_to = Some(InReplyTo {
        message_id: "<parent@example.test>".into(),
        references: vec!["<root@example.test>".into(), "mid@example.test".into()],
    });
    let composed = compose(ACCOUNT, &req).unwrap();
    let parsed = MessageParser::default().parse(&composed.raw).unwrap();
    assert_eq!(parsed.in_reply_to().as_text(), Some("parent@example.test"));
    let references: Vec<&str> = parsed
        .references()
        .as_text_list()
        .unwrap()
        .iter()
        .map(|r| r.as_ref())
        .collect();
    assert_eq!(
        references,
        [
            "root@example.test",
            "mid@example.test",
            "parent@example.test"
        ]
    );
}

#[test]
fn attachments_and_inline_parts_keep_their_bytes() {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut req = request();
    req.html = Some("<p>Logo: <img src=\"cid:logo\"></p>".into());
    req.attachments = vec![
        Attachment {
            filename: Some("data.bin".into()),
            content_type: Some("application/octet-stream".into()),
            content_base64: STANDARD.encode(&bytes),
            content_id: None,
        },
        Attachment {
            filename: None,
            content_type: Some("image/png".into()),
            content_base64: STANDARD.encode(b"\x89PNG fake"),
            content_id: Some("<logo>".into()),
        },
    ];
    req.headers.insert("X-Campaign".into(), "spring".into());
    let composed = compose(ACCOUNT, &req).unwrap();
    let parsed = MessageParser::default().parse(&composed.raw).unwrap();
    assert_eq!(
        parsed.header_raw("X-Campaign").map(str::trim),
        Some("spring")
    );
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0].attachment_name(), Some("data.bin"));
    assert_eq!(attachments[0].contents(), bytes.as_slice());
    assert_eq!(attachments[1].content_id(), Some("logo"));
    assert_eq!(attachments[1].contents(), b"\x89PNG fake");
    assert!(parsed.body_html(0).unwrap().contains("cid:logo"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut req = SendRequest {
        from: Some("not-an-address".into()),
        to: vec!["ok@example.test".into(), "bad address@example.test".into()],
        subject: Some("two\r\nlines".into()),
        ..SendRequest::default()
    };
    req.attachments = vec![Attachment {
        content_base64: "!!not base64!!".into(),
        ..Attachment::default()
    }];
    req.headers.insert("Bcc".into(), "x@example.test".into());
    req.headers
        .insert("X-Evil".into(), "a\r\nBcc: x@example.test".into());
    req.headers.insert("Bad Name".into(), "v".into());
    let errors = compose(ACCOUNT, &req).unwrap_err();
    assert_eq!(
        fields(&errors),
        [
            "from",
            "to[1]",
            "subject",
            "headers.Bad Name",
            "headers.Bcc",
            "headers.X-Evil",
            "attachments[0].content_base64"
        ]
    );
    assert!(
        errors[0].message.contains("has no @"),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_message_needs_a_recipient() {
    let req = SendRequest {
        subject: Some("nobody".into()),
        ..SendRequest::default()
    };
    let errors = compose(ACCOUNT, &req).unwrap_err();
    assert_eq!(fields(&errors), ["to"]);
    let bcc_only = SendRequest {
        bcc: vec!["quiet@example.test".into()],
        ..SendRequest::default()
    };
    let composed = compose(ACCOUNT, &bcc_only).unwrap();
    assert_eq!(composed.envelope.recipients, ["quiet@example.test"]);
}

#[test]
fn bad_reply_ids_and_mime_types_are_named() {
    let mut req = request();
    req.in_reply_to = Some(InReplyTo {
        message_id: "<>".into(),
        references: vec![],
    });
    req.attachments = vec![Attachment {
        content_type: Some("not a type".into()),
        content_base64: "AAAA".into(),
        content_id: Some("has space".into()),
        ..Attachment::default()
    }];
    let errors = compose(ACCOUNT, &req).unwrap_err();
    assert_eq!(
        fields(&errors),
        [
            "in_reply_to.message_id",
            "attachments[0].content_type",
            "attachments[0].content_id"
        ]
    );
}

#[test]
fn json_bodies_choose_raw_or_structured() {
    let raw = Submission::from_json(serde_json::json!({ "raw_base64": "AAAA" })).unwrap();
    assert!(matches!(raw, Submission::Raw(_)));
    let structured = Submission::from_json(serde_json::json!({
        "to": ["a@example.test", {"name": "B", "email": "b@example.test"}],
        "subject": "s"
    }))
    .unwrap();
    let Submission::Structured(request) = structured else {
        panic!("expected a structured request");
    };
    assert_eq!(request.to[1].name(), Some("B"));
    let errors = Submission::from_json(serde_json::json!({ "too": ["x"] })).unwrap_err();
    assert_eq!(errors[0].field, "body");
    assert!(errors[0].message.contains("too"), "{}", errors[0].message);
}
