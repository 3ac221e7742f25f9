//! What the account logs in with: the token the token step ended with, or the stored password.
//!
//! Non-goal: obtaining tokens (the token step does). Key decision: secrets stay in `SecretString`s from
//! the vault to the SASL message; a missing one becomes a reason the login step reports, in words that
//! name the secret, never show it.

use postern_auth::context::AuthContext;
use postern_auth::sasl::{Credentials, Mechanism};
use postern_store::{Account, AccountAuth, SaslMechanism};
use postern_sync::{Login, OAuthMechanism};
use secrecy::SecretString;

use super::token::TokenState;

/// The secret an account logs in with.
#[derive(Clone)]
pub(super) enum Secret {
    /// An OAuth access token.
    Token {
        token: SecretString,
        mechanism: OAuthMechanism,
        /// Obtained from the provider during this diagnosis.
        just_refreshed: bool,
    },
    /// A password or app password.
    Password { password: SecretString },
}

/// The login name and secret of an account, or why there is none.
#[derive(Clone)]
pub(super) struct AccountLogin {
    pub user: String,
    pub secret: Result<Secret, String>,
}

impl AccountLogin {
    /// The login for `postern-sync`.
    pub fn imap_login(&self) -> Result<Login, String> {
        Ok(match self.secret.clone()? {
            Secret::Token {
                token, mechanism, ..
            } => Login::OAuth {
                user: self.user.clone(),
                token,
                mechanism,
            },
            Secret::Password { password } => Login::Password {
                user: self.user.clone(),
                password,
            },
        })
    }

    /// Whether the token was obtained moments ago.
    pub fn token_just_refreshed(&self) -> bool {
        matches!(
            self.secret,
            Ok(Secret::Token {
                just_refreshed: true,
                ..
            })
        )
    }

    /// The OAuth mechanism, for a token login.
    pub fn oauth_mechanism(&self) -> Option<Mechanism> {
        match &self.secret {
            Ok(Secret::Token { mechanism, .. }) => Some(Mechanism::from(*mechanism)),
            _ => None,
        }
    }

    /// SASL credentials for `host:port` (OAUTHBEARER carries them).
    pub fn sasl_credentials(&self, host: &str, port: u16) -> Result<Credentials, String> {
        Ok(match self.secret.clone()? {
            Secret::Token { token, .. } => {
                Credentials::bearer(self.user.clone(), host, port, token)
            }
            Secret::Password { password } => Credentials::password(self.user.clone(), password),
        })
    }
}

/// The account's login: the token state's token for OAuth accounts, the vault's password otherwise.
pub(super) async fn for_account(
    account: &Account,
    ctx: &AuthContext,
    token: &TokenState,
) -> AccountLogin {
    match &account.auth {
        AccountAuth::OAuth2 { mechanism, .. } | AccountAuth::OAuth2App { mechanism, .. } => {
            let secret = match &token.token {
                Some(access) => Ok(Secret::Token {
                    token: access.clone(),
                    mechanism: oauth_mechanism(*mechanism),
                    just_refreshed: token.just_refreshed,
                }),
                None => Err("no access token to log in with (see the token step)".to_owned()),
            };
            AccountLogin {
                user: account.email.clone(),
                secret,
            }
        }
        AccountAuth::Password { username } => AccountLogin {
            user: username.clone().unwrap_or_else(|| account.email.clone()),
            secret: password(account, ctx).await,
        },
    }
}

async fn password(account: &Account, ctx: &AuthContext) -> Result<Secret, String> {
    let reference = account.id.password_ref();
    let sealed = ctx
        .store
        .secrets()
        .get(&reference)
        .await
        .map_err(|error| format!("cannot read the stored password: {error}"))?
        .ok_or_else(|| "no password is stored for this account".to_owned())?;
    let password = ctx
        .vault
        .open_str(&reference.context(), &sealed)
        .map_err(|error| format!("cannot decrypt the stored password: {error}"))?;
    Ok(Secret::Password { password })
}

pub(super) fn oauth_mechanism(mechanism: SaslMechanism) -> OAuthMechanism {
    match mechanism {
        SaslMechanism::XOAuth2 => OAuthMechanism::XOAuth2,
        SaslMechanism::OAuthBearer => OAuthMechanism::OAuthBearer,
    }
}
