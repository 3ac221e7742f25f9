//! An authenticated IMAP session for a stored account: credentials from the token manager (OAuth2)
//! or the vault (password), one refresh and retry when the server rejects a token.
//!
//! This is the one place where "the server said the token is bad" turns into "refresh once and try
//! again": the SASL error JSON (`401` / `invalid_token`) is decoded by the connection layer, and
//! [`open_session`] asks the token manager for a new token only then, at most once per call. A
//! `400` with a scope (the grant lacks the mail scope) is a configuration error and is not retried.
//!
//! Non-goal: keeping the session alive or reconnecting with back-off; the per-account supervisor
//! does that on top of this function.

use crate::conn::{ImapEndpoint, Security, Timeouts, authenticate, connect};
use crate::error::ImapError;
use crate::login::{Login, OAuthMechanism};
use crate::session::ImapSession;
use postern_auth::context::AuthContext;
use postern_auth::token_manager::{AccessToken, TokenError, TokenManager};
use postern_store::{Account, AccountAuth, SaslMechanism, StoreError};
use postern_vault::VaultError;
use std::path::PathBuf;

/// What sessions authenticate with: the token manager for OAuth2 accounts, the vault for passwords.
#[derive(Clone)]
pub struct AccountCredentials {
    ctx: AuthContext,
    tokens: TokenManager,
    timeouts: Timeouts,
}

/// Why no session could be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Occurs when no access token could be had (dead grant, app failing, provider down).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Occurs when the IMAP server could not be reached or refused the login.
    #[error(transparent)]
    Imap(#[from] ImapError),
    /// Occurs when a password account has no stored password.
    #[error("no password is stored for this account")]
    MissingPassword,
    /// Occurs when the stored password cannot be decrypted.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Occurs when the store fails.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SessionError {
    /// Whether trying again later may help.
    pub fn is_transient(&self) -> bool {
        match self {
            SessionError::Token(error) => error.is_transient(),
            SessionError::Imap(error) => error.is_transient(),
            SessionError::Store(error) => error.is_transient(),
            SessionError::MissingPassword | SessionError::Vault(_) => false,
        }
    }
}

impl AccountCredentials {
    /// Credentials over the shared auth context and token manager, with default timeouts.
    pub fn new(ctx: AuthContext, tokens: TokenManager) -> Self {
        Self {
            ctx,
            tokens,
            timeouts: Timeouts::default(),
        }
    }

    /// The token manager.
    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
    }
}

/// The account's IMAP server as the connection layer wants it.
pub fn imap_endpoint(account: &Account) -> ImapEndpoint {
    let security = match account.imap.security {
        postern_store::Security::Tls => Security::Tls,
        postern_store::Security::StartTls => Security::StartTls,
        postern_store::Security::None => Security::None,
    };
    let endpoint = ImapEndpoint::new(account.imap.host.clone(), account.imap.port, security);
    match &account.imap.ca_file {
        Some(ca_file) => endpoint.with_ca_file(PathBuf::from(ca_file)),
        None => endpoint,
    }
}

/// Connects and logs in as `account`. For OAuth2, a token the server rejects as invalid or expired
/// is refreshed once and the login retried on a new connection.
pub async fn open_session(
    account: &Account,
    credentials: &AccountCredentials,
) -> Result<ImapSession, SessionError> {
    let endpoint = imap_endpoint(account);
    let mechanism = match &account.auth {
        AccountAuth::OAuth2 { mechanism, .. } | AccountAuth::OAuth2App { mechanism, .. } => {
            *mechanism
        }
        AccountAuth::Password { username } => {
            let login = password_login(account, username.as_deref(), credentials).await?;
            return login_once(&endpoint, &login, credentials)
                .await
                .map_err(Into::into);
        }
    };
    let token = credentials.tokens.access_token(&account.id).await?;
    match login_once(
        &endpoint,
        &oauth_login(account, &token, mechanism),
        credentials,
    )
    .await
    {
        Err(error) if error.token_rejected() => {
            tracing::info!(account = %account.id, "server rejected the access token; refreshing once");
            let fresh = credentials
                .tokens
                .after_rejection(&account.id, &token)
                .await?;
            let login = oauth_login(account, &fresh, mechanism);
            Ok(login_once(&endpoint, &login, credentials).await?)
        }
        other => Ok(other?),
    }
}

async fn login_once(
    endpoint: &ImapEndpoint,
    login: &Login,
    credentials: &AccountCredentials,
) -> Result<ImapSession, ImapError> {
    let client = connect(endpoint, &credentials.timeouts).await?;
    authenticate(client, login).await
}

fn oauth_login(account: &Account, token: &AccessToken, mechanism: SaslMechanism) -> Login {
    Login::OAuth {
        user: account.email.clone(),
        token: token.secret().clone(),
        mechanism: match mechanism {
            SaslMechanism::XOAuth2 => OAuthMechanism::XOAuth2,
            SaslMechanism::OAuthBearer => OAuthMechanism::OAuthBearer,
        },
    }
}

async fn password_login(
    account: &Account,
    username: Option<&str>,
    credentials: &AccountCredentials,
) -> Result<Login, SessionError> {
    let password_ref = account.id.password_ref();
    let sealed = credentials
        .ctx
        .store
        .secrets()
        .get(&password_ref)
        .await?
        .ok_or(SessionError::MissingPassword)?;
    let password = credentials
        .ctx
        .vault
        .open_str(&password_ref.context(), &sealed)?;
    Ok(Login::Password {
        user: username.unwrap_or(&account.email).to_owned(),
        password,
    })
}
