//! Tests of response interpretation, on byte strings as Dovecot sends them: LIST, STATUS, SELECT,
//! FETCH (whole message and head + BODYSTRUCTURE), VANISHED.

use super::*;
use async_imap::imap_proto::Response;

fn parse(line: &[u8]) -> Response<'_> {
    let (rest, response) = Response::parse(line).unwrap();
    assert!(
        rest.is_empty(),
        "left over: {:?}",
        String::from_utf8_lossy(rest)
    );
    response
}

fn list_data<'a>(response: &'a Response<'a>) -> &'a MailboxListData<'a> {
    match response {
        Response::MailboxData(MailboxDatum::List(data)) => data,
        other => panic!("not a LIST: {other:?}"),
    }
}

#[test]
fn list_lines_give_roles_and_selectability() {
    let sent = parse(b"* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n");
    let listed = listed_mailbox(list_data(&sent));
    assert_eq!(listed.role, Some(MailboxRole::Sent));
    assert_eq!(listed.delimiter.as_deref(), Some("/"));
    assert!(listed.selectable);

    let inbox = parse(b"* LIST (\\HasChildren) \"/\" inbox\r\n");
    assert_eq!(
        listed_mailbox(list_data(&inbox)).role,
        Some(MailboxRole::Inbox)
    );

    let folder = parse(b"* LIST (\\Noselect \\HasChildren) \"/\" \"Projects\"\r\n");
    assert!(!listed_mailbox(list_data(&folder)).selectable);

    let gone = parse(b"* LIST (\\NonExistent) \"/\" \"Old\"\r\n");
    assert!(!listed_mailbox(list_data(&gone)).selectable);
}

#[test]
fn status_attributes_make_a_status() {
    let response = parse(
        b"* STATUS INBOX (MESSAGES 3 UIDNEXT 9 UIDVALIDITY 77 UNSEEN 1 HIGHESTMODSEQ 12)\r\n",
    );
    let Response::MailboxData(MailboxDatum::Status { status, .. }) = &response else {
        panic!("{response:?}");
    };
    let mut parts = StatusParts::default();
    parts.absorb_status(status);
    assert_eq!(
        parts.complete(None),
        Some(ServerStatus {
            uidvalidity: 77,
            uidnext: 9,
            exists: 3,
            highest_modseq: Some(12),
            unseen: Some(1),
        })
    );
}

#[test]
fn select_responses_make_a_status_and_uidnext_can_come_from_elsewhere() {
    let mut parts = StatusParts::default();
    for line in [
        &b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"[..],
        b"* 5 EXISTS\r\n",
        b"* 0 RECENT\r\n",
        b"* OK [UIDVALIDITY 1700000000] UIDs valid\r\n",
        b"* OK [HIGHESTMODSEQ 41] Highest\r\n",
    ] {
        assert!(parts.absorb_select(&parse(line)), "{line:?}");
    }
    assert!(!parts.absorb_select(&parse(b"* VANISHED (EARLIER) 1:3\r\n")));
    assert_eq!(parts.complete(None), None, "UIDNEXT is missing");
    let status = parts.complete(Some(6)).unwrap();
    assert_eq!(
        (status.uidvalidity, status.uidnext, status.exists),
        (1_700_000_000, 6, 5)
    );
    assert_eq!(status.highest_modseq, Some(41));
}

#[test]
fn a_full_fetch_becomes_a_new_message() {
    let line = b"* 1 FETCH (UID 42 MODSEQ (7) FLAGS (\\Seen \\Recent) INTERNALDATE \"01-Jan-2026 10:00:00 +0100\" RFC822.SIZE 43 BODY[] {43}\r\nSubject: hi\r\nFrom: a@example.com\r\n\r\nHello\r\n)\r\n";
    let Response::Fetch(_, attributes) = parse(line) else {
        panic!("not a FETCH")
    };
    let fetched = fetched_message(&attributes).unwrap();
    assert_eq!(fetched.uid, 42);
    assert_eq!(fetched.modseq, Some(7));
    assert_eq!(fetched.flags, Some(vec!["\\Seen".to_owned()]));
    let message = new_message(fetched).unwrap();
    assert_eq!(
        message.internaldate.to_rfc3339(),
        "2026-01-01T09:00:00+00:00"
    );
    assert_eq!(message.envelope.subject.as_deref(), Some("hi"));
    assert_eq!(message.snippet.as_deref(), Some("Hello"));
    assert_eq!(message.body.as_ref().map(Vec::len), Some(43));
}

#[test]
fn a_fetch_without_uid_or_body_is_not_a_message() {
    let Response::Fetch(_, attributes) = parse(b"* 3 FETCH (FLAGS (\\Seen))\r\n") else {
        panic!()
    };
    assert_eq!(fetched_message(&attributes), None);
    let Response::Fetch(_, attributes) = parse(b"* 3 FETCH (UID 9 FLAGS (\\Seen))\r\n") else {
        panic!()
    };
    let fetched = fetched_message(&attributes).unwrap();
    assert_eq!(new_message(fetched), None);
}

#[test]
fn an_unreadable_internaldate_is_noted_and_replaced_by_the_date_header() {
    let line = b"* 1 FETCH (UID 3 FLAGS () INTERNALDATE \"yesterday\" RFC822.SIZE 48 BODY[] {48}\r\nDate: Thu, 01 Jan 2026 10:00:00 +0000\r\n\r\nHello\r\n)\r\n";
    let Response::Fetch(_, attributes) = parse(line) else {
        panic!("not a FETCH")
    };
    let message = new_message(fetched_message(&attributes).unwrap()).unwrap();
    assert_eq!(message.internaldate.timestamp(), 1_767_261_600);
    assert!(message.parse_problems.unwrap().contains("INTERNALDATE"));
}

#[test]
fn a_head_fetch_takes_its_mime_summary_from_bodystructure() {
    let line = b"* 2 FETCH (UID 5 FLAGS () INTERNALDATE \" 2-Feb-2026 08:00:00 +0000\" RFC822.SIZE 900 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL)(\"application\" \"pdf\" (\"name\" \"r.pdf\") NIL NIL \"base64\" 400 NIL (\"attachment\" (\"filename\" \"report.pdf\")) NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL) BODY[HEADER] {15}\r\nSubject: head\r\n BODY[TEXT]<0> {11}\r\n--b\r\n\r\nHi\r\n)\r\n";
    let Response::Fetch(_, attributes) = parse(line) else {
        panic!("not a FETCH")
    };
    let message = new_message(fetched_message(&attributes).unwrap()).unwrap();
    assert_eq!(message.envelope.subject.as_deref(), Some("head"));
    assert_eq!(
        message.internaldate.to_rfc3339(),
        "2026-02-02T08:00:00+00:00"
    );
    assert_eq!(message.mime.content_type, "multipart/mixed");
    assert!(message.mime.has_text);
    assert_eq!(
        message.mime.attachments,
        [AttachmentSummary {
            part: "2".to_owned(),
            filename: Some("report.pdf".to_owned()),
            content_type: "application/pdf".to_owned(),
            size: 400,
        }]
    );
    assert_eq!(message.body, None);
}

#[test]
fn vanished_gives_ranges() {
    let response = parse(b"* VANISHED (EARLIER) 1:3,7\r\n");
    assert_eq!(vanished_ranges(&response), Some(vec![1..=3, 7..=7]));
    assert_eq!(vanished_ranges(&parse(b"* 4 EXISTS\r\n")), None);
}
