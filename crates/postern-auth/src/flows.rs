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
//! Every step is written to the audit log (`authorize.started`, `authorize.completed` ok or failed,
//! `authorize.denied`), with the actor the flows act for ([`Flows::acting_as`]; `system` by default,
//! `browser` for the callback), and never a code, verifier, state or token. An audit write that fails
//! is logged and does not fail the flow.
//!
//! Non-goal: deciding that an account is connected. That needs a real IMAP login, which the account
//! service performs after [`Flows::complete`]; this crate does not talk to mail servers.

use crate::context::{AppClientError, AuthContext, SaveGrantError};
use crate::oauth::{DeviceAuthorization, OAuthError};
use chrono::{DateTime, Utc};
use postern_store::{
    ACTOR_BROWSER, ACTOR_SYSTEM, Account, AccountAuth, AccountId, AccountState, AppId, AuditAction,
    AuditOutcome, NewAuditEntry, NewAuthorization, OAuthApp, PendingAuthorization, StoreError,
    TakeOutcome, Transition,
};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::sync::Arc;
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
    /// Who the audit log names for the steps these flows take (the callback is always `browser`).
    actor: Arc<str>,
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
        Self {
            ctx,
            callback_url,
            actor: Arc::from(ACTOR_SYSTEM),
        }
    }

    /// The same flows, writing `actor` (an API token's name, `cli`) into the audit log for the steps
    /// they take. Cheap: the context is shared.
    pub fn acting_as(&self, actor: &str) -> Self {
        Self {
            actor: Arc::from(actor),
            ..self.clone()
        }
    }

    /// Who the audit log names for the steps these flows take.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The shared context.
    pub fn context(&self) -> &AuthContext {
        &self.ctx
    }

    /// Starts an authorization-code flow for `account` and returns the provider link. The provider
    /// sends the browser back to the app's registered redirect URI, or Postern's callback.
    pub async fn start(&self, account: &Account) -> Result<AuthorizationLink, FlowError> {
        let started = self.issue_link(account).await;
        let detail = match &started {
            Ok(link) => format!("provider link issued, valid until {}", link.expires_at),
            Err(error) => format!("no provider link: {error}"),
        };
        let outcome = outcome_of(&started);
        self.audit(account, AuditAction::AuthorizeStarted, outcome, detail)
            .await;
        started
    }

    async fn issue_link(&self, account: &Account) -> Result<AuthorizationLink, FlowError> {
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
        let (pending, verifier) = match self.take_state(state).await {
            Ok(taken) => taken,
            Err(refused) => {
                // No account is known for a bad state; the entry still shows replays and strays.
                let entry = NewAuditEntry::new(
                    ACTOR_BROWSER,
                    AuditAction::AuthorizeCompleted,
                    AuditOutcome::Failed,
                )
                .with_detail(refused.to_string());
                self.ctx.store.audit().record_or_warn(entry).await;
                return Err(refused);
            }
        };
        let account_id = pending.account_id.to_string();
        if let Some(error) = callback.error {
            let declined = FlowError::Declined {
                account_id: account_id.clone(),
                error,
                description: callback.error_description,
            };
            self.audit_pending(&pending, AuditAction::AuthorizeDenied, &declined)
                .await;
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
                self.audit_pending(&pending, AuditAction::AuthorizeCompleted, &refused)
                    .await;
                return Err(self.recorded(&pending, refused).await?);
            }
        };
        self.ctx
            .save_grant(&pending.account_id, &grant, true)
            .await?;
        let entry = NewAuditEntry::new(
            ACTOR_BROWSER,
            AuditAction::AuthorizeCompleted,
            AuditOutcome::Ok,
        )
        .with_account(&pending.account_id)
        .with_app(&pending.app_id)
        .with_detail(granted_detail("authorization code", &grant));
        self.ctx.store.audit().record_or_warn(entry).await;
        self.account(&pending.account_id).await
    }

    /// Asks the provider for a device code (RFC 8628): the caller shows the user the URL and code,
    /// then calls [`Flows::finish_device`].
    pub async fn start_device(&self, account: &Account) -> Result<DeviceAuthorization, FlowError> {
        let started = async {
            let client = self.oauth_client(account).await?;
            client
                .start_device_flow()
                .await
                .map_err(refused_for(account))
        }
        .await;
        let detail = match &started {
            Ok(device) => format!(
                "device code issued; the user enters it at {}",
                device.verification_uri
            ),
            Err(error) => format!("no device code: {error}"),
        };
        let outcome = outcome_of(&started);
        self.audit(account, AuditAction::AuthorizeStarted, outcome, detail)
            .await;
        started
    }

    /// Polls politely until the user approves (or the code expires), then stores the tokens.
    pub async fn finish_device(
        &self,
        account: &Account,
        device: &DeviceAuthorization,
    ) -> Result<(), FlowError> {
        let granted = async {
            let client = self.oauth_client(account).await?;
            client
                .wait_for_device(device)
                .await
                .map_err(refused_for(account))
        }
        .await;
        self.audit_grant(account, "device code", &granted).await;
        self.ctx.save_grant(&account.id, &granted?, true).await?;
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
        let granted = async {
            let app = self.app(app_id).await?;
            let client = self.ctx.client_for(&app).await?;
            client
                .client_credentials(&crate::context::app_only_scopes(&app))
                .await
                .map_err(refused_for(account))
        }
        .await;
        self.audit_grant(account, "client credentials", &granted)
            .await;
        self.ctx.save_grant(&account.id, &granted?, true).await?;
        Ok(())
    }

    /// Writes one audit entry about `account`, naming this flow's actor (never failing the flow).
    async fn audit(
        &self,
        account: &Account,
        action: AuditAction,
        outcome: AuditOutcome,
        detail: String,
    ) {
        let mut entry = NewAuditEntry::new(&*self.actor, action, outcome)
            .with_account(&account.id)
            .with_detail(detail);
        if let Some(app_id) = account.auth.app_id() {
            entry = entry.with_app(app_id);
        }
        self.ctx.store.audit().record_or_warn(entry).await;
    }

    /// Writes `authorize.completed` for a grant obtained (or refused) without the browser.
    async fn audit_grant(
        &self,
        account: &Account,
        how: &str,
        granted: &Result<crate::oauth::TokenGrant, FlowError>,
    ) {
        let detail = match granted {
            Ok(grant) => granted_detail(how, grant),
            Err(error) => format!("{how}: {error}"),
        };
        let outcome = outcome_of(granted);
        self.audit(account, AuditAction::AuthorizeCompleted, outcome, detail)
            .await;
    }

    /// Writes a failed step of the browser's return for the pending authorization's account.
    async fn audit_pending(
        &self,
        pending: &PendingAuthorization,
        action: AuditAction,
        failure: &FlowError,
    ) {
        let entry = pending_entry(&pending.account_id, &pending.app_id, action)
            .with_detail(failure.to_string());
        self.ctx.store.audit().record_or_warn(entry).await;
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

    /// Records why the flow failed on the account (its state does not change: it still awaits
    /// authorization), so whoever looks at the account sees the cause, and returns the error.
    async fn recorded(
        &self,
        pending: &PendingAuthorization,
        failure: FlowError,
    ) -> Result<FlowError, FlowError> {
        let account = self.account(&pending.account_id).await?;
        let last_error = match &failure {
            FlowError::Exchange { source, .. } => {
                let entry = crate::token_manager::explain_oauth_error(source);
                postern_catalogue::annotate(&failure.to_string(), entry)
            }
            _ => failure.to_string(),
        };
        let transition = Transition {
            to: account.state,
            last_error: Some(last_error),
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

/// A failed entry of the browser's return for `account_id`.
fn pending_entry(account_id: &AccountId, app_id: &AppId, action: AuditAction) -> NewAuditEntry {
    NewAuditEntry::new(ACTOR_BROWSER, action, AuditOutcome::Failed)
        .with_account(account_id)
        .with_app(app_id)
}

/// `ok` or `failed`.
fn outcome_of<T, E>(result: &Result<T, E>) -> AuditOutcome {
    match result {
        Ok(_) => AuditOutcome::Ok,
        Err(_) => AuditOutcome::Failed,
    }
}

/// What the audit log says about a grant: how it was obtained and its scope, never a token.
fn granted_detail(how: &str, grant: &crate::oauth::TokenGrant) -> String {
    let refresh = if grant.refresh_token.is_some() {
        "with a refresh token"
    } else {
        "without a refresh token"
    };
    match &grant.scope {
        Some(scope) => format!("{how}: tokens obtained {refresh}; scope {scope}"),
        None => format!("{how}: tokens obtained {refresh}"),
    }
}

/// Whether an account state means "waiting for the user", for callers deciding what to show.
pub fn awaits_user(state: AccountState) -> bool {
    matches!(
        state,
        AccountState::PendingAuthorization | AccountState::NeedsReauth
    )
}
