//! Refresh with and without rotation, and the grant dying.

use postern_testkit::oauth_provider::ClientConfig;
use secrecy::ExposeSecret as _;

use super::*;

#[tokio::test]
async fn a_rotating_refresh_returns_a_new_token_and_kills_the_old_one() {
    provider().register_client(ClientConfig::microsoft_like(
        "refresh-rotate",
        SECRET,
        REDIRECT,
    ));
    let issued = provider()
        .mint_tokens(
            "refresh-rotate",
            "frank@example.test",
            &["offline_access"],
            None,
        )
        .unwrap();
    let client = client(settings("refresh-rotate", &["offline_access"], &[]));

    let grant = client.refresh(&issued.refresh_token).await.unwrap();
    let rotated = grant
        .refresh_token
        .expect("a rotating provider sends a new refresh token");
    assert_ne!(
        rotated.expose_secret(),
        issued.refresh_token.expose_secret()
    );
    assert_ne!(
        grant.access_token.expose_secret(),
        issued.access_token.expose_secret()
    );

    let error = client.refresh(&issued.refresh_token).await.unwrap_err();
    assert!(error.is_grant_dead(), "{error:?}");
    assert!(!error.is_transient() && !error.is_app_level());

    let again = client.refresh(&rotated).await.unwrap();
    assert!(again.refresh_token.is_some());
    assert_eq!(provider().counters_for("refresh-rotate").token_refresh, 3);
}

#[tokio::test]
async fn a_non_rotating_refresh_keeps_the_old_token_valid() {
    provider().register_client(ClientConfig::google_like("refresh-keep", SECRET, REDIRECT));
    let issued = provider()
        .mint_tokens("refresh-keep", "grace@example.test", &[GMAIL], None)
        .unwrap();
    let client = client(settings("refresh-keep", &[GMAIL], &[]));

    for _ in 0..2 {
        let grant = client.refresh(&issued.refresh_token).await.unwrap();
        assert!(
            grant.refresh_token.is_none(),
            "Google sends no refresh token on refresh"
        );
        assert_eq!(grant.scope.as_deref(), Some(GMAIL));
        assert_eq!(grant.expires_in, Some(Duration::from_secs(3600)));
    }
}

#[tokio::test]
async fn a_revoked_grant_is_dead_and_keeps_googles_description() {
    provider().register_client(ClientConfig::google_like(
        "refresh-revoked",
        SECRET,
        REDIRECT,
    ));
    let issued = provider()
        .mint_tokens("refresh-revoked", "heidi@example.test", &[GMAIL], None)
        .unwrap();
    assert_eq!(provider().revoke_grants_of("heidi@example.test"), 1);
    let client = client(settings("refresh-revoked", &[GMAIL], &[]));

    let error = client.refresh(&issued.refresh_token).await.unwrap_err();
    assert!(error.is_grant_dead(), "{error:?}");
    let rejection = error.rejection().unwrap();
    assert_eq!(rejection.status, 400);
    assert_eq!(rejection.error.as_deref(), Some("invalid_grant"));
    assert_eq!(
        rejection.description.as_deref(),
        Some("Token has been expired or revoked.")
    );
    let message = error.to_string();
    assert!(message.contains("invalid_grant") && message.contains("expired or revoked"));
    let token = issued.refresh_token.expose_secret();
    assert!(!message.contains(token) && !format!("{error:?}").contains(token));
}
