//! Tests of message parsing: envelope, snippet, MIME section numbers, and broken input noted
//! rather than fatal.

use super::*;

const PLAIN: &[u8] = b"From: \"Alice Example\" <alice@example.com>\r\n\
To: bob@example.org, Carol <carol@example.net>\r\n\
Cc: dave@example.com\r\n\
Subject: =?UTF-8?Q?Caf=C3=A9?= plans\r\n\
Date: Thu, 01 Jan 2026 10:00:00 +0000\r\n\
Message-ID: <m1@example.com>\r\n\
In-Reply-To: <m0@example.com>\r\n\
References: <root@example.com> <m0@example.com>\r\n\
\r\n\
Hello   Bob,\r\n\r\n  see\tyou   soon.\r\n";

const WITH_ATTACHMENT: &[u8] = b"From: a@example.com\r\n\
Subject: report\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
The figures.\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>The figures.</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--outer--\r\n";

#[test]
fn the_envelope_is_decoded() {
    let parsed = parse_message(PLAIN);
    let envelope = &parsed.envelope;
    assert_eq!(envelope.subject.as_deref(), Some("Café plans"));
    assert_eq!(envelope.message_id.as_deref(), Some("m1@example.com"));
    assert_eq!(envelope.in_reply_to.as_deref(), Some("m0@example.com"));
    assert_eq!(envelope.references, ["root@example.com", "m0@example.com"]);
    assert_eq!(envelope.from[0].name.as_deref(), Some("Alice Example"));
    assert_eq!(
        envelope.from[0].address.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(envelope.to.len(), 2);
    assert_eq!(envelope.cc[0].address.as_deref(), Some("dave@example.com"));
    assert_eq!(
        envelope.date.map(|date| date.timestamp()),
        Some(1_767_261_600)
    );
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
}

#[test]
fn transit_fields_are_skipped_and_the_envelope_and_parts_still_parse() {
    let mut relayed = b"Received: from mx.example.net (mx.example.net [192.0.2.1])\r\n\
\tby mail.example.test with ESMTPS; Thu, 01 Jan 2026 10:00:05 +0000\r\n\
DKIM-Signature: v=1; a=rsa-sha256; d=example.net; s=s1; b=AbCd\r\n\
List-Unsubscribe: <mailto:unsubscribe@example.net>\r\n"
        .to_vec();
    relayed.extend_from_slice(PLAIN);
    let parsed = parse_message(&relayed);
    assert_eq!(parsed.envelope, parse_message(PLAIN).envelope);
    assert_eq!(parsed.snippet.as_deref(), Some("Hello Bob, see you soon."));
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);

    let mut with_parts =
        b"Received: from mx.example.net; Thu, 01 Jan 2026 10:00:05 +0000\r\n".to_vec();
    with_parts.extend_from_slice(WITH_ATTACHMENT);
    assert_eq!(
        parse_message(&with_parts).mime,
        parse_message(WITH_ATTACHMENT).mime
    );
}

#[test]
fn the_snippet_collapses_whitespace_and_is_cut() {
    assert_eq!(
        parse_message(PLAIN).snippet.as_deref(),
        Some("Hello Bob, see you soon.")
    );
    let mut long = b"Subject: long\r\n\r\n".to_vec();
    long.extend(std::iter::repeat_n(b"word ".as_slice(), 200).flatten());
    let snippet = parse_message(&long).snippet.unwrap();
    assert_eq!(snippet.chars().count(), SNIPPET_CHARS);
}

#[test]
fn attachments_are_listed_with_their_imap_section_numbers() {
    let parsed = parse_message(WITH_ATTACHMENT);
    assert_eq!(parsed.mime.content_type, "multipart/mixed");
    assert!(parsed.mime.has_text && parsed.mime.has_html);
    assert_eq!(
        parsed.mime.attachments,
        [AttachmentSummary {
            part: "2".to_owned(),
            filename: Some("report.pdf".to_owned()),
            content_type: "application/pdf".to_owned(),
            size: 9,
        }]
    );
    assert_eq!(parsed.snippet.as_deref(), Some("The figures."));
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
}

#[test]
fn a_truncated_multipart_is_noted_and_what_parsed_is_kept() {
    let cut = &WITH_ATTACHMENT[..WITH_ATTACHMENT.len() - 40];
    let parsed = parse_message(cut);
    assert_eq!(parsed.envelope.subject.as_deref(), Some("report"));
    assert!(
        parsed
            .problems
            .iter()
            .any(|p| p.contains("closing boundary")),
        "{:?}",
        parsed.problems
    );
}

#[test]
fn an_unknown_charset_is_noted() {
    let raw = b"Subject: odd\r\nContent-Type: text/plain; charset=x-klingon-9\r\n\r\nQapla'\r\n";
    let parsed = parse_message(raw);
    assert_eq!(parsed.snippet.as_deref(), Some("Qapla'"));
    assert!(
        parsed.problems.iter().any(|p| p.contains("x-klingon-9")),
        "{:?}",
        parsed.problems
    );
}

#[test]
fn eight_bit_header_bytes_are_noted_and_the_subject_still_read() {
    let raw = b"Subject: caf\xe9 cr\xe8me\r\nFrom: \xff\xfe <x@example.com>\r\n\r\nbody\r\n";
    let parsed = parse_message(raw);
    assert!(parsed.envelope.subject.unwrap().starts_with("caf"));
    assert!(
        parsed.problems.iter().any(|p| p.contains("8-bit")),
        "{:?}",
        parsed.problems
    );
}

#[test]
fn garbage_never_panics_and_says_so() {
    for raw in [&b""[..], b"\x00\x01\x02", b"\r\n\r\n", b"no header at all"] {
        let parsed = parse_message(raw);
        assert!(
            parsed.problems_text().is_some() || parsed.snippet.is_some(),
            "{raw:?}"
        );
    }
}

#[test]
fn a_head_gives_the_envelope_and_a_snippet_without_a_mime_summary() {
    let split = WITH_ATTACHMENT
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    let (header, text) = WITH_ATTACHMENT.split_at(split);
    let parsed = parse_head(header, &text[..text.len().min(150)]);
    assert_eq!(parsed.envelope.subject.as_deref(), Some("report"));
    assert_eq!(parsed.snippet.as_deref(), Some("The figures."));
    assert_eq!(parsed.mime, MimeSummary::default());
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
}

#[test]
fn a_multipart_without_boundary_is_noted() {
    let raw = b"Subject: nb\r\nContent-Type: multipart/mixed\r\n\r\nwhat now?\r\n";
    let parsed = parse_message(raw);
    assert!(
        parsed.problems.iter().any(|p| p.contains("no boundary")),
        "{:?}",
        parsed.problems
    );
}
