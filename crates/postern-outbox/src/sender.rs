//! One delivery attempt for a stored account: credentials, login (one token refresh when the
//! server rejects the token), a pooled connection, one SMTP transaction.
//!
//! Purpose: the one place where "the server said the token is bad" becomes "refresh once and log
//! in again", like `postern_sync::account` does for IMAP, and where authenticated connections
//! are kept per account between messages.
//! Non-goal: what the replies mean (see `classify`) or what happens to the item (see `worker`).
//! Key decisions:
//! - A fresh token is asked for only after the server rejected the current one with the `401` /
//!   `invalid_token` JSON, at most once per attempt: a second rejection means the grant itself is
//!   bad, and no loop can fix that.
//! - A pooled connection that turns out dead (closed by the server while idle: an I/O error or a
//!   `421` before any recipient was accepted) is replaced by a fresh one within the same attempt;
//!   nothing can have been delivered at that point, so this cannot duplicate a message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use postern_auth::sasl::{Credentials, Mechanism};
use postern_auth::token_manager::{AccessToken, TokenError, TokenManager};
use postern_store::{Account, AccountAuth, AccountId, SaslMechanism, SmtpEnvelope, Store};
use postern_vault::Vault;

use crate::classify::{Outcome, classify_error};
use crate::error::{SmtpError, Stage};
use crate::pool::IdlePool;
use crate::smtp::{SmtpEndpoint, SmtpSession, SmtpTimeouts, Transaction};

/// Why an attempt ended before a transaction completed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AttemptError {
    /// The SMTP session failed.
    #[error(transparent)]
    Smtp(#[from] SmtpError),
    /// No access token could be had.
    #[error("no access token: {0}")]
    Token(#[from] TokenError),
    /// The server rejected a token that had just been refreshed because it rejected the last.
    #[error(
        "the server rejected a freshly refreshed token too; the grant or the account's address \
         is wrong and the user must authorize again: {0}"
    )]
    RejectedAfterRefresh(SmtpError),
    /// The account's password is missing or cannot be decrypted.
    #[error("the account's password cannot be read: {0}")]
    Password(String),
}

impl AttemptError {
    /// What the worker does about it.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            AttemptError::Smtp(error) => match classify_error(error) {
                // The sender already refreshed once; a caller never sees this for a first rejection.
                Outcome::TokenRejected => Outcome::Fail(self.to_string()),
                other => other,
            },
            AttemptError::Token(error) if error.is_transient() => Outcome::Retry(self.to_string()),
            AttemptError::Token(_)
            | AttemptError::RejectedAfterRefresh(_)
            | AttemptError::Password(_) => Outcome::Fail(self.to_string()),
        }
    }
}

/// Sends for any account; shared by every worker.
pub(crate) struct Sender {
    store: Store,
    vault: Arc<Vault>,
    tokens: TokenManager,
    timeouts: SmtpTimeouts,
    ehlo_name: Option<String>,
    pool: IdlePool<SmtpSession>,
    size_limits: Mutex<HashMap<AccountId, u64>>,
}

impl Sender {
    pub(crate) fn new(
        store: Store,
        vault: Arc<Vault>,
        tokens: TokenManager,
        config: &crate::OutboxConfig,
    ) -> Self {
        Sender {
            store,
            vault,
            tokens,
            timeouts: config.timeouts.clone(),
            ehlo_name: config.ehlo_name.clone(),
            pool: IdlePool::new(config.pool_max_idle, config.pool_idle_timeout),
            size_limits: Mutex::default(),
        }
    }

    /// The `SIZE` the account's server declared at the last login, if it declared one.
    pub(crate) fn size_limit(&self, account_id: &AccountId) -> Option<u64> {
        lock(&self.size_limits).get(account_id).copied()
    }

    /// One transaction for `account`, on a pooled connection when one is idle.
    pub(crate) async fn deliver(
        &self,
        account: &Account,
        envelope: &SmtpEnvelope,
        message: &[u8],
    ) -> Result<Transaction, AttemptError> {
        if let Some(mut session) = self.pool.checkout(&account.id) {
            match session.send(envelope, message).await {
                Ok(transaction) => {
                    self.keep(&account.id, session);
                    return Ok(transaction);
                }
                Err(error) if is_stale(&error) => {
                    tracing::debug!(account = %account.id, %error, "pooled SMTP connection was stale; reconnecting");
                }
                Err(error) => return Err(error.into()),
            }
        }
        let mut session = self.login(account).await?;
        let transaction = session.send(envelope, message).await?;
        self.keep(&account.id, session);
        Ok(transaction)
    }

    /// Pools a session that can carry the account's next message.
    fn keep(&self, account_id: &AccountId, session: SmtpSession) {
        if session.is_reusable() {
            self.pool.checkin(account_id, session);
        }
    }

    /// Connects and logs in as `account`; for OAuth2, a rejected token is refreshed once.
    async fn login(&self, account: &Account) -> Result<SmtpSession, AttemptError> {
        let mechanism = match &account.auth {
            AccountAuth::Password { username } => {
                return self.password_login(account, username.as_deref()).await;
            }
            AccountAuth::OAuth2 { mechanism, .. } | AccountAuth::OAuth2App { mechanism, .. } => {
                sasl_mechanism(*mechanism)
            }
        };
        let token = self.tokens.access_token(&account.id).await?;
        match self.token_login(account, mechanism, &token).await {
            Err(error) if error.token_rejected() => {
                tracing::info!(account = %account.id, "SMTP server rejected the access token; refreshing once");
                let fresh = self.tokens.after_rejection(&account.id, &token).await?;
                match self.token_login(account, mechanism, &fresh).await {
                    Err(error) if error.token_rejected() => {
                        Err(AttemptError::RejectedAfterRefresh(error))
                    }
                    other => Ok(other?),
                }
            }
            other => Ok(other?),
        }
    }

    async fn token_login(
        &self,
        account: &Account,
        mechanism: Mechanism,
        token: &AccessToken,
    ) -> Result<SmtpSession, SmtpError> {
        let endpoint = SmtpEndpoint::of_account(account);
        let credentials = Credentials::bearer(
            account.email.clone(),
            endpoint.host.clone(),
            endpoint.port,
            token.secret().clone(),
        );
        let mut session = self.connect(account, &endpoint).await?;
        session.authenticate(mechanism, credentials).await?;
        Ok(session)
    }

    async fn password_login(
        &self,
        account: &Account,
        username: Option<&str>,
    ) -> Result<SmtpSession, AttemptError> {
        let password_ref = account.id.password_ref();
        let sealed = self
            .store
            .secrets()
            .get(&password_ref)
            .await
            .map_err(|error| AttemptError::Password(error.to_string()))?
            .ok_or_else(|| AttemptError::Password("no password is stored".to_owned()))?;
        let password = self
            .vault
            .open_str(&password_ref.context(), &sealed)
            .map_err(|error| AttemptError::Password(error.to_string()))?;
        let endpoint = SmtpEndpoint::of_account(account);
        let mut session = self.connect(account, &endpoint).await?;
        let mechanism = password_mechanism(session.extensions());
        let user = username.unwrap_or(&account.email).to_owned();
        session
            .authenticate(mechanism, Credentials::password(user, password))
            .await?;
        Ok(session)
    }

    async fn connect(
        &self,
        account: &Account,
        endpoint: &SmtpEndpoint,
    ) -> Result<SmtpSession, SmtpError> {
        let session =
            SmtpSession::connect(endpoint, &self.timeouts, self.ehlo_name.as_deref()).await?;
        let mut limits = lock(&self.size_limits);
        match session.extensions().size_limit {
            Some(limit) => limits.insert(account.id.clone(), limit),
            None => limits.remove(&account.id),
        };
        Ok(session)
    }
}

/// PLAIN is one round trip; LOGIN only for servers that offer nothing better.
fn password_mechanism(extensions: &crate::smtp::Extensions) -> Mechanism {
    if !extensions.offers_auth("PLAIN") && extensions.offers_auth("LOGIN") {
        Mechanism::Login
    } else {
        Mechanism::Plain
    }
}

fn sasl_mechanism(mechanism: SaslMechanism) -> Mechanism {
    match mechanism {
        SaslMechanism::XOAuth2 => Mechanism::XOAuth2,
        SaslMechanism::OAuthBearer => Mechanism::OAuthBearer,
    }
}

/// An error of a pooled connection that means "it was dead before this transaction began".
fn is_stale(error: &SmtpError) -> bool {
    let early = |stage: &Stage| matches!(stage, Stage::MailFrom | Stage::RcptTo);
    match error {
        SmtpError::Io { stage, .. } => early(stage),
        SmtpError::Rejected { stage, reply } => early(stage) && reply.code() == 421,
        _ => false,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::Reply;

    #[test]
    fn only_early_failures_of_a_pooled_connection_are_stale() {
        let io = |stage| SmtpError::Io {
            stage,
            source: std::io::ErrorKind::UnexpectedEof.into(),
        };
        assert!(is_stale(&io(Stage::MailFrom)));
        assert!(is_stale(&io(Stage::RcptTo)));
        assert!(
            !is_stale(&io(Stage::DataEnd)),
            "the message may have been accepted"
        );
        let timeout = SmtpError::Rejected {
            stage: Stage::MailFrom,
            reply: Reply::new(421, vec!["4.4.2 Idle timeout".into()]),
        };
        assert!(is_stale(&timeout));
        let refused = SmtpError::Rejected {
            stage: Stage::MailFrom,
            reply: Reply::new(550, vec!["5.7.1 No".into()]),
        };
        assert!(!is_stale(&refused));
    }
}
