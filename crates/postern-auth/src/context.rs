//! What the flows and the token manager share: the store, the vault, the HTTP client, and the
//! step that turns a stored OAuth app into a ready [`OAuthClient`].
//!
//! Non-goal: caching clients. Building one costs a secret decryption and a few URL parses, far
//! below the token endpoint's round trip it precedes; a cache would have to be invalidated when an
//! app changes, for no measurable gain.

use crate::oauth::{ClientSettings, OAuthClient};
use crate::presets::Provider;
use postern_store::{OAuthApp, Store, StoreError};
use postern_vault::{Vault, VaultError};
use std::str::FromStr;
use std::sync::Arc;
use url::Url;

/// Shared handles for the OAuth parts of Postern. Cheap to clone.
#[derive(Clone)]
pub struct AuthContext {
    /// Persistence.
    pub store: Store,
    /// Decrypts client secrets and tokens; seals new ones.
    pub vault: Arc<Vault>,
    /// The HTTP client for token endpoints (no redirects followed).
    pub http: reqwest::Client,
}

/// Occurs when a stored app cannot be turned into a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppClientError {
    /// Occurs when the store cannot be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Occurs when the app's client secret cannot be decrypted.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Occurs when the stored app is not usable (a bad URL, an unknown provider); the message says which field.
    #[error("OAuth app {app_id} is misconfigured: {reason}")]
    Misconfigured {
        /// The app.
        app_id: String,
        /// What is wrong.
        reason: String,
    },
}

impl AuthContext {
    /// A client for `app`, its secret decrypted from the vault.
    pub async fn client_for(&self, app: &OAuthApp) -> Result<OAuthClient, AppClientError> {
        let secret_ref = app.id.client_secret_ref();
        let client_secret = match self.store.secrets().get(&secret_ref).await? {
            Some(sealed) => Some(self.vault.open_str(&secret_ref.context(), &sealed)?),
            None => None,
        };
        let misconfigured = |reason: String| AppClientError::Misconfigured {
            app_id: app.id.to_string(),
            reason,
        };
        let provider =
            Provider::from_str(&app.provider).map_err(|e| misconfigured(e.to_string()))?;
        let parse = |field: &str, text: &str| {
            Url::parse(text).map_err(|e| misconfigured(format!("{field} {text:?}: {e}")))
        };
        let optional = |field: &str, text: &Option<String>| {
            text.as_deref().map(|t| parse(field, t)).transpose()
        };
        let settings = ClientSettings {
            client_id: app.client_id.clone(),
            client_secret,
            authorize_url: parse("authorize_url", &app.authorize_url)?,
            token_url: parse("token_url", &app.token_url)?,
            revoke_url: optional("revoke_url", &app.revoke_url)?,
            device_authorization_url: optional(
                "device_authorization_url",
                &app.device_authorization_url,
            )?,
            scopes: app.scopes.clone(),
            extra_params: app.extra_params.clone(),
            client_auth: provider.preset(app.tenant.as_deref()).client_auth,
        };
        OAuthClient::new(settings, self.http.clone()).map_err(|e| misconfigured(e.to_string()))
    }
}

/// The scopes of an app-only (client-credentials) token request: the provider's app-only scope
/// (Microsoft: `https://outlook.office365.com/.default`) when it has one, else the app's own scopes
/// (a generic provider's app is registered with its `.default`-style scope).
pub fn app_only_scopes(app: &OAuthApp) -> Vec<String> {
    Provider::from_str(&app.provider)
        .ok()
        .and_then(|provider| provider.preset(app.tenant.as_deref()).app_only_scope)
        .map_or_else(|| app.scopes.clone(), |scope| vec![scope.to_owned()])
}

/// Occurs when a new grant cannot be saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveGrantError {
    /// Occurs when the store refuses the write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthContext {
    /// Seals and stores the tokens of a grant in one transaction: a rotated refresh token is durable
    /// before the access token that came with it is handed to anyone.
    pub async fn save_grant(
        &self,
        account_id: &postern_store::AccountId,
        grant: &crate::oauth::TokenGrant,
        consented: bool,
    ) -> Result<postern_store::Grant, SaveGrantError> {
        let access_ref = account_id.access_token_ref();
        let refresh_ref = account_id.refresh_token_ref();
        let access = self
            .vault
            .seal_str(&access_ref.context(), &grant.access_token);
        let refresh = grant
            .refresh_token
            .as_ref()
            .map(|token| self.vault.seal_str(&refresh_ref.context(), token));
        let access_expires_at = grant.expires_in.and_then(|lifetime| {
            chrono::TimeDelta::from_std(lifetime)
                .ok()
                .map(|lifetime| chrono::Utc::now() + lifetime)
        });
        let token_set = postern_store::TokenSet {
            access,
            refresh,
            access_expires_at,
            scope: grant.scope.clone(),
            consented,
        };
        Ok(self
            .store
            .grants()
            .store_tokens(account_id, token_set)
            .await?)
    }
}
