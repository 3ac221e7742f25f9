//! Tests of the OAuth error-challenge decoding: each JSON shape seen in the wild, from base64 and raw,
//! the error variants for bad input, the verdicts, the replies, and a never-panics property.

use super::*;
use base64::engine::general_purpose;
use proptest::prelude::*;

const DOVECOT: &str = r#"{"status":"401","schemes":"bearer","scope":"mail"}"#;
const DOVECOT_B64: &str = "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=";
const GOOGLE: &str = r#"{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}"#;
const GOOGLE_B64: &str = "eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==";
const RFC7628: &str = r#"{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}"#;

fn b64(text: &str) -> Vec<u8> {
    general_purpose::STANDARD.encode(text).into_bytes()
}

#[test]
fn dovecot_xoauth2_challenge_from_base64() {
    let challenge = decode_oauth_error(DOVECOT_B64.as_bytes()).unwrap();
    assert_eq!(challenge.status(), "401");
    assert_eq!(challenge.schemes(), Some("bearer"));
    assert_eq!(challenge.scope(), Some("mail"));
    assert_eq!(challenge.openid_configuration(), None);
    assert_eq!(challenge.raw_json(), DOVECOT);
    assert_eq!(challenge.verdict(), ChallengeVerdict::RefreshAndRetry);
}

#[test]
fn dovecot_xoauth2_challenge_from_raw_bytes() {
    let challenge = decode_oauth_error(DOVECOT.as_bytes()).unwrap();
    assert_eq!(
        challenge,
        decode_oauth_error(DOVECOT_B64.as_bytes()).unwrap()
    );
}

#[test]
fn google_challenge_means_missing_scope() {
    for input in [GOOGLE.as_bytes(), GOOGLE_B64.as_bytes()] {
        let challenge = decode_oauth_error(input).unwrap();
        assert_eq!(challenge.status(), "400");
        assert_eq!(challenge.schemes(), Some("Bearer"));
        assert_eq!(challenge.raw_json(), GOOGLE);
        assert_eq!(
            challenge.verdict(),
            ChallengeVerdict::InsufficientScope {
                scope: Some("https://mail.google.com/".to_owned())
            }
        );
    }
}

#[test]
fn rfc7628_challenge_keeps_openid_configuration() {
    for input in [RFC7628.as_bytes().to_vec(), b64(RFC7628)] {
        let challenge = decode_oauth_error(&input).unwrap();
        assert_eq!(challenge.status(), "invalid_token");
        assert_eq!(challenge.scope(), Some("example_scope"));
        assert_eq!(
            challenge.openid_configuration(),
            Some("https://example.com/.well-known/openid-configuration")
        );
        assert_eq!(challenge.schemes(), None);
        assert_eq!(challenge.verdict(), ChallengeVerdict::RefreshAndRetry);
    }
}

#[test]
fn dovecot_oauthbearer_challenge_has_only_a_status() {
    let challenge = decode_oauth_error(br#"{"status":"invalid_token"}"#).unwrap();
    assert_eq!(challenge.scope(), None);
    assert_eq!(challenge.verdict(), ChallengeVerdict::RefreshAndRetry);
}

#[test]
fn insufficient_scope_without_a_scope_field() {
    let challenge = decode_oauth_error(&b64(r#"{"status":"insufficient_scope"}"#)).unwrap();
    assert_eq!(
        challenge.verdict(),
        ChallengeVerdict::InsufficientScope { scope: None }
    );
}

#[test]
fn status_400_without_scope_and_unknown_statuses_are_other() {
    for json in [
        r#"{"status":"400"}"#,
        r#"{"status":"invalid_request"}"#,
        r#"{"status":"500","scope":"mail"}"#,
    ] {
        let challenge = decode_oauth_error(json.as_bytes()).unwrap();
        assert_eq!(challenge.verdict(), ChallengeVerdict::Other, "{json}");
    }
}

#[test]
fn numeric_status_is_read_as_its_decimal_text() {
    let challenge = decode_oauth_error(br#"{"status":401}"#).unwrap();
    assert_eq!(challenge.status(), "401");
    assert_eq!(challenge.verdict(), ChallengeVerdict::RefreshAndRetry);
}

#[test]
fn surrounding_whitespace_and_missing_padding_are_accepted() {
    let unpadded = GOOGLE_B64.trim_end_matches('=');
    let line = format!("  {unpadded}\r\n");
    let challenge = decode_oauth_error(line.as_bytes()).unwrap();
    assert_eq!(challenge.raw_json(), GOOGLE);
    let raw = format!("\r\n{DOVECOT} \r\n");
    assert_eq!(decode_oauth_error(raw.as_bytes()).unwrap().status(), "401");
}

#[test]
fn bad_base64_is_invalid_base64() {
    let err = decode_oauth_error(b"not base64 at all!").unwrap_err();
    assert!(matches!(err, SaslError::InvalidBase64 { .. }), "{err:?}");
}

#[test]
fn base64_of_non_json_is_invalid_json() {
    let err = decode_oauth_error(&b64("Authentication failed")).unwrap_err();
    assert!(matches!(err, SaslError::InvalidJson { .. }), "{err:?}");
    let err = decode_oauth_error(b"{not json").unwrap_err();
    assert!(matches!(err, SaslError::InvalidJson { .. }), "{err:?}");
}

#[test]
fn empty_challenge_is_invalid_json() {
    let err = decode_oauth_error(b"").unwrap_err();
    assert!(matches!(err, SaslError::InvalidJson { .. }), "{err:?}");
}

#[test]
fn json_of_the_wrong_shape_is_named() {
    let err = decode_oauth_error(&b64(r#"["status","401"]"#)).unwrap_err();
    assert!(matches!(
        err,
        SaslError::UnexpectedJsonShape {
            problem: "is not an object"
        }
    ));
    for json in [
        r#"{"scope":"mail"}"#,
        r#"{"status":null}"#,
        r#"{"status":{}}"#,
    ] {
        let err = decode_oauth_error(json.as_bytes()).unwrap_err();
        assert!(
            matches!(err, SaslError::UnexpectedJsonShape { .. }),
            "{json}: {err:?}"
        );
    }
}

#[test]
fn optional_fields_of_another_type_are_ignored() {
    let challenge =
        decode_oauth_error(br#"{"status":"401","scope":["a","b"],"schemes":1}"#).unwrap();
    assert_eq!(challenge.scope(), None);
    assert_eq!(challenge.schemes(), None);
}

#[test]
fn replies_end_the_exchange_per_mechanism() {
    assert_eq!(error_challenge_reply(Mechanism::XOAuth2), b"");
    assert_eq!(error_challenge_reply(Mechanism::OAuthBearer), b"\x01");
    assert_eq!(
        general_purpose::STANDARD.encode(error_challenge_reply(Mechanism::OAuthBearer)),
        "AQ=="
    );
    assert_eq!(error_challenge_reply(Mechanism::Plain), b"");
    assert_eq!(error_challenge_reply(Mechanism::Login), b"");
}

proptest! {
    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_oauth_error(&bytes);
    }

    #[test]
    fn decode_never_panics_on_base64_of_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_oauth_error(&b64_bytes(&bytes));
    }

    #[test]
    fn any_string_status_round_trips(status in "\\PC{0,40}") {
        let json = serde_json::json!({ "status": status }).to_string();
        let challenge = decode_oauth_error(&b64(&json)).unwrap();
        prop_assert_eq!(challenge.status(), status.as_str());
        prop_assert_eq!(challenge.raw_json(), json.as_str());
    }
}

fn b64_bytes(bytes: &[u8]) -> Vec<u8> {
    general_purpose::STANDARD.encode(bytes).into_bytes()
}
