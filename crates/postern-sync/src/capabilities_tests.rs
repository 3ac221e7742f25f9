//! Tests of capability parsing: Dovecot's real list, `AUTH=` entries, implications, odd input.

#![allow(clippy::unwrap_used)]

use super::*;

/// Dovecot 2.3's list after login, as seen in the tests.
const DOVECOT_AFTER_LOGIN: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT \
    SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL \
    CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC \
    ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY \
    PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE";

#[test]
fn parses_dovecots_list_after_login() {
    let caps = Capabilities::from_names(DOVECOT_AFTER_LOGIN.split(' '));
    assert!(caps.idle() && caps.condstore() && caps.qresync() && caps.enable());
    assert!(caps.uidplus() && caps.move_command() && caps.special_use());
    assert!(caps.literal_plus() && caps.sasl_ir());
    assert!(!caps.compress_deflate() && !caps.imap4rev2() && !caps.starttls());
    assert!(caps.sasl_mechanisms().is_empty());
    assert!(caps.has("imap4rev1"));
}

#[test]
fn splits_auth_entries_keeping_order_and_dropping_duplicates() {
    let caps = Capabilities::from_names([
        "IMAP4rev1",
        "auth=xoauth2",
        "AUTH=PLAIN",
        "AUTH=XOAUTH2",
        "STARTTLS",
        "LOGINDISABLED",
    ]);
    assert_eq!(caps.sasl_mechanisms(), ["XOAUTH2", "PLAIN"]);
    assert!(caps.offers(Mechanism::XOAuth2) && caps.offers(Mechanism::Plain));
    assert!(!caps.offers(Mechanism::OAuthBearer));
    assert!(caps.has("Auth=Plain"));
    assert!(caps.starttls() && caps.login_disabled());
    assert_eq!(
        caps.names().collect::<Vec<_>>(),
        ["IMAP4REV1", "LOGINDISABLED", "STARTTLS"]
    );
}

#[test]
fn qresync_implies_condstore() {
    let caps = Capabilities::from_names(["IMAP4rev1", "QRESYNC"]);
    assert!(caps.condstore());
    assert!(!Capabilities::from_names(["IMAP4rev1"]).condstore());
}

#[test]
fn builds_from_a_parsed_capability_response() {
    let line = b"* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN AUTH=OAUTHBEARER IDLE\r\n";
    let (_, response) = imap_proto::Response::parse(line).unwrap();
    let imap_proto::Response::Capabilities(list) = response else {
        panic!("not a capability response: {response:?}");
    };
    let caps = Capabilities::from(list.as_slice());
    assert_eq!(caps.sasl_mechanisms(), ["PLAIN", "OAUTHBEARER"]);
    assert!(caps.has("IMAP4REV1") && caps.idle() && caps.starttls());
}

#[test]
fn empty_and_blank_names_are_ignored() {
    let caps = Capabilities::from_names(["", " ", "IDLE"]);
    assert_eq!(caps.names().count(), 1);
}
