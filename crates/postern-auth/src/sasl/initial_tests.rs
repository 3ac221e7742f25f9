//! Tests of the initial responses: exact bytes per mechanism (with published examples), authzid
//! escaping, and refusal of separator bytes.

use super::*;

fn token(value: &str) -> SecretString {
    SecretString::from(value)
}

#[test]
fn xoauth2_matches_the_documented_bytes() {
    let bytes = xoauth2("alice@example.com", &token("ya29.tok")).unwrap();
    assert_eq!(
        bytes.expose_secret().as_slice(),
        b"user=alice@example.com\x01auth=Bearer ya29.tok\x01\x01"
    );
}

#[test]
fn xoauth2_matches_googles_published_example() {
    // developers.google.com/gmail/imap/xoauth2-protocol: the base64 of this example.
    let bytes = xoauth2(
        "someuser@example.com",
        &token("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
    )
    .unwrap();
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(bytes.expose_secret()),
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    );
}

#[test]
fn oauthbearer_matches_rfc_7628_layout() {
    let bytes = oauthbearer(
        "user@example.com",
        "server.example.com",
        143,
        &token("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="),
    )
    .unwrap();
    // RFC 7628 section 4.1, with its example values.
    assert_eq!(
        bytes.expose_secret().as_slice(),
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    );
}

#[test]
fn oauthbearer_escapes_comma_and_equals_in_the_authzid() {
    let bytes = oauthbearer("a=b,c@x.org", "imap.x.org", 993, &token("T")).unwrap();
    assert_eq!(
        bytes.expose_secret().as_slice(),
        b"n,a=a=3Db=2Cc@x.org,\x01host=imap.x.org\x01port=993\x01auth=Bearer T\x01\x01"
    );
}

#[test]
fn oauthbearer_with_empty_user_sends_no_authzid() {
    let bytes = oauthbearer("", "h", 1, &token("T")).unwrap();
    assert_eq!(
        bytes.expose_secret().as_slice(),
        b"n,,\x01host=h\x01port=1\x01auth=Bearer T\x01\x01"
    );
}

#[test]
fn plain_without_authzid_starts_with_nul() {
    let bytes = plain(None, "bob", &token("hunter2")).unwrap();
    assert_eq!(bytes.expose_secret().as_slice(), b"\0bob\0hunter2");
    let same = plain(Some(""), "bob", &token("hunter2")).unwrap();
    assert_eq!(same.expose_secret(), bytes.expose_secret());
}

#[test]
fn plain_with_authzid_puts_it_first() {
    let bytes = plain(Some("admin"), "bob", &token("pw")).unwrap();
    assert_eq!(bytes.expose_secret().as_slice(), b"admin\0bob\0pw");
}

#[test]
fn separator_bytes_are_refused_naming_the_field_only() {
    let err = xoauth2("a\x01auth=Bearer x", &token("T")).unwrap_err();
    assert!(matches!(
        err,
        SaslError::ForbiddenByte {
            mechanism: Mechanism::XOAuth2,
            field: "user",
            byte: 0x01
        }
    ));
    let err = xoauth2("a", &token("secret\x01")).unwrap_err();
    assert!(matches!(
        err,
        SaslError::ForbiddenByte { field: "token", .. }
    ));
    assert!(!err.to_string().contains("secret"));
    let err = oauthbearer("a", "h\x01", 1, &token("T")).unwrap_err();
    assert!(matches!(
        err,
        SaslError::ForbiddenByte { field: "host", .. }
    ));
    let err = plain(None, "bob", &token("pw\0x")).unwrap_err();
    assert!(matches!(
        err,
        SaslError::ForbiddenByte {
            mechanism: Mechanism::Plain,
            field: "password",
            byte: 0
        }
    ));
    assert!(plain(Some("a\0"), "bob", &token("pw")).is_err());
}

#[test]
fn assembled_buffer_is_exactly_sized() {
    let bytes = xoauth2("u", &token("t")).unwrap();
    let buffer = bytes.expose_secret();
    assert_eq!(buffer.capacity(), buffer.len());
}
