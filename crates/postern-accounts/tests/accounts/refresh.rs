//! The token manager against the test provider: one refresh for many callers, refresh on a
//! server's rejection, rotation, dead grants, and a provider that is down.

use crate::support::{World, WorldOptions, eventually, follow, provider, unique};
use postern_auth::token_manager::{RefreshPolicy, TokenError};
use postern_store::{AccountState, SaslMechanism};
use postern_sync::account::open_session;
use postern_testkit::oauth_provider::Fault;
use std::time::Duration;

#[tokio::test]
async fn five_hundred_concurrent_callers_with_an_expired_token_cause_exactly_one_refresh() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("single-flight"));
    let account = world.connected(&email, SaslMechanism::XOAuth2).await;
    world.expire_in_store(&account.id).await;
    let before = world.token_calls();

    let tokens = world.service.tokens();
    let callers = (0..500).map(|_| tokens.access_token(&account.id));
    let results = futures::future::join_all(callers).await;
    let first = results[0].as_ref().unwrap();
    assert!(
        results.iter().all(|r| r.as_ref().unwrap().same_as(first)),
        "callers got different tokens"
    );
    assert_eq!(
        world.token_calls() - before,
        1,
        "expected exactly one call to /token"
    );

    // And the refreshed token really opens IMAP sessions, 20 at once.
    let sessions = (0..20).map(|_| open_session(&account, world.service.credentials()));
    for session in futures::future::join_all(sessions).await {
        session.unwrap().logout().await.unwrap();
    }
    assert_eq!(world.token_calls() - before, 1);
}

#[tokio::test]
async fn a_token_the_server_rejects_is_refreshed_once_and_the_login_succeeds() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("reactive"));
    let account = world.connected(&email, SaslMechanism::XOAuth2).await;
    // The provider kills the access token early; the store still thinks it is good for an hour.
    assert_eq!(provider().expire_access_tokens_of(&email), 1);
    let before = world.token_calls();

    let session = open_session(&account, world.service.credentials())
        .await
        .unwrap();
    session.logout().await.unwrap();
    assert_eq!(world.token_calls() - before, 1);
}

#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_old_one_which_is_never_used_again() {
    let mut options = WorldOptions::new();
    options.client.rotation = true;
    let world = World::with(options).await;
    let email = format!("{}@example.test", unique("rotation"));
    let account = world.connected(&email, SaslMechanism::XOAuth2).await;
    let (_, original) = world.stored_tokens(&account.id).await;
    let mut seen = vec![original.clone().unwrap()];

    for _ in 0..3 {
        world.expire_in_store(&account.id).await;
        world
            .service
            .tokens()
            .access_token(&account.id)
            .await
            .unwrap();
        let (_, current) = world.stored_tokens(&account.id).await;
        let current = current.unwrap();
        assert!(!seen.contains(&current), "the refresh token did not rotate");
        seen.push(current);
    }
    // Had an old refresh token been presented, the provider would have answered invalid_grant and
    // the account would need re-authorization.
    assert_eq!(
        world.reload(&account.id).await.state,
        AccountState::Connected
    );
    assert!(
        world
            .events(&account.id, "account.needs_reauth")
            .await
            .is_empty()
    );
    assert_eq!(world.token_calls(), 3);
}

#[tokio::test]
async fn a_revoked_grant_marks_needs_reauth_once_and_reauthorizing_restores_the_account() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("revoked"));
    let account = world.connected(&email, SaslMechanism::XOAuth2).await;
    provider().revoke_grants_of(&email);
    world.expire_in_store(&account.id).await;
    let before = world.token_calls();

    for _ in 0..10 {
        let error = world
            .service
            .tokens()
            .access_token(&account.id)
            .await
            .unwrap_err();
        assert!(matches!(error, TokenError::NeedsReauth { .. }), "{error}");
    }
    assert_eq!(
        world.token_calls() - before,
        1,
        "no retry loop against a dead grant"
    );
    let stuck = world.reload(&account.id).await;
    assert_eq!(stuck.state, AccountState::NeedsReauth);
    assert!(stuck.last_error.unwrap().contains("authorize"));
    let events = world.events(&account.id, "account.needs_reauth").await;
    assert_eq!(events.len(), 1);
    let link = events[0].payload["reauthorize_url"]
        .as_str()
        .unwrap()
        .to_owned();

    // The link in the event works: the user consents again and the account is back.
    let callback = follow(&link).await;
    let restored = world
        .service
        .complete_authorization(callback)
        .await
        .unwrap();
    assert_eq!(restored.state, AccountState::Connected);
    world
        .service
        .tokens()
        .access_token(&account.id)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_provider_that_is_down_is_retried_with_backoff_and_the_account_recovers() {
    let mut options = WorldOptions::new();
    options.policy = RefreshPolicy {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(5),
        ..RefreshPolicy::default()
    };
    let world = World::with(options).await;
    let email = format!("{}@example.test", unique("down"));
    let account = world.connected(&email, SaslMechanism::XOAuth2).await;
    world.expire_in_store(&account.id).await;
    provider().set_fault_for(&world.client_id, Fault::ServerError);
    let before = world.token_calls();

    // Callers hammer the token manager for 3 s: every 10 ms, ~300 calls.
    let started = tokio::time::Instant::now();
    let mut unavailable = 0;
    while started.elapsed() < Duration::from_secs(3) {
        match world.service.tokens().access_token(&account.id).await {
            Err(error) if error.is_transient() => unavailable += 1,
            other => panic!("expected a transient error, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let attempts = world.token_calls() - before;
    // Exponential back-off from 100 ms: attempts near 0, 0.1, 0.3, 0.7, 1.5, 3.1 s (plus jitter).
    assert!(
        (2..=6).contains(&attempts),
        "{attempts} refresh attempts in 3 s"
    );
    assert!(unavailable > 100);
    assert_ne!(
        world.reload(&account.id).await.state,
        AccountState::NeedsReauth
    );

    provider().set_fault_for(&world.client_id, Fault::None);
    let recovered = eventually(Duration::from_secs(10), || async {
        world
            .service
            .tokens()
            .access_token(&account.id)
            .await
            .is_ok()
    })
    .await;
    assert!(
        recovered,
        "the account did not recover once the provider came back"
    );
    let session = open_session(&account, world.service.credentials())
        .await
        .unwrap();
    session.logout().await.unwrap();
}

#[tokio::test]
async fn a_refused_client_flags_the_app_and_each_of_its_accounts_once() {
    let options = WorldOptions::new();
    let client_id = options.client.client_id.clone();
    let world = World::with(options).await;
    let first = world
        .connected(
            &format!("{}@example.test", unique("app-a")),
            SaslMechanism::XOAuth2,
        )
        .await;
    let second = world
        .connected(
            &format!("{}@example.test", unique("app-b")),
            SaslMechanism::XOAuth2,
        )
        .await;
    // The operator rotated the client secret at the provider but not in Postern (like AADSTS7000215).
    provider().register_client(postern_testkit::oauth_provider::ClientConfig::confidential(
        client_id.clone(),
        "a-new-secret-postern-does-not-have",
        crate::support::REDIRECT,
    ));
    world.expire_in_store(&first.id).await;
    world.expire_in_store(&second.id).await;

    for _ in 0..3 {
        let error = world
            .service
            .tokens()
            .access_token(&first.id)
            .await
            .unwrap_err();
        assert!(matches!(error, TokenError::AppFailed { .. }), "{error}");
    }
    let error = world
        .service
        .tokens()
        .access_token(&second.id)
        .await
        .unwrap_err();
    assert!(matches!(error, TokenError::AppFailed { .. }), "{error}");
    assert_eq!(
        world.token_calls(),
        1,
        "once the app is flagged, nothing more is sent to the provider"
    );

    let app = world.service.app(&world.app_id).await.unwrap();
    assert_eq!(app.status.as_str(), "failed");
    assert!(app.last_error.unwrap().contains("client"));
    for account in [&first, &second] {
        let reloaded = world.reload(&account.id).await;
        assert_eq!(reloaded.state, AccountState::Error);
        assert_eq!(
            world.events(&account.id, "account.error").await.len(),
            1,
            "reported once per account"
        );
    }
}
