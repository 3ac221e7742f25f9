//! [`OAuthClient`]: the authorization-code flow with PKCE, refresh, client credentials and revocation.
//!
//! Non-goal: choosing when to refresh or storing what comes back; each method is one exchange with the
//! provider and returns its result.
//! Key decision: oauth2 builds the requests and parses token answers wherever it can; Postern's
//! [`Transport`] carries them, so every refusal is decoded the same way whatever the flow.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenUrl,
};
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use super::grant::TokenGrant;
use super::settings::{ClientAuth, ClientSettings, url_problem};
use super::transport::{HttpFailure, Transport, form_post, from_oauth2};
use crate::error::{OAuthEndpoint, OAuthError};

/// How long the default HTTP client waits for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the default HTTP client waits for a whole answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client fit for OAuth calls: no redirect following (a token request must never be replayed
/// to another host), [`CONNECT_TIMEOUT`] and [`REQUEST_TIMEOUT`].
pub fn http_client() -> Result<reqwest::Client, OAuthError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("postern/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(OAuthError::HttpClient)
}

/// oauth2's client with the endpoints this crate lets it call: authorization and token always, device
/// authorization when configured. Revocation goes through [`form_post`] (see there why).
type ConfiguredClient =
    BasicClient<EndpointSet, EndpointMaybeSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// An OAuth2 client for one app.
///
/// `Debug` shows the client id and token URL only.
pub struct OAuthClient {
    pub(super) settings: ClientSettings,
    pub(super) inner: ConfiguredClient,
    pub(super) http: reqwest::Client,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.settings.client_id)
            .field("token_url", &self.settings.token_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Where to send the user's browser, and what to keep until the redirect comes back.
pub struct AuthorizationRequest {
    /// The provider's authorization URL with every parameter.
    pub url: Url,
    /// The `state` value in `url`: single-use, to be bound to the pending account and compared with the
    /// one the redirect brings back.
    pub state: SecretString,
    /// The PKCE verifier behind the S256 challenge in `url`, needed by
    /// [`OAuthClient::exchange_code`].
    pub pkce_verifier: SecretString,
}

impl fmt::Debug for AuthorizationRequest {
    /// Shows the endpoint without the query (which holds the state).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut endpoint = self.url.clone();
        endpoint.set_query(None);
        f.debug_struct("AuthorizationRequest")
            .field("endpoint", &endpoint.as_str())
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// A client for the app `settings` describes, calling out through `http`.
    ///
    /// `http` should not follow redirects; [`http_client`] builds one that does not.
    pub fn new(settings: ClientSettings, http: reqwest::Client) -> Result<Self, OAuthError> {
        settings.validate()?;
        let auth_type = match settings.client_auth {
            ClientAuth::Basic => AuthType::BasicAuth,
            ClientAuth::RequestBody => AuthType::RequestBody,
        };
        let device_url = settings
            .device_authorization_url
            .clone()
            .map(DeviceAuthorizationUrl::from_url);
        let mut inner = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(settings.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(settings.token_url.clone()))
            .set_device_authorization_url_option(device_url)
            .set_auth_type(auth_type);
        if let Some(secret) = &settings.client_secret {
            inner = inner.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        Ok(Self {
            settings,
            inner,
            http,
        })
    }

    /// The settings the client was built with.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Builds an authorization-code request with a random `state`, a PKCE S256 challenge, the app's
    /// scopes and extra parameters, and `login_hint` (which replaces any `login_hint` extra parameter).
    ///
    /// Fails only when `redirect_uri` is not a usable URL.
    pub fn authorization_request(
        &self,
        redirect_uri: &str,
        login_hint: Option<&str>,
    ) -> Result<AuthorizationRequest, OAuthError> {
        let redirect = redirect_url(redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .inner
            .authorize_url(CsrfToken::new_random)
            .set_redirect_uri(Cow::Owned(redirect))
            .set_pkce_challenge(challenge)
            .add_scopes(self.scopes());
        for (name, value) in &self.settings.extra_params {
            if !(login_hint.is_some() && name == "login_hint") {
                request = request.add_extra_param(name.as_str(), value.as_str());
            }
        }
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_owned());
        }
        let (url, state) = request.url();
        Ok(AuthorizationRequest {
            url,
            state: SecretString::from(state.into_secret()),
            pkce_verifier: SecretString::from(verifier.into_secret()),
        })
    }

    /// Redeems the authorization `code` the redirect brought back.
    ///
    /// `redirect_uri` must be the one of the authorization request. Fails with
    /// [`OAuthError::MissingRefreshToken`] when the answer has no refresh token.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<TokenGrant, OAuthError> {
        let redirect = redirect_url(redirect_uri)?;
        let transport = self.transport(OAuthEndpoint::Token);
        let verifier = pkce_verifier.expose_secret();
        let response = self
            .inner
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .set_redirect_uri(Cow::Owned(redirect))
            .request_async(&transport)
            .await
            .map_err(|error| {
                from_oauth2(
                    error,
                    OAuthEndpoint::Token,
                    &self.secrets(&[code, verifier]),
                )
            })?;
        TokenGrant::from_response(&response).require_refresh_token()
    }

    /// Gets a new access token with `refresh_token`.
    ///
    /// When the answer carries a refresh token (Microsoft rotates on every refresh), the old one is dead:
    /// persist the new one before using the access token.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenGrant, OAuthError> {
        let transport = self.transport(OAuthEndpoint::Token);
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let response = self
            .inner
            .exchange_refresh_token(&token)
            .request_async(&transport)
            .await
            .map_err(|error| {
                let secrets = self.secrets(&[refresh_token.expose_secret()]);
                from_oauth2(error, OAuthEndpoint::Token, &secrets)
            })?;
        Ok(TokenGrant::from_response(&response))
    }

    /// Gets an app-only token (client credentials grant) for `scopes`, e.g. Microsoft's
    /// `https://outlook.office365.com/.default`. Needs a confidential app.
    pub async fn client_credentials(&self, scopes: &[String]) -> Result<TokenGrant, OAuthError> {
        let transport = self.transport(OAuthEndpoint::Token);
        let response = self
            .inner
            .exchange_client_credentials()
            .add_scopes(scopes.iter().cloned().map(Scope::new))
            .request_async(&transport)
            .await
            .map_err(|error| from_oauth2(error, OAuthEndpoint::Token, &self.secrets(&[])))?;
        Ok(TokenGrant::from_response(&response))
    }

    /// Revokes `token` at the revocation endpoint. Pass the refresh token to end the whole grant.
    ///
    /// A token the provider calls `invalid_token` (unknown, expired, already revoked) counts as revoked:
    /// it is unusable either way, which is what the caller wants.
    pub async fn revoke(&self, token: &SecretString) -> Result<(), OAuthError> {
        let url = self
            .settings
            .revoke_url
            .as_ref()
            .ok_or(OAuthError::EndpointMissing {
                endpoint: OAuthEndpoint::Revocation,
            })?;
        let secret = token.expose_secret();
        let params = vec![("token", secret), ("token_type_hint", "refresh_token")];
        let request = form_post(&self.settings, url, params)?;
        match self
            .transport(OAuthEndpoint::Revocation)
            .send(request)
            .await
        {
            Ok(_) => Ok(()),
            Err(HttpFailure::Rejected(rejection)) if rejection.error_is("invalid_token") => Ok(()),
            Err(failure) => {
                Err(failure.into_error(OAuthEndpoint::Revocation, &self.secrets(&[secret])))
            }
        }
    }

    pub(super) fn transport(&self, endpoint: OAuthEndpoint) -> Transport<'_> {
        Transport {
            http: &self.http,
            endpoint,
        }
    }

    pub(super) fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.settings.scopes.iter().cloned().map(Scope::new)
    }

    /// Everything secret a request carried, to cut out of the provider's answer: `extra` and the
    /// client secret.
    pub(super) fn secrets<'s>(&'s self, extra: &[&'s str]) -> Vec<&'s str> {
        let client_secret = self.settings.client_secret.as_ref();
        let client_secret = client_secret.map(|secret| secret.expose_secret());
        extra.iter().copied().chain(client_secret).collect()
    }
}

fn redirect_url(redirect_uri: &str) -> Result<RedirectUrl, OAuthError> {
    let invalid = |problem: &str| OAuthError::InvalidSettings {
        field: "redirect_uri".to_owned(),
        problem: problem.to_owned(),
    };
    let redirect =
        RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| invalid("is not a URL"))?;
    match url_problem(redirect.url()) {
        Some(problem) => Err(invalid(problem)),
        None => Ok(redirect),
    }
}
