//! The OAuth client against the shared test provider. Each test registers its own client id and uses
//! its own user, so tests run in parallel without seeing each other's tokens or counters.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] fns: a panic there is a failed test"
)]

mod code_flow;
mod device;
mod errors;
mod refresh;
mod revoke_and_app_only;

use std::collections::BTreeMap;
use std::time::Duration;

use postern_auth::oauth::{
    AuthorizationRequest, ClientAuth, ClientSettings, OAuthClient, http_client,
};
use postern_testkit::oauth_provider::TestOAuthProvider;
use secrecy::SecretString;
use url::Url;

/// The redirect URI every test client registers (nothing listens there: the tests read `Location`).
const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";
const SECRET: &str = "test-secret-0xC0FFEE";
const GMAIL: &str = "https://mail.google.com/";

fn provider() -> &'static TestOAuthProvider {
    TestOAuthProvider::shared()
}

/// Settings pointing at the shared provider, for a confidential client.
fn settings(client_id: &str, scopes: &[&str], extra: &[(&str, &str)]) -> ClientSettings {
    let provider = provider();
    let url = |text: String| Url::parse(&text).unwrap();
    ClientSettings {
        client_id: client_id.to_owned(),
        client_secret: Some(SecretString::from(SECRET)),
        authorize_url: url(provider.authorize_url()),
        token_url: url(provider.token_url()),
        revoke_url: Some(url(provider.revoke_url())),
        device_authorization_url: Some(url(provider.device_code_url())),
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        extra_params: extra
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        client_auth: ClientAuth::Basic,
    }
}

fn client(settings: ClientSettings) -> OAuthClient {
    OAuthClient::new(settings, http_client().unwrap()).unwrap()
}

/// Plays the browser: follows nothing, returns the `Location` the provider's `/authorize` answers with.
async fn authorize(request: &AuthorizationRequest) -> Url {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let response = browser.get(request.url.clone()).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    let location = response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap();
    Url::parse(location).unwrap()
}

/// The value of query parameter `name`.
fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}
