//! The authorization-code flow: the URL Postern sends the browser to, and the code exchange.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use postern_auth::OAuthError;
use postern_testkit::oauth_provider::ClientConfig;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use super::*;

#[test]
fn the_authorization_url_carries_state_pkce_scopes_hint_and_extra_params() {
    let client = client(settings(
        "code-url",
        &[GMAIL, "openid"],
        &[("access_type", "offline"), ("prompt", "consent")],
    ));
    let request = client
        .authorization_request(REDIRECT, Some("alice@example.test"))
        .unwrap();
    let url = &request.url;
    assert_eq!(
        url.as_str().split('?').next(),
        Some(provider().authorize_url().as_str())
    );
    assert_eq!(query(url, "response_type").as_deref(), Some("code"));
    assert_eq!(query(url, "client_id").as_deref(), Some("code-url"));
    assert_eq!(query(url, "redirect_uri").as_deref(), Some(REDIRECT));
    assert_eq!(
        query(url, "scope").as_deref(),
        Some("https://mail.google.com/ openid")
    );
    assert_eq!(
        query(url, "login_hint").as_deref(),
        Some("alice@example.test")
    );
    assert_eq!(query(url, "access_type").as_deref(), Some("offline"));
    assert_eq!(query(url, "prompt").as_deref(), Some("consent"));
    assert_eq!(
        query(url, "state").as_deref(),
        Some(request.state.expose_secret())
    );
    assert_eq!(query(url, "code_challenge_method").as_deref(), Some("S256"));
    let verifier = request.pkce_verifier.expose_secret();
    let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    assert_eq!(query(url, "code_challenge"), Some(expected));
    assert!(verifier.len() >= 43, "RFC 7636 wants 43 to 128 characters");

    let again = client.authorization_request(REDIRECT, None).unwrap();
    assert_ne!(again.state.expose_secret(), request.state.expose_secret());
    assert_ne!(again.pkce_verifier.expose_secret(), verifier);
    assert_eq!(query(&again.url, "login_hint"), None);
    assert!(!format!("{request:?}").contains(request.state.expose_secret()));
}

#[test]
fn an_unusable_redirect_uri_is_refused_before_any_call() {
    let client = client(settings("code-bad-redirect", &[GMAIL], &[]));
    for redirect in ["not a url", "http://postern.example.com/cb"] {
        let error = client.authorization_request(redirect, None).unwrap_err();
        assert!(
            matches!(&error, OAuthError::InvalidSettings { field, .. } if field == "redirect_uri"),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn a_full_code_exchange_follows_the_providers_redirect() {
    provider().register_client(ClientConfig::google_like("code-full", SECRET, REDIRECT));
    let client = client(settings(
        "code-full",
        &[GMAIL],
        &[("access_type", "offline"), ("prompt", "consent")],
    ));
    let request = client
        .authorization_request(REDIRECT, Some("bob@example.test"))
        .unwrap();
    let callback = authorize(&request).await;
    assert_eq!(
        query(&callback, "state").as_deref(),
        Some(request.state.expose_secret())
    );
    let code = query(&callback, "code").expect("the redirect carries a code");

    let grant = client
        .exchange_code(&code, &request.pkce_verifier, REDIRECT)
        .await
        .unwrap();
    assert!(grant.access_token.expose_secret().starts_with("pat_"));
    assert!(
        grant
            .refresh_token
            .unwrap()
            .expose_secret()
            .starts_with("prt_")
    );
    assert_eq!(grant.expires_in, Some(Duration::from_secs(3600)));
    assert_eq!(grant.scope.as_deref(), Some(GMAIL));
    let counters = provider().counters_for("code-full");
    assert_eq!(
        (counters.authorize, counters.token_authorization_code),
        (1, 1)
    );
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_invalid_grant() {
    provider().register_client(ClientConfig::google_like("code-verifier", SECRET, REDIRECT));
    let extra = [("access_type", "offline")];
    let client = client(settings("code-verifier", &[GMAIL], &extra));
    let request = client
        .authorization_request(REDIRECT, Some("carol@example.test"))
        .unwrap();
    let code = query(&authorize(&request).await, "code").unwrap();

    let other_verifier = SecretString::from("x".repeat(64));
    let error = client
        .exchange_code(&code, &other_verifier, REDIRECT)
        .await
        .unwrap_err();
    assert!(error.is_grant_dead(), "{error:?}");
    assert!(!error.is_transient() && !error.is_app_level());
    let rejection = error.rejection().unwrap();
    assert_eq!(
        (rejection.status, rejection.error.as_deref()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_google_like_client_without_offline_access_gets_no_refresh_token() {
    provider().register_client(ClientConfig::google_like("code-online", SECRET, REDIRECT));
    let client = client(settings("code-online", &[GMAIL], &[]));
    let request = client
        .authorization_request(REDIRECT, Some("dave@example.test"))
        .unwrap();
    let code = query(&authorize(&request).await, "code").unwrap();

    let error = client
        .exchange_code(&code, &request.pkce_verifier, REDIRECT)
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::MissingRefreshToken),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("access_type=offline") && message.contains("prompt=consent"));
    assert!(!error.is_transient() && !error.is_grant_dead() && !error.is_app_level());
}

#[tokio::test]
async fn a_microsoft_like_client_without_offline_access_gets_no_refresh_token() {
    provider().register_client(ClientConfig::microsoft_like("code-ms", SECRET, REDIRECT));
    let imap = "https://outlook.office.com/IMAP.AccessAsUser.All";
    let without = client(settings("code-ms", &[imap], &[]));
    let request = without
        .authorization_request(REDIRECT, Some("erin@example.test"))
        .unwrap();
    let code = query(&authorize(&request).await, "code").unwrap();
    let error = without
        .exchange_code(&code, &request.pkce_verifier, REDIRECT)
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::MissingRefreshToken),
        "{error:?}"
    );
    assert!(error.to_string().contains("offline_access"));

    let with = client(settings("code-ms", &[imap, "offline_access"], &[]));
    let request = with
        .authorization_request(REDIRECT, Some("erin@example.test"))
        .unwrap();
    let code = query(&authorize(&request).await, "code").unwrap();
    let grant = with
        .exchange_code(&code, &request.pkce_verifier, REDIRECT)
        .await
        .unwrap();
    assert!(grant.refresh_token.is_some());
}
