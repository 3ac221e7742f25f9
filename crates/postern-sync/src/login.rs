//! What an account logs in with, and which IMAP command that becomes on a given server.
//!
//! Purpose: [`Login`] (an OAuth token or a password) and the pure decisions made before anything is
//! sent: whether the transport may carry the secret at all, and which [`LoginMethod`] the server's
//! capabilities allow.
//!
//! Non-goal: the SASL bytes and the error-challenge dance, which belong to `postern_auth::sasl`; and the
//! I/O, which lives in [`crate::conn`].
//!
//! Key decision: the choice is made from the capability list and refused early
//! ([`ImapError::MechanismNotOffered`]) rather than sent and left for the server to reject, so the error
//! names what the server offers instead of an opaque `NO`/`BAD`. A password prefers `AUTHENTICATE PLAIN`
//! (8-bit safe) and falls back to the `LOGIN` command unless the server sets `LOGINDISABLED`.

use std::fmt;

use postern_auth::sasl::{Credentials, Mechanism};
use secrecy::SecretString;

use crate::capabilities::Capabilities;
use crate::error::ImapError;

/// The bearer-token SASL mechanisms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OAuthMechanism {
    /// Google's and Microsoft's mechanism; the only one Microsoft accepts.
    XOAuth2,
    /// RFC 7628 (Google, Yahoo, Dovecot, Stalwart); carries the server's host and port too.
    OAuthBearer,
}

impl From<OAuthMechanism> for Mechanism {
    fn from(mechanism: OAuthMechanism) -> Self {
        match mechanism {
            OAuthMechanism::XOAuth2 => Mechanism::XOAuth2,
            OAuthMechanism::OAuthBearer => Mechanism::OAuthBearer,
        }
    }
}

/// What an account authenticates with. `Debug` never shows the token or password.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Login {
    /// An OAuth 2.0 access token.
    OAuth {
        /// The mailbox address; must be the token's account.
        user: String,
        /// The access token.
        token: SecretString,
        /// Which bearer mechanism to use.
        mechanism: OAuthMechanism,
    },
    /// A password (or a provider's app password).
    Password {
        /// The login name.
        user: String,
        /// The password.
        password: SecretString,
    },
}

impl Login {
    /// The login name.
    pub fn user(&self) -> &str {
        match self {
            Login::OAuth { user, .. } | Login::Password { user, .. } => user,
        }
    }

    /// The SASL credentials for `postern_auth`, with the server's host and port for OAUTHBEARER.
    pub(crate) fn credentials(&self, host: &str, port: u16) -> Credentials {
        match self {
            Login::OAuth { user, token, .. } => {
                Credentials::bearer(user.as_str(), host, port, token.clone())
            }
            Login::Password { user, password } => {
                Credentials::password(user.as_str(), password.clone())
            }
        }
    }
}

/// How the login is carried out on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginMethod {
    /// `AUTHENTICATE <mechanism>`.
    Authenticate(Mechanism),
    /// The `LOGIN user password` command.
    LoginCommand,
}

impl fmt::Display for LoginMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginMethod::Authenticate(mechanism) => write!(f, "AUTHENTICATE {mechanism}"),
            LoginMethod::LoginCommand => f.write_str("LOGIN"),
        }
    }
}

/// Picks the login method `capabilities` allow for `login`.
///
/// # Errors
///
/// [`ImapError::MechanismNotOffered`] when the OAuth mechanism is not advertised, or a password has
/// neither `AUTH=PLAIN`, the `LOGIN` command (no `LOGINDISABLED`) nor `AUTH=LOGIN`.
pub(crate) fn choose_method(
    login: &Login,
    capabilities: &Capabilities,
) -> Result<LoginMethod, ImapError> {
    let not_offered = |wanted| ImapError::MechanismNotOffered {
        wanted,
        offered: capabilities.sasl_mechanisms().to_vec(),
    };
    match login {
        Login::OAuth { mechanism, .. } => {
            let mechanism = Mechanism::from(*mechanism);
            if capabilities.offers(mechanism) {
                Ok(LoginMethod::Authenticate(mechanism))
            } else {
                Err(not_offered(mechanism))
            }
        }
        Login::Password { .. } if capabilities.offers(Mechanism::Plain) => {
            Ok(LoginMethod::Authenticate(Mechanism::Plain))
        }
        Login::Password { .. } if !capabilities.login_disabled() => Ok(LoginMethod::LoginCommand),
        Login::Password { .. } if capabilities.offers(Mechanism::Login) => {
            Ok(LoginMethod::Authenticate(Mechanism::Login))
        }
        Login::Password { .. } => Err(not_offered(Mechanism::Plain)),
    }
}

/// Refuses to send a secret (token or password) over an unencrypted connection to a non-loopback host.
///
/// [`crate::conn::connect`] already refuses such connections; this check keeps the rule true for the
/// login itself whatever the connection code does in the future.
pub(crate) fn check_transport(
    encrypted: bool,
    loopback: bool,
    host: &str,
) -> Result<(), ImapError> {
    if encrypted || loopback {
        Ok(())
    } else {
        Err(ImapError::PlaintextRefused {
            host: host.to_owned(),
        })
    }
}

#[cfg(test)]
#[path = "login_tests.rs"]
mod tests;
