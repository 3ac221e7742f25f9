//! Black-box tests of the test OAuth2 provider over real HTTP (reqwest), as Postern will use it.
//!
//! Most tests share [`TestOAuthProvider::shared`] and isolate themselves by a fresh client id and
//! email, asserting only per-client counters; tests of global faults and global counters start
//! their own provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use postern_testkit::oauth_provider::{
    ClientConfig, Counters, Decision, Fault, ProviderError, RefreshPolicy, TestOAuthProvider,
};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:1/callback";
const GMAIL: &str = "https://mail.google.com/";
const OUTLOOK_IMAP: &str = "https://outlook.office.com/IMAP.AccessAsUser.All";
const EXPIRED_OR_REVOKED: &str = "Token has been expired or revoked.";

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A fresh client registered on `provider` (built from `make(client_id)`), plus a fresh user.
struct Fixture<'p> {
    provider: &'p TestOAuthProvider,
    client_id: String,
    email: String,
    http: reqwest::Client,
}

impl<'p> Fixture<'p> {
    fn new(provider: &'p TestOAuthProvider, make: impl FnOnce(String) -> ClientConfig) -> Self {
        let client_id = unique("client");
        provider.register_client(make(client_id.clone()));
        Self {
            provider,
            client_id,
            email: format!("{}@example.test", unique("user")),
            http: http(),
        }
    }

    fn google(provider: &'p TestOAuthProvider) -> Self {
        Self::new(provider, |id| {
            ClientConfig::google_like(id, "secret", REDIRECT)
        })
    }

    fn counters(&self) -> Counters {
        self.provider.counters_for(&self.client_id)
    }

    async fn authorize(&self, challenge: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", REDIRECT),
            ("state", "st-123"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", &self.email),
        ];
        // An extra parameter replaces a default of the same name.
        params.retain(|(name, _)| extra.iter().all(|(extra_name, _)| extra_name != name));
        params.extend_from_slice(extra);
        let mut url = Url::parse(&self.provider.authorize_url()).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        self.http.get(url).send().await.unwrap()
    }

    /// Authorizes with `extra` parameters and returns the code and its verifier.
    async fn code(&self, extra: &[(&str, &str)]) -> (String, String) {
        let (verifier, challenge) = pkce();
        let response = self.authorize(&challenge, extra).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let query = redirect_query(&response);
        assert_eq!(query.get("state").map(String::as_str), Some("st-123"));
        (query["code"].clone(), verifier)
    }

    async fn redeem(&self, code: &str, verifier: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// A token request authenticated with form fields.
    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = form.to_vec();
        form.extend([
            ("client_id", self.client_id.as_str()),
            ("client_secret", "secret"),
        ]);
        post_form(&self.http, &self.provider.token_url(), &form).await
    }

    async fn introspect(&self, token: &str) -> Value {
        let (status, body) = post_form(
            &self.http,
            &self.provider.introspect_url(),
            &[("token", token)],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        body
    }
}

async fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = http.post(url).form(form).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn redirect_query(response: &reqwest::Response) -> std::collections::HashMap<String, String> {
    let location = response.headers()[LOCATION].to_str().unwrap();
    let url = Url::parse(location).unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    url.query_pairs().into_owned().collect()
}

fn error_of(body: &Value) -> (&str, &str) {
    let error = body["error"].as_str().unwrap();
    (error, body["error_description"].as_str().unwrap())
}

#[tokio::test]
async fn code_flow_with_pkce_rejects_a_bad_verifier_and_a_reused_code() {
    let fx = Fixture::google(TestOAuthProvider::shared());
    let offline = [
        ("access_type", "offline"),
        ("prompt", "consent"),
        ("scope", GMAIL),
    ];
    let (code, verifier) = fx.code(&offline).await;

    let bad = format!("{}x", &verifier[1..]);
    let (status, body) = fx.redeem(&code, &bad).await;
    assert_eq!(
        (status, error_of(&body)),
        (
            StatusCode::BAD_REQUEST,
            ("invalid_grant", "Invalid code verifier.")
        )
    );

    let (status, tokens) = fx.redeem(&code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], GMAIL);
    let access = tokens["access_token"].as_str().unwrap();
    assert!(access.starts_with("pat_"));
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("prt_")
    );
    assert_eq!(fx.introspect(access).await["email"], fx.email.as_str());

    let (status, body) = fx.redeem(&code, &verifier).await;
    assert_eq!(
        (status, error_of(&body).0),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(
        fx.introspect(access).await,
        json!({"active": false}),
        "replay revokes the grant"
    );
    let expected = Counters {
        authorize: 1,
        token: 3,
        token_authorization_code: 3,
        introspect: 2,
        ..Counters::default()
    };
    assert_eq!(fx.counters(), expected);
}

#[tokio::test]
async fn a_code_needs_its_redirect_uri_its_client_and_its_lifetime() {
    let provider = TestOAuthProvider::shared();
    let fx = Fixture::new(provider, |id| ClientConfig {
        code_ttl: Duration::ZERO,
        ..ClientConfig::confidential(id, "secret", REDIRECT)
    });
    let (code, verifier) = fx.code(&[("scope", GMAIL)]).await;
    let (_, body) = fx.redeem(&code, &verifier).await;
    assert_eq!(
        error_of(&body),
        ("invalid_grant", "The authorization code has expired.")
    );

    let fx = Fixture::google(provider);
    let (code, verifier) = fx.code(&[("scope", GMAIL)]).await;
    let wrong_redirect = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:1/other"),
        ("code_verifier", verifier.as_str()),
    ];
    let (_, body) = fx.token(&wrong_redirect).await;
    assert_eq!(error_of(&body).0, "invalid_grant");
    let other = Fixture::google(provider);
    let (_, body) = other.redeem(&code, &verifier).await;
    assert_eq!(
        error_of(&body),
        (
            "invalid_grant",
            "The authorization code was issued to another client."
        )
    );
    let (status, _) = fx.redeem(&code, &verifier).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "failed attempts do not consume the code"
    );
}

#[tokio::test]
async fn authorize_shows_a_page_instead_of_redirecting_to_unknown_places() {
    let fx = Fixture::google(TestOAuthProvider::shared());
    let (_, challenge) = pkce();
    let mut unknown = Url::parse(&fx.provider.authorize_url()).unwrap();
    unknown
        .query_pairs_mut()
        .extend_pairs([("client_id", "nobody"), ("redirect_uri", REDIRECT)]);
    let response = fx.http.get(unknown).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());
    assert!(response.text().await.unwrap().contains("invalid_client"));

    let mut mismatch = Url::parse(&fx.provider.authorize_url()).unwrap();
    let query = [
        ("client_id", fx.client_id.as_str()),
        ("redirect_uri", "http://evil.test/cb"),
        ("code_challenge", &challenge),
    ];
    mismatch.query_pairs_mut().extend_pairs(query);
    let response = fx.http.get(mismatch).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("redirect_uri_mismatch")
    );
}

#[tokio::test]
async fn authorize_redirects_errors_and_denials_with_the_state() {
    let fx = Fixture::google(TestOAuthProvider::shared());
    let (_, challenge) = pkce();
    let no_scope = redirect_query(&fx.authorize(&challenge, &[]).await);
    assert_eq!(no_scope["error"], "invalid_request");
    assert_eq!(no_scope["state"], "st-123");
    let plain_pkce = [("scope", GMAIL), ("code_challenge_method", "plain")];
    let plain_pkce = redirect_query(&fx.authorize(&challenge, &plain_pkce).await);
    assert_eq!(plain_pkce["error"], "invalid_request", "PKCE must be S256");
    let no_hint = redirect_query(
        &fx.authorize(&challenge, &[("scope", GMAIL), ("login_hint", "")])
            .await,
    );
    assert_eq!(
        no_hint["error"], "invalid_request",
        "the test provider needs login_hint"
    );

    fx.provider.set_user_decision(&fx.email, Decision::Deny);
    let denied = redirect_query(&fx.authorize(&challenge, &[("scope", GMAIL)]).await);
    assert_eq!(denied["error"], "access_denied");
    assert_eq!(denied["state"], "st-123");
    assert!(!denied.contains_key("code"));
}

#[tokio::test]
async fn google_policy_gives_refresh_tokens_only_offline_and_on_forced_reconsent() {
    let fx = Fixture::google(TestOAuthProvider::shared());
    let offline = [("scope", GMAIL), ("access_type", "offline")];
    assert!(
        !fx.gets_refresh_token(&[("scope", GMAIL)]).await,
        "online access"
    );
    assert!(fx.gets_refresh_token(&offline).await);
    assert!(
        !fx.gets_refresh_token(&offline).await,
        "re-consent without prompt=consent"
    );
    let forced = [
        ("scope", GMAIL),
        ("access_type", "offline"),
        ("prompt", "consent"),
    ];
    assert!(fx.gets_refresh_token(&forced).await);
}

#[tokio::test]
async fn microsoft_policy_gives_refresh_tokens_only_with_offline_access() {
    let fx = Fixture::new(TestOAuthProvider::shared(), |id| {
        ClientConfig::microsoft_like(id, "secret", REDIRECT)
    });
    let without = [("scope", OUTLOOK_IMAP), ("access_type", "offline")];
    assert!(!fx.gets_refresh_token(&without).await);
    let scope = format!("{OUTLOOK_IMAP} offline_access");
    let (code, verifier) = fx.code(&[("scope", &scope)]).await;
    let (_, body) = fx.redeem(&code, &verifier).await;
    assert!(body["refresh_token"].as_str().unwrap().starts_with("prt_"));
    assert_eq!(body["scope"], scope.as_str());
}

#[tokio::test]
async fn refresh_without_rotation_keeps_the_refresh_token_and_omits_it() {
    let fx = Fixture::google(TestOAuthProvider::shared());
    let minted = fx
        .provider
        .mint_tokens(&fx.client_id, &fx.email, &[GMAIL], None)
        .unwrap();
    let refresh = minted.refresh_token.expose_secret();
    for _ in 0..2 {
        let (status, body) = fx.refresh(refresh).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.get("refresh_token").is_none(),
            "Google sends no new refresh token"
        );
        assert_ne!(body["access_token"], minted.access_token.expose_secret());
        assert_eq!(body["scope"], GMAIL);
    }
    let (_, body) = fx
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("scope", "https://other/"),
        ])
        .await;
    assert_eq!(error_of(&body).0, "invalid_scope");
    assert_eq!(fx.counters().token_refresh, 3);
}

#[tokio::test]
async fn refresh_with_rotation_invalidates_the_previous_refresh_token() {
    let fx = Fixture::new(TestOAuthProvider::shared(), |id| {
        ClientConfig::microsoft_like(id, "secret", REDIRECT)
    });
    let minted = fx
        .provider
        .mint_tokens(&fx.client_id, &fx.email, &[OUTLOOK_IMAP], None)
        .unwrap();
    let first = minted.refresh_token.expose_secret();
    let (status, body) = fx.refresh(first).await;
    assert_eq!(status, StatusCode::OK);
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);

    let (status, body) = fx.refresh(first).await;
    assert_eq!(
        (status, error_of(&body)),
        (
            StatusCode::BAD_REQUEST,
            ("invalid_grant", EXPIRED_OR_REVOKED)
        )
    );
    let (status, body) = fx.refresh(&second).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(body["refresh_token"], second.as_str());
    assert_eq!(fx.counters().token_refresh, 3);
}

#[tokio::test]
async fn a_revoked_grant_refuses_refresh_with_googles_description() {
    let fx = Fixture::google(TestOAuthProvider::shared());
    let minted = fx
        .provider
        .mint_tokens(&fx.client_id, &fx.email, &[GMAIL], None)
        .unwrap();
    assert_eq!(fx.provider.revoke_grants_of(&fx.email), 1);
    let (status, body) = fx.refresh(minted.refresh_token.expose_secret()).await;
    assert_eq!(
        (status, error_of(&body)),
        (
            StatusCode::BAD_REQUEST,
            ("invalid_grant", EXPIRED_OR_REVOKED)
        )
    );
    assert_eq!(
        fx.introspect(minted.access_token.expose_secret()).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn the_revoke_endpoint_kills_the_whole_grant() {
    let fx = Fixture::google(TestOAuthProvider::shared());
    let minted = fx
        .provider
        .mint_tokens(&fx.client_id, &fx.email, &[GMAIL], None)
        .unwrap();
    let revoke_url = fx.provider.revoke_url();
    let access = [("token", minted.access_token.expose_secret())];
    let (status, _) = post_form(&fx.http, &revoke_url, &access).await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = fx.refresh(minted.refresh_token.expose_secret()).await;
    assert_eq!(error_of(&body), ("invalid_grant", EXPIRED_OR_REVOKED));
    let (status, body) = post_form(&fx.http, &revoke_url, &access).await;
    assert_eq!(
        (status, error_of(&body).0),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    assert_eq!(fx.counters().revoke, 2);
}

#[tokio::test]
async fn client_authentication_accepts_basic_and_answers_401() {
    let fx = Fixture::google(TestOAuthProvider::shared());
    let minted = fx
        .provider
        .mint_tokens(&fx.client_id, &fx.email, &[GMAIL], None)
        .unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", minted.refresh_token.expose_secret()),
    ];
    let send = |user: &str, password: &str| {
        let request = fx.http.post(fx.provider.token_url()).form(&form);
        request.basic_auth(user, Some(password)).send()
    };
    assert_eq!(
        send(&fx.client_id, "secret").await.unwrap().status(),
        StatusCode::OK
    );
    for (user, password) in [
        (fx.client_id.as_str(), "wrong"),
        ("unknown-client", "secret"),
    ] {
        let response = send(user, password).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(WWW_AUTHENTICATE));
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "invalid_client"
        );
    }
    let (status, body) = post_form(&fx.http, &fx.provider.token_url(), &form).await;
    assert_eq!(
        (status, error_of(&body).0),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
}

#[tokio::test]
async fn malformed_token_requests_get_rfc_6749_errors() {
    let fx = Fixture::google(TestOAuthProvider::shared());
    let (status, body) = fx.token(&[("grant_type", "password")]).await;
    assert_eq!(
        (status, error_of(&body).0),
        (StatusCode::BAD_REQUEST, "unsupported_grant_type")
    );
    let (_, body) = fx.token(&[]).await;
    assert_eq!(
        error_of(&body),
        ("invalid_request", "Missing parameter: grant_type")
    );
    let json_body = fx
        .http
        .post(fx.provider.token_url())
        .json(&json!({"grant_type": "refresh_token"}));
    let response = json_body.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let expected = Counters {
        token: 2,
        token_unsupported: 2,
        ..Counters::default()
    };
    assert_eq!(
        fx.counters(),
        expected,
        "the JSON request carries no client to attribute"
    );
}

#[tokio::test]
async fn introspection_reports_live_expired_revoked_and_unknown_tokens() {
    let fx = Fixture::google(TestOAuthProvider::shared());
    let minted = fx
        .provider
        .mint_tokens(
            &fx.client_id,
            &fx.email,
            &[GMAIL],
            Some(Duration::from_secs(60)),
        )
        .unwrap();
    let access = minted.access_token.expose_secret();
    let live = fx.introspect(access).await;
    assert_eq!(live["active"], true);
    assert_eq!(live["email"], fx.email.as_str());
    assert_eq!(
        (live["scope"].as_str(), live["client_id"].as_str()),
        (Some(GMAIL), Some(fx.client_id.as_str()))
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 55..=now + 61).contains(&live["exp"].as_u64().unwrap()),
        "{live}"
    );
    assert!(live["sub"].as_str().is_some_and(|sub| !sub.is_empty()));

    let bearer = fx
        .http
        .post(fx.provider.introspect_url())
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.json::<Value>().await.unwrap()["email"],
        fx.email.as_str(),
        "Dovecot's auth mode"
    );
    let basic = fx
        .http
        .post(fx.provider.introspect_url())
        .basic_auth(&fx.client_id, Some("wrong"));
    assert_eq!(
        basic
            .form(&[("token", access)])
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        fx.introspect(minted.refresh_token.expose_secret()).await,
        json!({"active": false})
    );
    assert_eq!(fx.introspect("pat_unknown").await, json!({"active": false}));
    assert_eq!(fx.provider.expire_access_tokens_of(&fx.email), 1);
    assert_eq!(fx.introspect(access).await, json!({"active": false}));
    let (status, _) = fx.refresh(minted.refresh_token.expose_secret()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "expiry leaves the refresh token usable"
    );

    let short = fx
        .provider
        .mint_tokens(&fx.client_id, &fx.email, &[GMAIL], Some(Duration::ZERO))
        .unwrap();
    assert_eq!(
        fx.introspect(short.access_token.expose_secret()).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn device_flow_goes_pending_then_slow_down_then_approved() {
    // Wide enough that two back-to-back polls always fall inside it, even on a loaded machine.
    let interval = Duration::from_millis(250);
    let fx = Fixture::new(TestOAuthProvider::shared(), |id| ClientConfig {
        device_poll_interval: interval,
        ..ClientConfig::confidential(id, "secret", REDIRECT)
    });
    let (status, grant) = fx.device_code().await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(grant["interval"], 1, "whole seconds");
    assert_eq!(
        grant["verification_uri"],
        format!("{}/device", fx.provider.base_url())
    );
    let device_code = grant["device_code"].as_str().unwrap();
    let user_code = grant["user_code"].as_str().unwrap();

    tokio::time::sleep(interval).await;
    assert_eq!(
        error_of(&fx.poll(device_code).await.1).0,
        "authorization_pending"
    );
    assert_eq!(error_of(&fx.poll(device_code).await.1).0, "slow_down");
    fx.provider
        .approve_device(&user_code.to_lowercase(), &fx.email)
        .unwrap();
    tokio::time::sleep(interval * 2).await;
    let (status, tokens) = fx.poll(device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["refresh_token"].as_str().is_some());
    assert_eq!(
        fx.introspect(tokens["access_token"].as_str().unwrap())
            .await["email"],
        fx.email.as_str()
    );

    assert_eq!(
        error_of(&fx.poll(device_code).await.1).0,
        "invalid_grant",
        "single use"
    );
    assert!(matches!(
        fx.provider.approve_device(user_code, &fx.email),
        Err(ProviderError::DeviceNotPending(_))
    ));
    let expected = Counters {
        device_authorization: 1,
        token: 4,
        token_device_code: 4,
        introspect: 1,
        ..Counters::default()
    };
    assert_eq!(fx.counters(), expected);
}

#[tokio::test]
async fn device_flow_ends_in_access_denied_or_expired_token() {
    let provider = TestOAuthProvider::shared();
    let fx = Fixture::new(provider, |id| ClientConfig {
        device_poll_interval: Duration::ZERO,
        ..ClientConfig::confidential(id, "secret", REDIRECT)
    });
    let (_, grant) = fx.device_code().await;
    fx.provider
        .deny_device(grant["user_code"].as_str().unwrap())
        .unwrap();
    let (_, body) = fx.poll(grant["device_code"].as_str().unwrap()).await;
    assert_eq!(error_of(&body).0, "access_denied");

    let (_, grant) = fx.device_code().await;
    fx.provider.set_user_decision(&fx.email, Decision::Deny);
    fx.provider
        .approve_device(grant["user_code"].as_str().unwrap(), &fx.email)
        .unwrap();
    assert_eq!(
        error_of(&fx.poll(grant["device_code"].as_str().unwrap()).await.1).0,
        "access_denied"
    );
    assert!(matches!(
        provider.approve_device("ZZZZ-ZZZZ", &fx.email),
        Err(ProviderError::UnknownUserCode(_))
    ));

    let fx = Fixture::new(provider, |id| ClientConfig {
        device_code_ttl: Duration::ZERO,
        ..ClientConfig::confidential(id, "secret", REDIRECT)
    });
    let (_, grant) = fx.device_code().await;
    assert_eq!(
        error_of(&fx.poll(grant["device_code"].as_str().unwrap()).await.1).0,
        "expired_token"
    );
}

impl Fixture<'_> {
    /// Runs the code flow with `extra` authorization parameters.
    async fn gets_refresh_token(&self, extra: &[(&str, &str)]) -> bool {
        let (code, verifier) = self.code(extra).await;
        let (status, body) = self.redeem(&code, &verifier).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.get("refresh_token").is_some()
    }

    async fn device_code(&self) -> (StatusCode, Value) {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_secret", "secret"),
            ("scope", GMAIL),
        ];
        post_form(&self.http, &self.provider.device_code_url(), &form).await
    }

    async fn poll(&self, device_code: &str) -> (StatusCode, Value) {
        let grant_type = "urn:ietf:params:oauth:grant-type:device_code";
        self.token(&[("grant_type", grant_type), ("device_code", device_code)])
            .await
    }
}

#[tokio::test]
async fn client_credentials_give_app_tokens_for_default_scopes_only() {
    let provider = TestOAuthProvider::shared();
    let fx = Fixture::new(provider, |id| {
        ClientConfig::microsoft_like(id, "secret", REDIRECT)
    });
    let default_scope = "https://outlook.office365.com/.default";
    let (status, body) = fx
        .token(&[
            ("grant_type", "client_credentials"),
            ("scope", default_scope),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none());
    let app = fx.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (app["active"].as_bool(), app["sub"].as_str()),
        (Some(true), Some(fx.client_id.as_str()))
    );
    assert!(app.get("email").is_none(), "no user behind an app token");

    let (_, body) = fx
        .token(&[
            ("grant_type", "client_credentials"),
            ("scope", OUTLOOK_IMAP),
        ])
        .await;
    assert_eq!(error_of(&body).0, "invalid_scope");
    let public = Fixture::new(provider, |id| ClientConfig {
        client_id: id,
        ..ClientConfig::default()
    });
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", default_scope),
        ("client_id", public.client_id.as_str()),
    ];
    let (_, body) = post_form(&public.http, &provider.token_url(), &form).await;
    assert_eq!(error_of(&body).0, "unauthorized_client");
}

#[tokio::test]
async fn global_faults_answer_500_503_or_late_then_recover() {
    let provider = TestOAuthProvider::start().unwrap();
    let fx = Fixture::google(&provider);
    let minted = provider
        .mint_tokens(&fx.client_id, &fx.email, &[GMAIL], None)
        .unwrap();
    let refresh = minted.refresh_token.expose_secret();

    provider.set_fault(Fault::ServerError);
    let (status, body) = fx.refresh(refresh).await;
    assert_eq!(
        (status, error_of(&body).0),
        (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
    );
    provider.set_fault(Fault::Unavailable);
    let response = fx
        .http
        .post(provider.introspect_url())
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[RETRY_AFTER], "1");
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );

    provider.set_fault(Fault::Slow(Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(fx.refresh(refresh).await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    provider.set_fault(Fault::None);
    assert_eq!(fx.refresh(refresh).await.0, StatusCode::OK);
    let expected = Counters {
        token: 3,
        token_refresh: 3,
        introspect: 1,
        ..Counters::default()
    };
    assert_eq!(provider.counters(), expected, "faulted calls count too");
}

#[tokio::test]
async fn a_client_fault_hits_only_that_client() {
    let provider = TestOAuthProvider::shared();
    let (faulty, healthy) = (Fixture::google(provider), Fixture::google(provider));
    provider.set_fault_for(&faulty.client_id, Fault::Unavailable);
    for fx in [&faulty, &healthy] {
        let minted = provider
            .mint_tokens(&fx.client_id, &fx.email, &[GMAIL], None)
            .unwrap();
        let (status, _) = fx.refresh(minted.refresh_token.expose_secret()).await;
        let expected = if fx.client_id == faulty.client_id {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected);
        let introspected = fx
            .http
            .post(provider.introspect_url())
            .form(&[("token", minted.access_token.expose_secret())]);
        assert_eq!(
            introspected.send().await.unwrap().status(),
            expected,
            "attributed by token"
        );
    }
    provider.set_fault_for(&faulty.client_id, Fault::None);
    let minted = provider
        .mint_tokens(&faulty.client_id, &faulty.email, &[GMAIL], None)
        .unwrap();
    assert_eq!(
        faulty.refresh(minted.refresh_token.expose_secret()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn counters_are_exact_and_reset() {
    let provider = TestOAuthProvider::start().unwrap();
    let fx = Fixture::google(&provider);
    let (code, verifier) = fx
        .code(&[("scope", GMAIL), ("access_type", "offline")])
        .await;
    let (_, tokens) = fx.redeem(&code, &verifier).await;
    fx.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    fx.introspect(tokens["access_token"].as_str().unwrap())
        .await;
    post_form(
        &fx.http,
        &provider.revoke_url(),
        &[("token", tokens["access_token"].as_str().unwrap())],
    )
    .await;
    let expected = Counters {
        authorize: 1,
        token: 2,
        token_authorization_code: 1,
        token_refresh: 1,
        introspect: 1,
        revoke: 1,
        ..Counters::default()
    };
    assert_eq!(provider.counters(), expected);
    assert_eq!(provider.counters_for(&fx.client_id), expected);
    assert_eq!(provider.counters_for("someone-else"), Counters::default());
    provider.reset_counters();
    assert_eq!(provider.counters(), Counters::default());
    assert_eq!(provider.counters_for(&fx.client_id), Counters::default());
}

#[tokio::test]
async fn controls_refuse_unknown_names() {
    let provider = TestOAuthProvider::shared();
    let minted = provider.mint_tokens("never-registered", "a@example.test", &[GMAIL], None);
    assert!(matches!(minted, Err(ProviderError::UnknownClient(_))));
    assert_eq!(provider.revoke_grants_of("nobody@example.test"), 0);
    let fx = Fixture::new(provider, |id| ClientConfig {
        refresh_policy: RefreshPolicy::MicrosoftOfflineAccess,
        ..ClientConfig::confidential(id, "secret", REDIRECT)
    });
    let minted = provider
        .mint_tokens(&fx.client_id, &fx.email, &[OUTLOOK_IMAP], None)
        .unwrap();
    assert!(
        minted.refresh_token.expose_secret().starts_with("prt_"),
        "minting ignores the policy"
    );
    assert!(
        !format!("{minted:?}").contains(minted.access_token.expose_secret()),
        "Debug redacts"
    );
}

#[test]
fn the_provider_outlives_the_runtime_that_started_it() {
    let provider = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { TestOAuthProvider::start().unwrap() });
    let fx = Fixture::google(&provider);
    let body = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(fx.introspect("pat_unknown"));
    assert_eq!(body, json!({"active": false}));
}

#[test]
fn dropping_the_provider_closes_its_port() {
    let provider = TestOAuthProvider::start().unwrap();
    let addr = provider.addr();
    assert!(std::net::TcpStream::connect(addr).is_ok());
    drop(provider);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn the_shared_provider_is_one_instance() {
    assert_eq!(
        TestOAuthProvider::shared().addr(),
        TestOAuthProvider::shared().addr()
    );
    assert!(
        TestOAuthProvider::shared()
            .base_url()
            .starts_with("http://127.0.0.1:")
    );
}
