//! Revocation and the client credentials (app-only) grant.

use postern_auth::OAuthError;
use postern_auth::error::OAuthEndpoint;
use postern_testkit::oauth_provider::ClientConfig;
use secrecy::ExposeSecret as _;

use super::*;

const APP_ONLY: &str = "https://outlook.office365.com/.default";

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_grant_and_a_second_revoke_is_harmless() {
    provider().register_client(ClientConfig::google_like("revoke", SECRET, REDIRECT));
    let issued = provider()
        .mint_tokens("revoke", "ivan@example.test", &[GMAIL], None)
        .unwrap();
    let client = client(settings("revoke", &[GMAIL], &[]));

    client.revoke(&issued.refresh_token).await.unwrap();
    let error = client.refresh(&issued.refresh_token).await.unwrap_err();
    assert!(error.is_grant_dead(), "{error:?}");

    // The provider answers `invalid_token` now; the token is unusable, which is what revoke wants.
    client.revoke(&issued.refresh_token).await.unwrap();
    assert_eq!(provider().counters_for("revoke").revoke, 2);
}

#[tokio::test]
async fn revoking_without_a_revocation_endpoint_says_so() {
    let mut no_revoke = settings("revoke-missing", &[GMAIL], &[]);
    no_revoke.revoke_url = None;
    let error = client(no_revoke)
        .revoke(&SecretString::from("prt_x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            OAuthError::EndpointMissing {
                endpoint: OAuthEndpoint::Revocation
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn client_credentials_give_an_app_only_token_without_refresh_token() {
    provider().register_client(ClientConfig::confidential("app-only", SECRET, REDIRECT));
    let client = client(settings("app-only", &[GMAIL], &[]));

    let grant = client
        .client_credentials(&[APP_ONLY.to_owned()])
        .await
        .unwrap();
    assert!(grant.access_token.expose_secret().starts_with("pat_"));
    assert!(grant.refresh_token.is_none());
    assert_eq!(grant.scope.as_deref(), Some(APP_ONLY));
    assert_eq!(
        provider().counters_for("app-only").token_client_credentials,
        1
    );

    let error = client
        .client_credentials(&["https://outlook.office.com/IMAP.AccessAsUser.All".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(
        error.rejection().unwrap().error.as_deref(),
        Some("invalid_scope")
    );
    assert!(!error.is_transient() && !error.is_grant_dead() && !error.is_app_level());
}

#[tokio::test]
async fn client_credentials_need_a_confidential_client() {
    let public = ClientConfig {
        client_id: "app-only-public".to_owned(),
        ..ClientConfig::default()
    };
    provider().register_client(public);
    let mut settings = settings("app-only-public", &[GMAIL], &[]);
    settings.client_secret = None;
    let error = client(settings)
        .client_credentials(&[APP_ONLY.to_owned()])
        .await
        .unwrap_err();
    assert_eq!(
        error.rejection().unwrap().error.as_deref(),
        Some("unauthorized_client")
    );
    assert!(error.is_app_level(), "{error:?}");
}
