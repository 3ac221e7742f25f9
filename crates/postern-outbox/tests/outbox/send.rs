//! Sends through a real Dovecot submission service to the shared sink: what arrives is parsed
//! back and compared with what was asked for.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_parser::{MessageParser, MimeHeaders};
use postern_outbox::{Address, Attachment, InReplyTo, RawRequest, SendRequest};
use postern_store::{EVENT_MESSAGE_SENT, OutboxStatus, RecipientStatus, SaslMechanism};

use crate::support::{WAIT, World, fast_config, happy, happy_sink, provider, received_by, unique};

#[tokio::test]
async fn a_structured_message_arrives_as_built_and_bcc_only_in_the_envelope() {
    let mut world = World::new(fast_config()).await;
    let me = unique("sender");
    let account = world.password_account(happy(), &me).await;
    world.start_workers();
    let (to, cc, hidden) = (unique("to"), unique("cc"), unique("hidden"));
    let request = SendRequest {
        from: Some(Address::Named {
            name: Some("Sender Name".into()),
            email: me.clone(),
        }),
        to: vec![to.as_str().into()],
        cc: vec![cc.as_str().into()],
        bcc: vec![hidden.as_str().into()],
        reply_to: vec!["replies@example.test".into()],
        subject: Some("Grüße from the outbox".into()),
        text: Some("Plain text\n.with a leading dot line\n".into()),
        html: Some("<p>HTML body</p>".into()),
        headers: [("X-Campaign".to_owned(), "spring".to_owned())].into(),
        ..SendRequest::default()
    };
    let queued = world
        .outbox
        .submit(&account, request, None, None)
        .await
        .unwrap();
    assert_eq!(queued.status, OutboxStatus::Queued);
    assert!(queued.created);

    let item = world.wait_for_status(&queued.id, OutboxStatus::Sent).await;
    let received = happy_sink().wait_for_rcpt(&hidden, WAIT).await.unwrap();
    assert_eq!(received.mail_from, me);
    let mut rcpts = received.rcpt_to.clone();
    rcpts.sort();
    let mut expected = vec![to.clone(), cc.clone(), hidden.clone()];
    expected.sort();
    assert_eq!(
        rcpts, expected,
        "one transaction to every recipient, Bcc included"
    );

    let stored = world.outbox.raw_message(&queued.id).await.unwrap().unwrap();
    assert!(
        received.data.ends_with(&stored),
        "the relayed bytes end with the stored message"
    );
    let text = String::from_utf8_lossy(&received.data);
    assert!(!text.contains(&hidden), "the Bcc address leaked: {text}");
    assert!(
        !text.to_ascii_lowercase().contains("\nbcc:"),
        "a Bcc header leaked"
    );

    let parsed = MessageParser::default().parse(&received.data).unwrap();
    assert_eq!(parsed.message_id(), Some(queued.message_id.as_str()));
    assert_eq!(parsed.subject(), Some("Grüße from the outbox"));
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("Sender Name"), Some(me.as_str()))
    );
    assert_eq!(
        parsed.to().unwrap().first().unwrap().address(),
        Some(to.as_str())
    );
    assert_eq!(
        parsed.cc().unwrap().first().unwrap().address(),
        Some(cc.as_str())
    );
    assert_eq!(
        parsed.reply_to().unwrap().first().unwrap().address(),
        Some("replies@example.test")
    );
    // Text parts go out with CRLF line endings; the dot line survived dot-stuffing.
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("Plain text\r\n.with a leading dot line\r\n")
    );
    assert_eq!(parsed.body_html(0).as_deref(), Some("<p>HTML body</p>"));
    assert_eq!(
        parsed.header_raw("X-Campaign").map(str::trim),
        Some("spring")
    );

    assert_eq!(item.attempts, 1);
    assert!(item.sent_at.is_some());
    assert!(
        item.recipients
            .iter()
            .all(|r| r.status == RecipientStatus::Accepted)
    );
    let events = world.events(&account, EVENT_MESSAGE_SENT).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload["message_id"], queued.message_id);
    assert_eq!(events[0].payload["outbox_id"], queued.id.to_string());
}

#[tokio::test]
async fn a_raw_message_arrives_byte_for_byte_without_its_bcc_header() {
    let mut world = World::new(fast_config()).await;
    let me = unique("raw-sender");
    let account = world.password_account(happy(), &me).await;
    world.start_workers();
    let (to, hidden) = (unique("raw-to"), unique("raw-bcc"));
    let raw = format!(
        "From: {me}\r\nTo: {to}\r\nBcc: {hidden}\r\nSubject: raw\r\n\
         Message-ID: <raw-{}@example.test>\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         line one\r\n.dot line\r\n",
        uuid::Uuid::new_v4().simple()
    );
    let request = RawRequest {
        raw_base64: STANDARD.encode(&raw),
        envelope: None,
    };
    let queued = world
        .outbox
        .submit(&account, request, None, None)
        .await
        .unwrap();
    world.wait_for_status(&queued.id, OutboxStatus::Sent).await;
    let received = happy_sink().wait_for_rcpt(&hidden, WAIT).await.unwrap();
    let mut rcpts = received.rcpt_to.clone();
    rcpts.sort();
    let mut expected = vec![to.clone(), hidden.clone()];
    expected.sort();
    assert_eq!(rcpts, expected);
    let without_bcc = raw.replace(&format!("Bcc: {hidden}\r\n"), "");
    assert!(
        received.data.ends_with(without_bcc.as_bytes()),
        "received:\n{}",
        String::from_utf8_lossy(&received.data)
    );
    assert!(queued.message_id.starts_with("raw-"));
}

#[tokio::test]
async fn a_reply_carries_the_thread_headers() {
    let mut world = World::new(fast_config()).await;
    let me = unique("replier");
    let account = world.password_account(happy(), &me).await;
    world.start_workers();
    let to = unique("original-sender");
    let request = SendRequest {
        to: vec![to.as_str().into()],
        subject: Some("Re: question".into()),
        text: Some("Answer".into()),
        in_reply_to: Some(InReplyTo {
            message_id: "<question@example.test>".into(),
            references: vec!["<first@example.test>".into()],
        }),
        ..SendRequest::default()
    };
    let queued = world
        .outbox
        .submit(&account, request, None, None)
        .await
        .unwrap();
    let received = happy_sink().wait_for_rcpt(&to, WAIT).await.unwrap();
    let parsed = MessageParser::default().parse(&received.data).unwrap();
    assert_eq!(parsed.message_id(), Some(queued.message_id.as_str()));
    assert_eq!(
        parsed.in_reply_to().as_text(),
        Some("question@example.test")
    );
    let references: Vec<String> = parsed
        .references()
        .as_text_list()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(references, ["first@example.test", "question@example.test"]);
}

#[tokio::test]
async fn attachments_arrive_with_their_exact_bytes() {
    let mut world = World::new(fast_config()).await;
    let me = unique("attacher");
    let account = world.password_account(happy(), &me).await;
    world.start_workers();
    let to = unique("attachment-to");
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let csv = b"a,b\r\n.1,2\r\n".to_vec();
    let request = SendRequest {
        to: vec![to.as_str().into()],
        subject: Some("files".into()),
        html: Some("<img src=\"cid:chart\">".into()),
        attachments: vec![
            Attachment {
                filename: Some("blob.bin".into()),
                content_type: Some("application/octet-stream".into()),
                content_base64: STANDARD.encode(&binary),
                content_id: None,
            },
            Attachment {
                filename: Some("data.csv".into()),
                content_type: Some("text/csv".into()),
                content_base64: STANDARD.encode(&csv),
                content_id: None,
            },
            Attachment {
                filename: None,
                content_type: Some("image/png".into()),
                content_base64: STANDARD.encode(b"\x89PNG\r\n\x1a\n"),
                content_id: Some("chart".into()),
            },
        ],
        ..SendRequest::default()
    };
    world
        .outbox
        .submit(&account, request, None, None)
        .await
        .unwrap();
    let received = happy_sink().wait_for_rcpt(&to, WAIT).await.unwrap();
    let parsed = MessageParser::default().parse(&received.data).unwrap();
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 3);
    assert_eq!(attachments[0].attachment_name(), Some("blob.bin"));
    assert_eq!(attachments[0].contents(), binary.as_slice());
    assert_eq!(attachments[1].attachment_name(), Some("data.csv"));
    assert_eq!(attachments[1].contents(), csv.as_slice());
    assert_eq!(attachments[2].content_id(), Some("chart"));
    assert_eq!(attachments[2].contents(), b"\x89PNG\r\n\x1a\n");
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_item_and_sends_nothing_new() {
    let mut world = World::new(fast_config()).await;
    let me = unique("idempotent");
    let account = world.password_account(happy(), &me).await;
    world.start_workers();
    let to = unique("once");
    let request = || SendRequest {
        to: vec![to.as_str().into()],
        subject: Some("only once".into()),
        text: Some("x".into()),
        ..SendRequest::default()
    };
    let key = Some("order-42".to_owned());
    let first = world
        .outbox
        .submit(&account, request(), key.clone(), None)
        .await
        .unwrap();
    world.wait_for_status(&first.id, OutboxStatus::Sent).await;
    let second = world
        .outbox
        .submit(&account, request(), key, None)
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.status, OutboxStatus::Sent);
    assert!(first.created && !second.created);
    let other_key = world
        .outbox
        .submit(&account, request(), Some("order-43".into()), None)
        .await
        .unwrap();
    assert_ne!(other_key.id, first.id, "another key queues another message");
    world
        .wait_for_status(&other_key.id, OutboxStatus::Sent)
        .await;
    let items = world
        .outbox
        .list(&postern_store::OutboxQuery {
            account_id: Some(account.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    let ids: Vec<String> = received_by(happy_sink(), &to)
        .iter()
        .map(|m| {
            MessageParser::default()
                .parse(&m.data)
                .unwrap()
                .message_id()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 2, "the replay sent nothing: {ids:?}");
    assert!(ids.contains(&first.message_id) && ids.contains(&other_key.message_id));
}

#[tokio::test]
async fn an_oauth_account_sends_with_xoauth2() {
    let mut world = World::new(fast_config()).await;
    let me = unique("xoauth2");
    let (account, client_id) = world
        .oauth_account(happy(), &me, SaslMechanism::XOAuth2)
        .await;
    world.start_workers();
    let to = unique("oauth-to");
    let request = SendRequest {
        to: vec![to.as_str().into()],
        subject: Some("via XOAUTH2".into()),
        text: Some("token login".into()),
        ..SendRequest::default()
    };
    let queued = world
        .outbox
        .submit(&account, request, None, None)
        .await
        .unwrap();
    world.wait_for_status(&queued.id, OutboxStatus::Sent).await;
    let received = happy_sink().wait_for_rcpt(&to, WAIT).await.unwrap();
    assert_eq!(received.mail_from, me);
    assert_eq!(
        provider().counters_for(&client_id).token_refresh,
        0,
        "the stored token was used"
    );
}

#[tokio::test]
async fn a_token_expired_at_send_time_is_refreshed_once_and_the_message_sent_once() {
    let mut world = World::new(fast_config()).await;
    let me = unique("expired");
    let (account, client_id) = world
        .oauth_account(happy(), &me, SaslMechanism::OAuthBearer)
        .await;
    // The provider ends the token's life; the store still believes it valid for an hour.
    assert_eq!(provider().expire_access_tokens_of(&me), 1);
    world.start_workers();
    let to = unique("after-refresh");
    let request = SendRequest {
        to: vec![to.as_str().into()],
        subject: Some("after a refresh".into()),
        text: Some("x".into()),
        ..SendRequest::default()
    };
    let queued = world
        .outbox
        .submit(&account, request, None, None)
        .await
        .unwrap();
    let item = world.wait_for_status(&queued.id, OutboxStatus::Sent).await;
    assert_eq!(
        item.attempts, 1,
        "the refresh happened within the first attempt"
    );
    assert_eq!(provider().counters_for(&client_id).token_refresh, 1);
    happy_sink().wait_for_rcpt(&to, WAIT).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(received_by(happy_sink(), &to).len(), 1, "sent exactly once");
}
