//! Accounts: create, connect, verify, re-authorize and remove mailboxes.
//!
//! An OAuth2 account is stored as `pending_authorization` with a provider link; the browser's
//! callback brings the code back, the tokens are stored, and an IMAP login with them decides between
//! `connected` and `error`. A password or app-only account is verified by a login before it is kept:
//! a wrong password is an error for the caller, not a stored account that can never work.
//!
//! Every change is written to the audit log (`account.created`, `account.removed`, `reauthorize`,
//! `revoke`, and through the flows every authorization step) naming the service's actor: `api` by
//! default, or whoever [`AccountService::with_actor`] names (an API token, `cli`). A `last_error`
//! from a failed login carries the known-error catalogue's cause and fix when it knows the answer.
//!
//! Non-goal: keeping connections open; the sync engine's supervisor does that.

use crate::apps::{parse_app_id, preset_of};
use crate::error::{FieldError, ServiceError};
use crate::input::{AuthInput, EndpointInput, NewAccountInput, check_email};
use postern_auth::context::AuthContext;
use postern_auth::flows::{AuthorizationLink, Callback, Flows};
use postern_auth::oauth::DeviceAuthorization;
use postern_auth::presets::MailServer;
use postern_auth::token_manager::{RefreshPolicy, TokenManager};
use postern_store::{
    Account, AccountAuth, AccountId, AccountSettings, AccountState, AuditAction, AuditOutcome,
    Endpoint, Grant, NewAccount, NewAuditEntry, OAuthApp, SaslMechanism, Security, Store,
    Transition,
};
use postern_sync::account::{AccountCredentials, SessionError, open_session};
use postern_vault::Vault;
use serde_json::json;
use std::str::FromStr;
use std::sync::Arc;

/// The actor the audit log names when the caller did not say who it acts for.
pub const DEFAULT_ACTOR: &str = "api";

/// How recently a token must have been obtained for a login refusal to mean "this token belongs to
/// someone else" rather than "this token has expired".
const JUST_OBTAINED: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// The account service. Cheap to clone.
#[derive(Clone)]
pub struct AccountService {
    inner: Arc<Inner>,
    /// Who the audit log names for what this handle does.
    actor: Arc<str>,
}

struct Inner {
    ctx: AuthContext,
    flows: Flows,
    tokens: TokenManager,
    credentials: AccountCredentials,
}

/// A created account, and for OAuth2 the link to send the user to.
#[derive(Debug)]
pub struct CreatedAccount {
    /// The stored account.
    pub account: Account,
    /// The provider link (OAuth2 accounts), valid until `link.expires_at`.
    pub authorization: Option<AuthorizationLink>,
}

impl AccountService {
    /// A service over `ctx`; `callback_url` is Postern's public `/oauth/callback`.
    pub fn new(ctx: AuthContext, callback_url: String, policy: RefreshPolicy) -> Self {
        let flows = Flows::new(ctx.clone(), callback_url);
        let tokens = TokenManager::new(flows.clone(), policy);
        let credentials = AccountCredentials::new(ctx.clone(), tokens.clone());
        Self {
            inner: Arc::new(Inner {
                ctx,
                flows,
                tokens,
                credentials,
            }),
            actor: Arc::from(DEFAULT_ACTOR),
        }
    }

    /// The same service, naming `actor` (an API token's name, `cli`) in the audit log for what it
    /// does through this handle. Cheap: everything else is shared.
    pub fn with_actor(&self, actor: &str) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            actor: Arc::from(actor),
        }
    }

    /// Who the audit log names for what this handle does.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The flows, acting for this handle's actor.
    fn acting_flows(&self) -> Flows {
        self.inner.flows.acting_as(&self.actor)
    }

    /// Writes one audit entry naming this handle's actor (never failing the operation).
    pub(crate) async fn audit(&self, entry: NewAuditEntry) {
        self.store().audit().record_or_warn(entry).await;
    }

    /// An audit entry of this handle's actor about `account`.
    fn account_entry(
        &self,
        account: &Account,
        action: AuditAction,
        outcome: AuditOutcome,
        detail: String,
    ) -> NewAuditEntry {
        let mut entry = NewAuditEntry::new(&*self.actor, action, outcome)
            .with_account(&account.id)
            .with_detail(detail);
        if let Some(app_id) = account.auth.app_id() {
            entry = entry.with_app(app_id);
        }
        entry
    }

    /// The token manager (for the background refresher and the sync engine).
    pub fn tokens(&self) -> &TokenManager {
        &self.inner.tokens
    }

    /// The flows (for the device flow in the CLI).
    pub fn flows(&self) -> &Flows {
        &self.inner.flows
    }

    /// What IMAP sessions authenticate with.
    pub fn credentials(&self) -> &AccountCredentials {
        &self.inner.credentials
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.ctx.store
    }

    pub(crate) fn vault(&self) -> &Vault {
        &self.inner.ctx.vault
    }

    /// Creates an account. OAuth2: stored as `pending_authorization` with a provider link.
    /// Password and app-only: verified by an IMAP login first, and not kept if it fails.
    pub async fn create_account(
        &self,
        input: NewAccountInput,
    ) -> Result<CreatedAccount, ServiceError> {
        self.create_account_with_settings(input, &AccountSettings::default())
            .await
    }

    /// [`AccountService::create_account`], with the account's own settings stored in the same
    /// transaction as the account.
    ///
    /// # Errors
    ///
    /// As [`AccountService::create_account`].
    pub async fn create_account_with_settings(
        &self,
        input: NewAccountInput,
        settings: &AccountSettings,
    ) -> Result<CreatedAccount, ServiceError> {
        let mut errors = Vec::new();
        check_email(&input.email, &mut errors);
        let app = self.app_of(&input.auth, &mut errors).await?;
        let imap = endpoint_or_preset(input.imap, app.as_ref(), "imap", &mut errors);
        let smtp = endpoint_or_preset(input.smtp, app.as_ref(), "smtp", &mut errors);
        let (auth, password) = auth_of(input.auth, app.as_ref(), &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let (Some(imap), Some(smtp)) = (imap, smtp) else {
            return Err(ServiceError::Invalid(errors));
        };
        let id = AccountId::generate();
        let sealed_password = password.as_ref().map(|password| {
            self.vault()
                .seal_str(&id.password_ref().context(), password)
        });
        let state = match auth {
            AccountAuth::OAuth2 { .. } => AccountState::PendingAuthorization,
            _ => AccountState::Connecting,
        };
        let new_account = NewAccount {
            id,
            email: input.email.trim().to_owned(),
            name: input.name,
            imap,
            smtp,
            auth,
            state,
        };
        let account = self
            .store()
            .accounts()
            .create_with_settings(new_account, settings, sealed_password.as_ref())
            .await?;
        tracing::info!(account = %account.id, kind = account.auth.kind(), "account created");
        let connected = self.connect_new(account.clone()).await;
        let (outcome, detail) = match &connected {
            Ok(created) => (
                AuditOutcome::Ok,
                format!(
                    "{} account for {} created ({})",
                    account.auth.kind(),
                    account.email,
                    created.account.state
                ),
            ),
            Err(error) => (
                AuditOutcome::Failed,
                format!(
                    "{} account for {} not kept: {error}",
                    account.auth.kind(),
                    account.email
                ),
            ),
        };
        let entry = self.account_entry(&account, AuditAction::AccountCreated, outcome, detail);
        self.audit(entry).await;
        connected
    }

    async fn connect_new(&self, account: Account) -> Result<CreatedAccount, ServiceError> {
        match &account.auth {
            AccountAuth::OAuth2 { .. } => match self.acting_flows().start(&account).await {
                Ok(authorization) => Ok(CreatedAccount {
                    account,
                    authorization: Some(authorization),
                }),
                Err(error) => {
                    // No link, no way to finish: the caller gets the cause and no orphan account.
                    self.store().accounts().delete(&account.id).await?;
                    Err(error.into())
                }
            },
            AccountAuth::OAuth2App { .. } => {
                let verified = match self.acting_flows().app_only(&account).await {
                    Ok(()) => self.verify(&account).await,
                    Err(error) => Err(error.into()),
                };
                self.keep_only_if_verified(account, verified).await
            }
            AccountAuth::Password { .. } => {
                let verified = self.verify(&account).await;
                self.keep_only_if_verified(account, verified).await
            }
        }
    }

    /// A password or app-only account that cannot log in is removed again: the caller gets the
    /// reason and retries with better input; nothing half-made is left behind.
    async fn keep_only_if_verified(
        &self,
        account: Account,
        verified: Result<Account, ServiceError>,
    ) -> Result<CreatedAccount, ServiceError> {
        match verified {
            Ok(account) => Ok(CreatedAccount {
                account,
                authorization: None,
            }),
            Err(error) => {
                self.store().accounts().delete(&account.id).await?;
                tracing::info!(account = %account.id, %error, "new account failed verification; not kept");
                Err(error)
            }
        }
    }

    /// A fresh grant was stored: the account no longer waits for the user (it may have been
    /// `needs_reauth`), so it moves to `connecting` until the login is verified. No event: the
    /// verification that follows announces the outcome.
    async fn granted(&self, account: &Account) -> Result<Account, ServiceError> {
        let transition = Transition {
            to: AccountState::Connecting,
            last_error: None,
            event: None,
        };
        Ok(self
            .store()
            .accounts()
            .transition(&account.id, transition)
            .await?
            .account)
    }

    /// Logs in over IMAP with the account's credentials and records the result as the account's
    /// state (`connected`, or `error` with the reason), announcing a change once.
    pub async fn verify(&self, account: &Account) -> Result<Account, ServiceError> {
        let outcome = match open_session(account, &self.inner.credentials).await {
            Ok(session) => {
                // The login is what was to be proven; a failed LOGOUT afterwards changes nothing.
                if let Err(error) = session.logout().await {
                    tracing::debug!(account = %account.id, %error, "LOGOUT after verification failed");
                }
                Ok(())
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => {
                let payload = json!({ "email": account.email });
                self.set_state(
                    account,
                    AccountState::Connected,
                    None,
                    "account.connected",
                    payload,
                )
                .await
            }
            Err(error) => {
                let reason = self.explained(account, &error).await;
                let payload = json!({ "reason": reason });
                if !matches!(
                    error,
                    SessionError::Token(
                        postern_auth::token_manager::TokenError::NeedsReauth { .. }
                    )
                ) {
                    self.set_state(
                        account,
                        AccountState::Error,
                        Some(reason.clone()),
                        "account.error",
                        payload,
                    )
                    .await?;
                }
                Err(session_error(error))
            }
        }
    }

    /// The login failure in words, with the catalogue's cause and fix when it knows the answer.
    async fn explained(&self, account: &Account, error: &SessionError) -> String {
        let SessionError::Imap(imap) = error else {
            // Token errors already carry the catalogue's advice (the token manager wrote them).
            return error.to_string();
        };
        let just_obtained = match self.store().grants().get(&account.id).await {
            Ok(grant) => {
                grant.is_some_and(|grant| chrono::Utc::now() - grant.obtained_at < JUST_OBTAINED)
            }
            Err(_) => false,
        };
        let entry = postern_doctor::catalogue::explain_imap_error(imap, just_obtained);
        postern_catalogue::annotate(&error.to_string(), entry)
    }

    async fn set_state(
        &self,
        account: &Account,
        to: AccountState,
        last_error: Option<String>,
        kind: &str,
        payload: serde_json::Value,
    ) -> Result<Account, ServiceError> {
        let transition = Transition::announced(&account.id, to, last_error, kind, payload);
        let outcome = self
            .store()
            .accounts()
            .transition(&account.id, transition)
            .await?;
        Ok(outcome.account)
    }

    /// Finishes the browser's return from the provider: tokens stored, login verified.
    pub async fn complete_authorization(
        &self,
        callback: Callback,
    ) -> Result<Account, ServiceError> {
        let account = self.inner.flows.complete(callback).await?;
        tracing::info!(account = %account.id, "authorization completed; verifying the IMAP login");
        let account = self.granted(&account).await?;
        self.verify(&account).await
    }

    /// A fresh provider link for an existing OAuth2 account (e.g. after `needs_reauth`).
    pub async fn reauthorize(&self, id: &str) -> Result<AuthorizationLink, ServiceError> {
        let account = self.user_grant_account(id).await?;
        let link = self.acting_flows().start(&account).await;
        let (outcome, detail) = match &link {
            Ok(_) => (
                AuditOutcome::Ok,
                "a fresh provider link was issued".to_owned(),
            ),
            Err(error) => (AuditOutcome::Failed, format!("no provider link: {error}")),
        };
        let entry = self.account_entry(&account, AuditAction::Reauthorize, outcome, detail);
        self.audit(entry).await;
        Ok(link?)
    }

    /// Starts the device flow (RFC 8628) for an OAuth2 account: show the user the returned
    /// `verification_uri` and `user_code`, then call [`AccountService::complete_device`].
    pub async fn start_device(&self, id: &str) -> Result<DeviceAuthorization, ServiceError> {
        let account = self.user_grant_account(id).await?;
        Ok(self.acting_flows().start_device(&account).await?)
    }

    /// Waits (polling politely) for the user to approve the device code, stores the tokens and
    /// verifies the IMAP login.
    pub async fn complete_device(
        &self,
        id: &str,
        device: &DeviceAuthorization,
    ) -> Result<Account, ServiceError> {
        let account = self.account(id).await?;
        self.acting_flows().finish_device(&account, device).await?;
        let account = self.granted(&account).await?;
        self.verify(&account).await
    }

    /// The account, if it uses a user's OAuth2 grant (the only kind a person can authorize).
    async fn user_grant_account(&self, id: &str) -> Result<Account, ServiceError> {
        let account = self.account(id).await?;
        if !matches!(account.auth, AccountAuth::OAuth2 { .. }) {
            return Err(ServiceError::NotApplicable(format!(
                "account {id} does not use a user's OAuth2 grant; there is nothing to authorize"
            )));
        }
        Ok(account)
    }

    /// One account.
    pub async fn account(&self, id: &str) -> Result<Account, ServiceError> {
        let account_id = parse_account_id(id)?;
        self.store()
            .accounts()
            .get(&account_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("account {id}")))
    }

    /// One account's grant metadata (token expiry, scope), if it has one.
    pub async fn grant(&self, account: &Account) -> Result<Option<Grant>, ServiceError> {
        Ok(self.store().grants().get(&account.id).await?)
    }

    /// Every account.
    pub async fn accounts(&self) -> Result<Vec<Account>, ServiceError> {
        Ok(self.store().accounts().list().await?)
    }

    /// Removes an account: revokes its grant at the provider when it can (a failure there is
    /// logged, not fatal: the user can still revoke from their provider's settings), then erases
    /// the account and every secret of it.
    pub async fn remove_account(&self, id: &str) -> Result<(), ServiceError> {
        let account = self.account(id).await?;
        if matches!(account.auth, AccountAuth::OAuth2 { .. }) {
            self.revoke_grant(&account).await;
        }
        self.store().accounts().delete(&account.id).await?;
        self.inner.tokens.forget(&account.id);
        tracing::info!(account = %account.id, "account removed");
        let detail = format!(
            "{} account for {} removed",
            account.auth.kind(),
            account.email
        );
        let entry = self.account_entry(
            &account,
            AuditAction::AccountRemoved,
            AuditOutcome::Ok,
            detail,
        );
        self.audit(entry).await;
        Ok(())
    }

    async fn revoke_grant(&self, account: &Account) {
        let revoked = async {
            let Some(app_id) = account.auth.app_id() else {
                return Ok::<bool, String>(false);
            };
            let Some(app) = self
                .store()
                .oauth_apps()
                .get(app_id)
                .await
                .map_err(|e| e.to_string())?
            else {
                return Ok(false);
            };
            let Some((_, Some(refresh))) = self
                .store()
                .grants()
                .load_tokens(&account.id)
                .await
                .map_err(|e| e.to_string())?
            else {
                return Ok(false);
            };
            let refresh_ref = account.id.refresh_token_ref();
            let token = self
                .vault()
                .open_str(&refresh_ref.context(), &refresh)
                .map_err(|e| e.to_string())?;
            let client = self
                .inner
                .ctx
                .client_for(&app)
                .await
                .map_err(|e| e.to_string())?;
            client.revoke(&token).await.map_err(|e| e.to_string())?;
            Ok(true)
        };
        let (outcome, detail) = match revoked.await {
            Ok(true) => {
                tracing::info!(account = %account.id, "grant revoked at the provider");
                (AuditOutcome::Ok, "grant revoked at the provider".to_owned())
            }
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(account = %account.id, %error, "could not revoke the grant at the provider");
                let detail = format!("could not revoke the grant at the provider: {error}");
                (AuditOutcome::Failed, detail)
            }
        };
        let entry = self.account_entry(account, AuditAction::Revoke, outcome, detail);
        self.audit(entry).await;
    }

    async fn app_of(
        &self,
        auth: &AuthInput,
        errors: &mut Vec<FieldError>,
    ) -> Result<Option<OAuthApp>, ServiceError> {
        let app_id = match auth {
            AuthInput::OAuth2 { app_id, .. } | AuthInput::OAuth2App { app_id, .. } => app_id,
            AuthInput::Password { .. } => return Ok(None),
        };
        let found = match parse_app_id(app_id) {
            Ok(id) => self.store().oauth_apps().get(&id).await?,
            Err(_) => None,
        };
        if found.is_none() {
            errors.push(FieldError::new(
                "auth.app_id",
                format!("no OAuth app with id {app_id:?}"),
            ));
        }
        Ok(found)
    }
}

fn parse_account_id(id: &str) -> Result<AccountId, ServiceError> {
    AccountId::from_str(id).map_err(|_| ServiceError::NotFound(format!("account {id}")))
}

/// The given endpoint, checked; or the app's provider preset; or a field error.
fn endpoint_or_preset(
    given: Option<EndpointInput>,
    app: Option<&OAuthApp>,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Endpoint> {
    if let Some(given) = given {
        return Some(given.check(prefix, errors));
    }
    let preset = app.and_then(preset_of);
    let server: Option<MailServer> =
        preset.and_then(|p| if prefix == "imap" { p.imap } else { p.smtp });
    match server {
        Some(server) => Some(Endpoint {
            host: server.host.to_owned(),
            port: server.port,
            security: match server.security {
                postern_auth::presets::Security::Tls => Security::Tls,
                postern_auth::presets::Security::StartTls => Security::StartTls,
            },
            ca_file: None,
        }),
        None => {
            errors.push(FieldError::new(
                prefix,
                "is required (no provider preset to take it from)",
            ));
            None
        }
    }
}

/// The stored form of the request's auth, and the password to seal if there is one.
fn auth_of(
    input: AuthInput,
    app: Option<&OAuthApp>,
    errors: &mut Vec<FieldError>,
) -> (AccountAuth, Option<secrecy::SecretString>) {
    let app_id = app.map(|app| app.id.clone());
    match (input, app_id) {
        (AuthInput::OAuth2 { mechanism, .. }, Some(app_id)) => (
            AccountAuth::OAuth2 {
                app_id,
                mechanism: mechanism.unwrap_or(SaslMechanism::XOAuth2),
            },
            None,
        ),
        (AuthInput::OAuth2App { mechanism, .. }, Some(app_id)) => (
            AccountAuth::OAuth2App {
                app_id,
                mechanism: mechanism.unwrap_or(SaslMechanism::XOAuth2),
            },
            None,
        ),
        (AuthInput::Password { username, password }, _) => {
            if secrecy::ExposeSecret::expose_secret(&password).is_empty() {
                errors.push(FieldError::new("auth.password", "must not be empty"));
            }
            (AccountAuth::Password { username }, Some(password))
        }
        // The app was not found; `app_of` already reported it.
        (_, None) => (AccountAuth::Password { username: None }, None),
    }
}

fn session_error(error: SessionError) -> ServiceError {
    match error {
        SessionError::Token(token) => ServiceError::Token(token),
        other if other.is_transient() => ServiceError::MailServerUnavailable {
            reason: other.to_string(),
        },
        other => ServiceError::LoginRefused {
            reason: other.to_string(),
        },
    }
}
