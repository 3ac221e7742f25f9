//! The token manager: every access token Postern uses comes from here, fresh.
//!
//! - **Proactive**: a token that expires within the margin is refreshed before it is handed out, and
//!   a background sweep ([`TokenManager::run_refresher`]) refreshes tokens ahead of expiry with a
//!   per-account jitter, so thousands of accounts do not hit the provider in the same second.
//! - **Reactive**: when a mail server rejects a token (the SASL error JSON says `401` /
//!   `invalid_token`), [`TokenManager::after_rejection`] refreshes once, unless another caller has
//!   already replaced that token.
//! - **Single flight**: one refresh at a time per account; concurrent callers wait on the same lock
//!   and then find the fresh token in the store, so 500 callers cause one call to the token endpoint.
//! - **Outcomes** (see [`outcome`]): `invalid_grant` marks the account `needs_reauth` once, with a
//!   fresh authorization link in the event, and no further calls are made for it; an app-level
//!   error (`invalid_client`, an expired client secret) flags the app and reports it once on each of
//!   its accounts; network errors and 5xx back off exponentially with jitter, the account staying
//!   healthy until its token has been expired for longer than the grace. Every `last_error` it
//!   writes carries the known-error catalogue's cause and fix when the catalogue knows the answer
//!   ([`explain_oauth_error`]), and every refresh is written to the audit log (actor `system`).
//! - **Keep-alive and forecast** ([`TokenManager::keep_alive`], [`TokenManager::forecast`]):
//!   grants not refreshed for 24 hours are refreshed anyway, and `account.expiring` /
//!   `app.secret_expiring` are announced ahead of time.
//!
//! Non-goal: mail-server connections. Callers bring the verdict of their SASL exchange.

mod explain;
mod forecast;
mod outcome;
mod policy;

pub use explain::{explain_oauth_error, explain_rejection};
/// The Prometheus counter of token refreshes, labelled `outcome`: `ok`, `grant_dead` (the user
/// must authorize again), `app_error` (the app's settings), `transient` (retried later).
pub const REFRESHES_METRIC: &str = "postern_token_refreshes_total";

pub use forecast::{
    ExpiryReason, ForecastPolicy, ForecastReport, days_left, grant_expiry, within_warning,
};
pub use policy::RefreshPolicy;

use crate::context::{AppClientError, AuthContext, SaveGrantError};
use crate::flows::Flows;
use crate::oauth::{OAuthError, TokenGrant};
use chrono::{DateTime, Utc};
use postern_store::{Account, AccountAuth, AccountId, AccountState, AppStatus, StoreError};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// An access token ready to put in a SASL exchange.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    fingerprint: [u8; 32],
    /// When the provider said it expires, if it said.
    pub expires_at: Option<DateTime<Utc>>,
}

impl AccessToken {
    fn new(secret: SecretString, expires_at: Option<DateTime<Utc>>) -> Self {
        let fingerprint = Sha256::digest(secret.expose_secret().as_bytes()).into();
        Self {
            secret,
            fingerprint,
            expires_at,
        }
    }

    /// The token itself.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// Whether this and `other` are the same token (compared by digest).
    pub fn same_as(&self, other: &AccessToken) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Occurs when the account does not exist.
    #[error("account {0} not found")]
    AccountNotFound(String),
    /// Occurs when the account uses a password, not OAuth2.
    #[error("account {0} does not use OAuth2")]
    NotOAuth(String),
    /// Occurs when the account has not been authorized yet.
    #[error("account {0} has not been authorized yet")]
    NotAuthorized(String),
    /// Occurs when the grant is dead (`invalid_grant`): only the user can fix it, by re-authorizing.
    #[error("account needs re-authorization: {reason}")]
    NeedsReauth {
        /// In plain words, why.
        reason: String,
    },
    /// Occurs when the OAuth app itself is refused (bad or expired client secret, unknown client).
    #[error("the OAuth app is failing: {reason}")]
    AppFailed {
        /// In plain words, why.
        reason: String,
    },
    /// Occurs when the token endpoint is unreachable or failing and no valid token is left.
    /// Transient: try again after `retry_at`.
    #[error("the token endpoint is unavailable: {reason}")]
    Unavailable {
        /// What failed.
        reason: String,
        /// When the next refresh attempt is allowed.
        retry_at: Option<DateTime<Utc>>,
    },
    /// Occurs when the app cannot be turned into a client, or a stored secret cannot be decrypted.
    #[error(transparent)]
    AppClient(#[from] AppClientError),
    /// Occurs when the store fails.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenError {
    /// Whether waiting and retrying may help.
    pub fn is_transient(&self) -> bool {
        match self {
            TokenError::Unavailable { .. } => true,
            TokenError::Store(error) => error.is_transient(),
            _ => false,
        }
    }
}

impl From<SaveGrantError> for TokenError {
    fn from(error: SaveGrantError) -> Self {
        match error {
            SaveGrantError::Store(store) => TokenError::Store(store),
        }
    }
}

impl From<postern_vault::VaultError> for TokenError {
    fn from(error: postern_vault::VaultError) -> Self {
        TokenError::AppClient(AppClientError::Vault(error))
    }
}

/// Hands out fresh access tokens. Cheap to clone; clones share the single-flight locks.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: AuthContext,
    flows: Flows,
    policy: RefreshPolicy,
    locks: Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<()>>>>,
}

impl TokenManager {
    /// A token manager over `flows` (which also makes the fresh links for re-authorization).
    pub fn new(flows: Flows, policy: RefreshPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                ctx: flows.context().clone(),
                flows,
                policy,
                locks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.inner.policy
    }

    /// A valid access token for `account_id`, refreshed first if it expires within the margin.
    pub async fn access_token(&self, account_id: &AccountId) -> Result<AccessToken, TokenError> {
        let margin = self.inner.policy.margin;
        self.fresh_or_refresh(account_id, margin, None).await
    }

    /// The server rejected `rejected`: refresh once (unless someone already replaced it) and
    /// return the new token.
    pub async fn after_rejection(
        &self,
        account_id: &AccountId,
        rejected: &AccessToken,
    ) -> Result<AccessToken, TokenError> {
        let margin = self.inner.policy.margin;
        self.fresh_or_refresh(account_id, margin, Some(rejected))
            .await
    }

    /// Refreshes `account_id` if its token expires within `margin` (the sweep's entry point).
    pub async fn refresh_if_expiring(
        &self,
        account_id: &AccountId,
        margin: std::time::Duration,
    ) -> Result<AccessToken, TokenError> {
        self.fresh_or_refresh(account_id, margin, None).await
    }

    /// Holds the account's single-flight refresh lock until the guard is dropped. For code outside
    /// the token manager that calls the token endpoint itself (the doctor shows the endpoint's own
    /// answer): holding the lock keeps it from racing a background refresh, which on a provider that
    /// rotates refresh tokens could otherwise lose one.
    pub async fn refresh_lock(&self, account_id: &AccountId) -> tokio::sync::OwnedMutexGuard<()> {
        self.lock_for(account_id).lock_owned().await
    }

    /// Forgets the lock of a deleted account.
    pub fn forget(&self, account_id: &AccountId) {
        if let Ok(mut locks) = self.inner.locks.lock() {
            locks.remove(account_id);
        }
    }

    async fn fresh_or_refresh(
        &self,
        account_id: &AccountId,
        margin: std::time::Duration,
        rejected: Option<&AccessToken>,
    ) -> Result<AccessToken, TokenError> {
        let account = self.usable_account(account_id).await?;
        if let Some(token) = self.stored_if_fresh(&account, margin, rejected).await? {
            return Ok(token);
        }
        let lock = self.lock_for(account_id);
        let _single_flight = lock.lock().await;
        // Whoever held the lock before us may have refreshed already: look again.
        let account = self.usable_account(account_id).await?;
        if let Some(token) = self.stored_if_fresh(&account, margin, rejected).await? {
            return Ok(token);
        }
        self.refresh(&account).await
    }

    fn lock_for(&self, account_id: &AccountId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.inner.locks.lock() {
            Ok(locks) => locks,
            Err(poisoned) => poisoned.into_inner(),
        };
        locks.entry(account_id.clone()).or_default().clone()
    }

    /// The account, refusing early (and without calling the provider) when only a person can help.
    async fn usable_account(&self, account_id: &AccountId) -> Result<Account, TokenError> {
        let account = self
            .inner
            .ctx
            .store
            .accounts()
            .get(account_id)
            .await?
            .ok_or_else(|| TokenError::AccountNotFound(account_id.to_string()))?;
        if matches!(account.auth, AccountAuth::Password { .. }) {
            return Err(TokenError::NotOAuth(account_id.to_string()));
        }
        if account.state == AccountState::NeedsReauth {
            let reason = account
                .last_error
                .clone()
                .unwrap_or_else(|| "the grant was revoked or expired".to_owned());
            return Err(TokenError::NeedsReauth { reason });
        }
        Ok(account)
    }

    /// The stored access token, if it outlives `margin` and is not the rejected one.
    async fn stored_if_fresh(
        &self,
        account: &Account,
        margin: std::time::Duration,
        rejected: Option<&AccessToken>,
    ) -> Result<Option<AccessToken>, TokenError> {
        let Some(current) = self.stored_access_token(&account.id).await? else {
            return Ok(None);
        };
        if rejected.is_some_and(|rejected| rejected.same_as(&current)) {
            return Ok(None);
        }
        let deadline = Utc::now() + chrono::TimeDelta::from_std(margin).unwrap_or_default();
        let fresh = current.expires_at.is_none_or(|expiry| expiry > deadline);
        Ok(fresh.then_some(current))
    }

    async fn stored_access_token(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<AccessToken>, TokenError> {
        let store = &self.inner.ctx.store;
        let Some(grant) = store.grants().get(account_id).await? else {
            return Ok(None);
        };
        let Some((access, _refresh)) = store.grants().load_tokens(account_id).await? else {
            return Ok(None);
        };
        let access_ref = account_id.access_token_ref();
        let secret = self
            .inner
            .ctx
            .vault
            .open_str(&access_ref.context(), &access)?;
        Ok(Some(AccessToken::new(secret, grant.access_expires_at)))
    }

    /// Calls the token endpoint (the caller holds the account's lock) and acts on the answer.
    async fn refresh(&self, account: &Account) -> Result<AccessToken, TokenError> {
        let grant = self.inner.ctx.store.grants().get(&account.id).await?;
        if let Some(retry_at) = grant.as_ref().and_then(|g| g.next_attempt_at)
            && retry_at > Utc::now()
        {
            return self
                .still_valid_or(
                    account,
                    "backing off after a failed refresh",
                    Some(retry_at),
                )
                .await;
        }
        match self.call_token_endpoint(account).await? {
            Ok(new_grant) => self.refreshed(account, &new_grant, grant.as_ref()).await,
            Err(error) => self.refresh_failed(account, error).await,
        }
    }

    async fn call_token_endpoint(
        &self,
        account: &Account,
    ) -> Result<Result<TokenGrant, OAuthError>, TokenError> {
        let app_id = account
            .auth
            .app_id()
            .ok_or_else(|| TokenError::NotOAuth(account.id.to_string()))?;
        let app = self
            .inner
            .ctx
            .store
            .oauth_apps()
            .get(app_id)
            .await?
            .ok_or_else(|| TokenError::AppFailed {
                reason: format!("OAuth app {app_id} no longer exists"),
            })?;
        if app.status == AppStatus::Failed {
            return Err(TokenError::AppFailed {
                reason: app
                    .last_error
                    .unwrap_or_else(|| "the app is failing".to_owned()),
            });
        }
        let client = self.inner.ctx.client_for(&app).await?;
        match &account.auth {
            AccountAuth::OAuth2App { .. } => Ok(client
                .client_credentials(&crate::context::app_only_scopes(&app))
                .await),
            _ => {
                let refresh_token = self.stored_refresh_token(&account.id).await?;
                tracing::debug!(account = %account.id, "refreshing access token");
                Ok(client.refresh(&refresh_token).await)
            }
        }
    }

    async fn stored_refresh_token(
        &self,
        account_id: &AccountId,
    ) -> Result<SecretString, TokenError> {
        let tokens = self
            .inner
            .ctx
            .store
            .grants()
            .load_tokens(account_id)
            .await?;
        let Some((_, Some(refresh))) = tokens else {
            return Err(TokenError::NotAuthorized(account_id.to_string()));
        };
        let refresh_ref = account_id.refresh_token_ref();
        Ok(self
            .inner
            .ctx
            .vault
            .open_str(&refresh_ref.context(), &refresh)?)
    }

    /// The current token while it is still valid (a failed refresh is no reason to stop using a
    /// good token), otherwise [`TokenError::Unavailable`].
    async fn still_valid_or(
        &self,
        account: &Account,
        reason: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<AccessToken, TokenError> {
        match self.stored_access_token(&account.id).await? {
            Some(token) if token.expires_at.is_none_or(|expiry| expiry > Utc::now()) => Ok(token),
            _ => Err(TokenError::Unavailable {
                reason: reason.to_owned(),
                retry_at,
            }),
        }
    }
}
