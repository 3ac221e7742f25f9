//! The device flow end to end: the user approves from "another device" (the test) while Postern polls.

use std::time::{Instant, SystemTime};

use postern_auth::OAuthError;
use postern_auth::oauth::{DeviceAuthorization, DevicePoll};
use postern_testkit::oauth_provider::ClientConfig;
use secrecy::ExposeSecret as _;

use super::*;

/// A Google-like client whose provider enforces 400 ms between polls (+400 ms per `slow_down`) and
/// reports 1 s, rounded up: a client keeping to the reported interval never earns a `slow_down`.
fn register_device_client(client_id: &str, device_code_ttl: Duration) {
    provider().register_client(ClientConfig {
        device_poll_interval: Duration::from_millis(400),
        device_code_ttl,
        ..ClientConfig::google_like(client_id, SECRET, REDIRECT)
    });
}

#[tokio::test]
async fn the_user_approves_while_postern_polls_politely() {
    register_device_client("device-approve", Duration::from_secs(600));
    let client = client(settings("device-approve", &[GMAIL], &[]));
    let device = client.start_device_flow().await.unwrap();
    assert_eq!(
        device.verification_uri,
        format!("{}/device", provider().base_url())
    );
    assert_eq!(device.user_code.len(), 9);
    assert_eq!(device.interval, Duration::from_secs(1));
    assert!(!format!("{device:?}").contains(device.device_code.expose_secret()));

    // Polling at once, before one interval has passed, is too fast for the provider.
    let early = client.poll_device_once(&device).await.unwrap();
    assert!(matches!(early, DevicePoll::SlowDown), "{early:?}");

    let user_code = device.user_code.clone();
    let approval = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1300)).await;
        provider()
            .approve_device(&user_code, "judy@example.test")
            .unwrap();
    });
    let started = Instant::now();
    let grant = client.wait_for_device(&device).await.unwrap();
    let waited = started.elapsed();
    approval.await.unwrap();

    assert!(grant.refresh_token.is_some());
    assert_eq!(grant.scope.as_deref(), Some(GMAIL));
    // One poll per second: a pending one at ~1 s, the granted one at ~2 s (plus the early one above).
    let polls = provider().counters_for("device-approve").token_device_code;
    assert!((2..=3).contains(&polls), "{polls} polls");
    assert!(
        waited >= Duration::from_secs(1),
        "waited one interval first: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "no slow_down penalty was earned: {waited:?}"
    );
}

#[tokio::test]
async fn a_refusal_ends_the_wait() {
    register_device_client("device-deny", Duration::from_secs(600));
    let client = client(settings("device-deny", &[GMAIL], &[]));
    let device = client.start_device_flow().await.unwrap();
    provider().deny_device(&device.user_code).unwrap();

    let error = client.wait_for_device(&device).await.unwrap_err();
    assert_eq!(
        error.rejection().unwrap().error.as_deref(),
        Some("access_denied")
    );
    assert!(!error.is_transient(), "{error:?}");
    assert_eq!(provider().counters_for("device-deny").token_device_code, 1);
}

#[tokio::test]
async fn polling_stops_before_the_code_expires() {
    register_device_client("device-expire", Duration::from_secs(2));
    let client = client(settings("device-expire", &[GMAIL], &[]));
    let device = client.start_device_flow().await.unwrap();

    let error = client.wait_for_device(&device).await.unwrap_err();
    assert!(matches!(error, OAuthError::DeviceCodeExpired), "{error:?}");
    // One poll at ~1 s; the next would fall at the 2 s expiry, so it is not made.
    assert_eq!(
        provider().counters_for("device-expire").token_device_code,
        1
    );

    let expired = DeviceAuthorization {
        expires_at: SystemTime::now() - Duration::from_secs(1),
        ..device
    };
    let late = client.poll_device_once(&expired).await;
    assert!(
        matches!(late, Err(OAuthError::DeviceCodeExpired)),
        "{late:?}"
    );
    assert_eq!(
        provider().counters_for("device-expire").token_device_code,
        1
    );
}

#[tokio::test]
async fn without_a_device_endpoint_the_flow_cannot_start() {
    let mut no_device = settings("device-missing", &[GMAIL], &[]);
    no_device.device_authorization_url = None;
    let error = client(no_device).start_device_flow().await.unwrap_err();
    assert!(
        matches!(error, OAuthError::EndpointMissing { .. }),
        "{error:?}"
    );
}
