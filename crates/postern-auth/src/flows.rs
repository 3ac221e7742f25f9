//! The flows that give an account its grant: authorization code with PKCE and `state`, the device
//! code flow (RFC 8628) for headless set-ups, and client credentials for app-only access.
//!
//! The authorization-code flow is split in two because a browser sits in the middle: [`Flows::start`]
//! draws a random `state` and a PKCE verifier, stores the verifier sealed and the state only as its
//! SHA-256 (single use, ten minutes, bound to one pending account), and returns the provider link;
//! [`Flows::complete`] takes the state back exactly once, exchanges the code with the verifier, and
//! stores the tokens. Anything wrong with the state (unknown, replayed, expired) is refused before
//! anything else is touched.
//!
//! Non-goal: deciding that an account is connected. That needs a real IMAP login, which the account
//! service performs after [`Flows::complete`]; this crate does not talk to mail servers.

use crate::context::{AppClientError, AuthContext, SaveGrantError};
use crate::oauth::{DeviceAuthorization, OAuthError};
use chrono::{DateTime, Utc};
use postern_store::{
    Account, AccountAuth, AccountState, NewAuthorization, OAuthApp, PendingAuthorization,
    StoreError, TakeOutcome, Transition,
};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use url::Url;

/// A provider link to send the user to, and until when its `state` is accepted.
#[derive(Debug, Clone)]
pub struct AuthorizationLink {
    /// The provider's authorization URL with state, PKCE challenge, scopes and login hint.
    pub url: Url,
    /// When the pending authorization expires.
    pub expires_at: DateTime<Utc>,
}

/// The query of a request to the OAuth callback, as the browser brought it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Callback {
    /// The `state` Postern put in the link.
    pub state: Option<String>,
    /// The authorization code, on success.
    pub code: Option<String>,
    /// The provider's error code, e.g. `access_denied`.
    pub error: Option<String>,
    /// The provider's words about the error.
    pub error_description: Option<String>,
}

/// Why a flow did not produce a grant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// Occurs when the callback has no `state`, or no `code` and no `error`.
    #[error("the callback is missing its `{0}` parameter")]
    MissingParameter(&'static str),
    /// Occurs when the `state` was never issued by this server (or was purged long ago).
    #[error("this authorization link is not known to this server; start again from a fresh link")]
    UnknownState,
    /// Occurs when the `state` was issued more than ten minutes ago.
    #[error("this authorization link has expired (links last ten minutes); ask for a fresh one")]
    ExpiredState,
    /// Occurs when the `state` was already used once: a replayed or double-submitted callback.
    #[error("this authorization link was already used; ask for a fresh one")]
    ReplayedState,
    /// Occurs when the user (or the provider) declined at the consent screen.
    #[error("authorization was declined: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Declined {
        /// The account the link was for.
        account_id: String,
        /// The provider's error code (`access_denied`, `consent_required`, ...).
        error: String,
        /// The provider's words, if any.
        description: Option<String>,
    },
    /// Occurs when the provider refused to issue tokens (a bad code or verifier, no refresh token, ...).
    #[error("the provider refused to issue tokens: {source}")]
    Exchange {
        /// The account the flow was for.
        account_id: String,
        /// The provider's answer, classified.
        source: OAuthError,
    },
    /// Occurs when the account does not use OAuth2 of the kind the flow needs.
    #[error("account {account_id} does not use {expected}")]
    WrongAuthKind {
        /// The account.
        account_id: String,
        /// What the flow needs (`oauth2` or `oauth2_app`).
        expected: &'static str,
    },
    /// Occurs when the account or its app no longer exists.
    #[error("{what} not found")]
    NotFound {
        /// What is missing.
        what: String,
    },
    /// Occurs when the app cannot be turned into a client.
    #[error(transparent)]
    AppClient(#[from] AppClientError),
    /// Occurs when the store fails.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SaveGrantError> for FlowError {
    fn from(error: SaveGrantError) -> Self {
        match error {
            SaveGrantError::Store(store) => FlowError::Store(store),
        }
    }
}

impl FlowError {
    /// Whether the browser's request itself was at fault (a 400 page), rather than the server.
    pub fn is_callers_fault(&self) -> bool {
        matches!(
            self,
            FlowError::MissingParameter(_)
                | FlowError::UnknownState
                | FlowError::ExpiredState
                | FlowError::ReplayedState
                | FlowError::Declined { .. }
                | FlowError::Exchange { .. }
        )
    }
}

/// The OAuth2 flows of Postern.
#[derive(Clone)]
pub struct Flows {
    ctx: AuthContext,
    callback_url: String,
}

/// Wraps the provider's refusal with the account it was for.
fn refused_for(account: &Account) -> impl FnOnce(OAuthError) -> FlowError + '_ {
    move |source| FlowError::Exchange {
        account_id: account.id.to_string(),
        source,
    }
}

/// SHA-256 of a `state`: what the store keeps, so a database leak does not leak live states.
fn state_hash(state: &str) -> [u8; 32] {
    Sha256::digest(state.as_bytes()).into()
}

impl Flows {
    /// Flows whose default redirect is `callback_url` (Postern's `/oauth/callback`).
    pub fn new(ctx: AuthContext, callback_url: String) -> Self {
        Self { ctx, callback_url }
    }

    /// The shared context.
    pub fn context(&self) -> &AuthContext {
        &self.ctx
    }

    /// Starts an authorization-code flow for `account` and returns the provider link. The provider
    /// sends the browser back to the app's registered redirect URI, or Postern's callback.
    pub async fn start(&self, account: &Account) -> Result<AuthorizationLink, FlowError> {
        let AccountAuth::OAuth2 { app_id, .. } = &account.auth else {
            return Err(FlowError::WrongAuthKind {
                account_id: account.id.to_string(),
                expected: "oauth2",
            });
        };
        let app = self.app(app_id).await?;
        let client = self.ctx.client_for(&app).await?;
        let redirect_uri = app
            .redirect_uri
            .clone()
            .unwrap_or_else(|| self.callback_url.clone());
        let request = client
            .authorization_request(&redirect_uri, Some(&account.email))
            .map_err(|e| AppClientError::Misconfigured {
                app_id: app.id.to_string(),
                reason: e.to_string(),
            })?;
        let hash = state_hash(request.state.expose_secret());
        let verifier_ref = PendingAuthorization::verifier_ref(&hash);
        let verifier = self
            .ctx
            .vault
            .seal_str(&verifier_ref.context(), &request.pkce_verifier);
        let pending = self
            .ctx
            .store
            .authorizations()
            .create(
                NewAuthorization {
                    state_hash: hash,
                    account_id: account.id.clone(),
                    app_id: app.id.clone(),
                    redirect_uri,
                },
                &verifier,
            )
            .await?;
        Ok(AuthorizationLink {
            url: request.url,
            expires_at: pending.expires_at,
        })
    }

    /// Finishes an authorization-code flow from the callback's query: checks the state (once),
    /// handles a decline, exchanges the code and stores the tokens. Returns the account.
    pub async fn complete(&self, callback: Callback) -> Result<Account, FlowError> {
        let state = callback
            .state
            .as_deref()
            .ok_or(FlowError::MissingParameter("state"))?;
        let (pending, verifier) = self.take_state(state).await?;
        let account_id = pending.account_id.to_string();
        if let Some(error) = callback.error {
            let declined = FlowError::Declined {
                account_id: account_id.clone(),
                error,
                description: callback.error_description,
            };
            return Err(self.recorded(&pending, declined).await?);
        }
        let code = callback
            .code
            .as_deref()
            .ok_or(FlowError::MissingParameter("code"))?;
        let app = self.app(&pending.app_id).await?;
        let client = self.ctx.client_for(&app).await?;
        let verifier_ref = PendingAuthorization::verifier_ref(&pending.state_hash);
        let verifier = self
            .ctx
            .vault
            .open_str(&verifier_ref.context(), &verifier)
            .map_err(AppClientError::from)?;
        let grant = match client
            .exchange_code(code, &verifier, &pending.redirect_uri)
            .await
        {
            Ok(grant) => grant,
            Err(source) => {
                let refused = FlowError::Exchange { account_id, source };
                return Err(self.recorded(&pending, refused).await?);
            }
        };
        self.ctx
            .save_grant(&pending.account_id, &grant, true)
            .await?;
        self.account(&pending.account_id).await
    }

    /// Asks the provider for a device code (RFC 8628): the caller shows the user the URL and code,
    /// then calls [`Flows::finish_device`].
    pub async fn start_device(&self, account: &Account) -> Result<DeviceAuthorization, FlowError> {
        let client = self.oauth_client(account).await?;
        client
            .start_device_flow()
            .await
            .map_err(refused_for(account))
    }

    /// Polls politely until the user approves (or the code expires), then stores the tokens.
    pub async fn finish_device(
        &self,
        account: &Account,
        device: &DeviceAuthorization,
    ) -> Result<(), FlowError> {
        let client = self.oauth_client(account).await?;
        let grant = client
            .wait_for_device(device)
            .await
            .map_err(refused_for(account))?;
        self.ctx.save_grant(&account.id, &grant, true).await?;
        Ok(())
    }

    /// App-only access: fetches a token with the app's client-credentials grant and stores it.
    pub async fn app_only(&self, account: &Account) -> Result<(), FlowError> {
        let AccountAuth::OAuth2App { app_id, .. } = &account.auth else {
            return Err(FlowError::WrongAuthKind {
                account_id: account.id.to_string(),
                expected: "oauth2_app",
            });
        };
        let app = self.app(app_id).await?;
        let client = self.ctx.client_for(&app).await?;
        let grant = client
            .client_credentials(&crate::context::app_only_scopes(&app))
            .await
            .map_err(refused_for(account))?;
        self.ctx.save_grant(&account.id, &grant, true).await?;
        Ok(())
    }

    async fn take_state(
        &self,
        state: &str,
    ) -> Result<(PendingAuthorization, postern_vault::Sealed), FlowError> {
        let taken = self
            .ctx
            .store
            .authorizations()
            .take(&state_hash(state), Utc::now())
            .await?;
        match taken {
            TakeOutcome::Taken(pending, verifier) => Ok((pending, verifier)),
            TakeOutcome::Unknown => Err(FlowError::UnknownState),
            TakeOutcome::Expired => Err(FlowError::ExpiredState),
            TakeOutcome::AlreadyUsed => Err(FlowError::ReplayedState),
        }
    }

    /// Records a decline on the account (its state does not change: it still awaits authorization)
    /// and returns the error to show.
    /// Records why the flow failed on the account (its state does not change: it still awaits
    /// authorization), so whoever looks at the account sees the cause, and returns the error.
    async fn recorded(
        &self,
        pending: &PendingAuthorization,
        failure: FlowError,
    ) -> Result<FlowError, FlowError> {
        let account = self.account(&pending.account_id).await?;
        let transition = Transition {
            to: account.state,
            last_error: Some(failure.to_string()),
            event: None,
        };
        self.ctx
            .store
            .accounts()
            .transition(&pending.account_id, transition)
            .await?;
        Ok(failure)
    }

    async fn oauth_client(
        &self,
        account: &Account,
    ) -> Result<crate::oauth::OAuthClient, FlowError> {
        let app_id = account
            .auth
            .app_id()
            .ok_or_else(|| FlowError::WrongAuthKind {
                account_id: account.id.to_string(),
                expected: "oauth2",
            })?;
        let app = self.app(app_id).await?;
        Ok(self.ctx.client_for(&app).await?)
    }

    async fn app(&self, id: &postern_store::AppId) -> Result<OAuthApp, FlowError> {
        self.ctx
            .store
            .oauth_apps()
            .get(id)
            .await?
            .ok_or_else(|| FlowError::NotFound {
                what: format!("OAuth app {id}"),
            })
    }

    async fn account(&self, id: &postern_store::AccountId) -> Result<Account, FlowError> {
        self.ctx
            .store
            .accounts()
            .get(id)
            .await?
            .ok_or_else(|| FlowError::NotFound {
                what: format!("account {id}"),
            })
    }
}

/// Whether an account state means "waiting for the user", for callers deciding what to show.
pub fn awaits_user(state: AccountState) -> bool {
    matches!(
        state,
        AccountState::PendingAuthorization | AccountState::NeedsReauth
    )
}
