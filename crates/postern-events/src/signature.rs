//! Webhook request signatures: `Postern-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`.
//!
//! Purpose: sign each delivery so a receiver can tell it came from Postern, unchanged, recently.
//! The MAC is HMAC-SHA256 keyed with the webhook's secret (its UTF-8 bytes, exactly as shown at
//! creation, `whsec_` prefix included) over `"<t>.<body>"`: the timestamp, a dot, and the raw body.
//!
//! **What a receiver must check**, in this order (this is what [`verify`] does):
//! 1. Read the raw request body *before* any JSON parsing (re-serialized JSON does not match).
//! 2. Split the header on `,` into `key=value` pairs; take `t` and every `v1` (unknown keys are
//!    ignored so new schemes can be added).
//! 3. Reject the request if `|now - t|` exceeds a tolerance (default [`DEFAULT_TOLERANCE`], 5
//!    minutes): an old but valid request replayed by someone who captured it is refused.
//! 4. Compute HMAC-SHA256(secret, `t + "." + body`) and compare it with each `v1` in constant time;
//!    accept if one matches.
//! 5. Deduplicate by `Postern-Event-Id`: delivery is at least once, so the same event may come
//!    again (a retry after a lost response, a redelivery).
//!
//! Non-goal: key management; the service generates and seals secrets.
//! Key decision: the timestamp is inside the MAC and is fresh on every attempt, so retries carry a
//! new valid signature while a captured request stops working after the tolerance; comparison goes
//! through `hmac`'s constant-time `verify_slice`, so timing reveals nothing about the expected MAC.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::SignatureError;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Postern-Signature";
/// The header carrying the event id, for deduplication.
pub const EVENT_ID_HEADER: &str = "Postern-Event-Id";
/// The header carrying the event type.
pub const EVENT_TYPE_HEADER: &str = "Postern-Event-Type";
/// How far a signature's timestamp may be from the receiver's clock: 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

type HmacSha256 = Hmac<Sha256>;

/// The `Postern-Signature` header value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mac = mac_of(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(mac))
}

/// Checks a `Postern-Signature` header against `body`, `secret` and the receiver's clock `now`
/// (Unix seconds): the timestamp must be within `tolerance` of `now` and one `v1` must match.
pub fn verify(
    header: &str,
    secret: &[u8],
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let parsed = parse_header(header)?;
    let age_secs = now.abs_diff(parsed.timestamp);
    if age_secs > tolerance.as_secs() {
        return Err(SignatureError::Stale {
            age_secs,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    let matches = parsed.signatures.iter().any(|candidate| {
        mac_of(secret, parsed.timestamp, body)
            .verify_slice(candidate)
            .is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn mac_of(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed first), so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// A header's timestamp and the decoded `v1` signatures.
struct ParsedHeader {
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

fn parse_header(header: &str) -> Result<ParsedHeader, SignatureError> {
    let malformed = |reason| SignatureError::Malformed { reason };
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for pair in header.split(',') {
        let (key, value) = pair
            .trim()
            .split_once('=')
            .ok_or(malformed("expected key=value pairs"))?;
        match key {
            "t" if timestamp.is_some() => return Err(malformed("more than one timestamp")),
            "t" => timestamp = Some(value.parse().map_err(|_| malformed("t is not a number"))?),
            "v1" => signatures.push(hex::decode(value).map_err(|_| malformed("v1 is not hex"))?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(malformed("no t= timestamp"))?;
    if signatures.is_empty() {
        return Err(malformed("no v1= signature"));
    }
    Ok(ParsedHeader {
        timestamp,
        signatures,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"id":1,"type":"message.new"}"#;
    const T: i64 = 1_700_000_000;
    /// Computed independently: Python's `hmac.new(SECRET, b"1700000000." + BODY, sha256)`.
    const EXPECTED: &str = "b1e3c2e9a913098283bafdfc1c9f07ddf8ef287bafed280af7ac480673b2b37b";

    #[test]
    fn sign_matches_a_known_vector() {
        assert_eq!(sign(SECRET, T, BODY), format!("t={T},v1={EXPECTED}"));
    }

    #[test]
    fn the_hmac_matches_the_well_known_quick_brown_fox_example() {
        // The widely published HMAC-SHA256("key", "The quick brown fox…") value.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn a_fresh_signature_verifies() {
        let header = sign(SECRET, T, BODY);
        assert_eq!(
            verify(&header, SECRET, BODY, T + 30, DEFAULT_TOLERANCE),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_or_secret_is_a_mismatch() {
        let header = sign(SECRET, T, BODY);
        let other_body = br#"{"id":2,"type":"message.new"}"#;
        assert_eq!(
            verify(&header, SECRET, other_body, T, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, b"whsec_other", BODY, T, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_changed_timestamp_breaks_the_signature() {
        let header = sign(SECRET, T, BODY).replace(&T.to_string(), &(T + 1).to_string());
        assert_eq!(
            verify(&header, SECRET, BODY, T, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let header = sign(SECRET, T, BODY);
        let late = T + 301;
        assert_eq!(
            verify(&header, SECRET, BODY, late, DEFAULT_TOLERANCE),
            Err(SignatureError::Stale {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert!(matches!(
            verify(&header, SECRET, BODY, T - 301, DEFAULT_TOLERANCE),
            Err(SignatureError::Stale { .. })
        ));
        assert_eq!(
            verify(&header, SECRET, BODY, T + 300, DEFAULT_TOLERANCE),
            Ok(())
        );
    }

    #[test]
    fn any_matching_v1_is_accepted_and_unknown_keys_are_ignored() {
        let good = sign(SECRET, T, BODY);
        let good_mac = good.split("v1=").nth(1).unwrap();
        let header = format!("t={T}, v0=zz, v1={}, v1={good_mac}", "00".repeat(32));
        assert_eq!(verify(&header, SECRET, BODY, T, DEFAULT_TOLERANCE), Ok(()));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in [
            "",
            "v1=00",
            "t=abc,v1=00",
            "t=1,t=2,v1=00",
            "t=1",
            "t=1,v1=xyz",
            "garbage",
        ] {
            assert!(
                matches!(
                    verify(header, SECRET, BODY, 1, DEFAULT_TOLERANCE),
                    Err(SignatureError::Malformed { .. })
                ),
                "{header:?}"
            );
        }
    }
}
