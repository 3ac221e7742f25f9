//! How failures are classified: transient (retry later), grant dead (re-authorize), app level (fix the app).

use std::net::TcpListener;

use postern_auth::OAuthError;
use postern_auth::error::OAuthEndpoint;
use postern_auth::oauth::OAuthClient;
use postern_testkit::oauth_provider::{ClientConfig, Fault};
use secrecy::SecretString;

use super::*;

async fn refresh_error(client_id: &str, fault: Fault) -> OAuthError {
    provider().register_client(ClientConfig::confidential(client_id, SECRET, REDIRECT));
    let email = format!("{client_id}@example.test");
    let issued = provider()
        .mint_tokens(client_id, &email, &[GMAIL], None)
        .unwrap();
    provider().set_fault_for(client_id, fault);
    let client = client(settings(client_id, &[GMAIL], &[]));
    client.refresh(&issued.refresh_token).await.unwrap_err()
}

#[tokio::test]
async fn a_500_is_transient_and_not_retried_behind_the_callers_back() {
    let error = refresh_error("errors-500", Fault::ServerError).await;
    assert!(error.is_transient(), "{error:?}");
    assert!(!error.is_grant_dead() && !error.is_app_level());
    let rejection = error.rejection().unwrap();
    assert_eq!(
        (rejection.status, rejection.error.as_deref()),
        (500, Some("server_error"))
    );
    assert_eq!(provider().counters_for("errors-500").token_refresh, 1);
}

#[tokio::test]
async fn a_503_is_transient_with_its_retry_after() {
    let error = refresh_error("errors-503", Fault::Unavailable).await;
    assert!(error.is_transient(), "{error:?}");
    let rejection = error.rejection().unwrap();
    assert_eq!(rejection.status, 503);
    assert_eq!(rejection.error.as_deref(), Some("temporarily_unavailable"));
    assert_eq!(rejection.retry_after, Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn a_timeout_is_a_transient_network_error() {
    let client_id = "errors-timeout";
    provider().register_client(ClientConfig::confidential(client_id, SECRET, REDIRECT));
    provider().set_fault_for(client_id, Fault::Slow(Duration::from_secs(3)));
    let impatient = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let client = OAuthClient::new(settings(client_id, &[GMAIL], &[]), impatient).unwrap();
    let error = client
        .refresh(&SecretString::from("prt_whatever"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            OAuthError::Network {
                endpoint: OAuthEndpoint::Token,
                timeout: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert!(error.to_string().contains("timed out"));
}

#[tokio::test]
async fn a_refused_connection_is_a_transient_network_error() {
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut unreachable = settings("errors-unreachable", &[GMAIL], &[]);
    unreachable.token_url = Url::parse(&format!("http://127.0.0.1:{closed_port}/token")).unwrap();
    let error = client(unreachable)
        .refresh(&SecretString::from("prt_whatever"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::Network { timeout: false, .. }),
        "{error:?}"
    );
    assert!(error.is_transient() && !error.is_grant_dead());
}

#[tokio::test]
async fn an_unknown_client_is_app_level() {
    let client = client(settings("errors-never-registered", &[GMAIL], &[]));
    let error = client
        .refresh(&SecretString::from("prt_whatever"))
        .await
        .unwrap_err();
    assert!(error.is_app_level(), "{error:?}");
    assert!(!error.is_transient() && !error.is_grant_dead());
    let rejection = error.rejection().unwrap();
    assert_eq!(
        (rejection.status, rejection.error.as_deref()),
        (401, Some("invalid_client"))
    );
}

#[tokio::test]
async fn a_wrong_secret_is_app_level_and_never_shown() {
    let client_id = "errors-wrong-secret";
    provider().register_client(ClientConfig::confidential(client_id, SECRET, REDIRECT));
    let mut wrong = settings(client_id, &[GMAIL], &[]);
    let wrong_secret = "wrong-secret-0xBAD";
    wrong.client_secret = Some(SecretString::from(wrong_secret));
    wrong.client_auth = ClientAuth::RequestBody;
    let client = client(wrong);
    let error = client
        .refresh(&SecretString::from("prt_whatever"))
        .await
        .unwrap_err();
    assert!(error.is_app_level(), "{error:?}");
    for shown in [
        error.to_string(),
        format!("{error:?}"),
        format!("{client:?}"),
    ] {
        assert!(
            !shown.contains(wrong_secret) && !shown.contains("prt_whatever"),
            "{shown}"
        );
    }
}

#[test]
fn bad_settings_are_refused_at_construction() {
    let mut insecure = settings("errors-settings", &[GMAIL], &[]);
    insecure.token_url = Url::parse("http://oauth.example.com/token").unwrap();
    let error = OAuthClient::new(insecure, http_client().unwrap()).unwrap_err();
    assert!(
        matches!(&error, OAuthError::InvalidSettings { field, .. } if field == "token_url"),
        "{error:?}"
    );
}

#[test]
fn the_client_futures_can_move_between_threads() {
    fn assert_send<T: Send>(_: &T) {}
    let client = client(settings("errors-send", &[GMAIL], &[]));
    let token = SecretString::from("prt_x");
    assert_send(&client.refresh(&token));
    assert_send(&client.exchange_code("c", &token, REDIRECT));
    assert_send(&client.client_credentials(&[]));
    assert_send(&client.start_device_flow());
    assert_send(&client.revoke(&token));
}
