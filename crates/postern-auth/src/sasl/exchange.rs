//! The client side of one SASL exchange, as a state machine: challenge in, step out.
//!
//! Purpose: one piece of logic for IMAP `AUTHENTICATE` and SMTP `AUTH`. It knows which message comes next
//! and recognises the OAuth error challenge, so a failed token login ends with the server's `NO` / `535`
//! instead of a hang.
//!
//! Non-goal: I/O, base64 and reading the final result. The caller sends what [`Step::Respond`] holds,
//! and learns success or failure from the server's tagged response or reply code, not from here.
//!
//! Key decision: the first challenge is always answered with the mechanism's first message, whatever it
//! says (RFC 4422 servers send an empty one when the client did not use an initial response). After an
//! OAuth initial response has gone out, the next challenge can only be the error JSON (RFC 7628 section
//! 3.2.2); it is decoded and answered, and anything after that is a protocol error.

use secrecy::{ExposeSecret, SecretBox, SecretString};

use super::Mechanism;
use super::challenge::{OAuthErrorChallenge, decode_oauth_error, error_challenge_reply};
use super::initial::{oauthbearer, plain, secret_bytes, xoauth2};
use crate::error::SaslError;

/// What an account authenticates with. `Debug` never shows the token or password.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Credentials {
    /// An OAuth 2.0 access token, for XOAUTH2 and OAUTHBEARER.
    Bearer {
        /// The mailbox address; must be the token's account (Dovecot: the introspected `email`).
        user: String,
        /// The server's host name, sent by OAUTHBEARER (`host=`).
        host: String,
        /// The server's port, sent by OAUTHBEARER (`port=`).
        port: u16,
        /// The access token.
        token: SecretString,
    },
    /// A password, for PLAIN and LOGIN.
    Password {
        /// Who to act as, for PLAIN only; `None` acts as `user` itself.
        authzid: Option<String>,
        /// The login name.
        user: String,
        /// The password (or provider app password).
        password: SecretString,
    },
}

impl Credentials {
    /// Bearer-token credentials for `user` at `host:port`.
    pub fn bearer(
        user: impl Into<String>,
        host: impl Into<String>,
        port: u16,
        token: SecretString,
    ) -> Self {
        Credentials::Bearer {
            user: user.into(),
            host: host.into(),
            port,
            token,
        }
    }

    /// Password credentials acting as `user` itself (no authzid).
    pub fn password(user: impl Into<String>, password: SecretString) -> Self {
        Credentials::Password {
            authzid: None,
            user: user.into(),
            password,
        }
    }
}

/// What the caller must do with a server challenge.
#[derive(Debug)]
#[must_use = "the server waits for these bytes; not sending them hangs the exchange"]
pub enum Step {
    /// Send these bytes (base64-encoded by the protocol layer) as the next response.
    Respond(SecretBox<Vec<u8>>),
    /// The server rejected the bearer token and explained why. Send `reply` (base64-encoded as usual) so
    /// the server finishes with its tagged `NO` / `535`, then act on [`OAuthErrorChallenge::verdict`].
    ErrorChallenge {
        /// The server's decoded error JSON.
        challenge: OAuthErrorChallenge,
        /// What to send now: [`error_challenge_reply`] of the mechanism.
        reply: &'static [u8],
    },
}

/// One client-side SASL exchange. Build it, optionally take [`Self::initial_response`] (SASL-IR, SMTP
/// `AUTH <mech> <ir>`), then feed every server challenge to [`Self::on_challenge`].
#[derive(Debug)]
pub struct SaslExchange {
    mechanism: Mechanism,
    script: Script,
    phase: Phase,
}

/// The messages the client has to send, prepared up front so input errors surface at construction.
#[derive(Debug)]
enum Script {
    /// XOAUTH2, OAUTHBEARER, PLAIN: one message; `None` once it has been handed out.
    ClientFirst { initial: Option<SecretBox<Vec<u8>>> },
    /// LOGIN: the user name, then the password, each when the server prompts.
    Login {
        user: String,
        password: SecretString,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing sent yet.
    Fresh,
    /// The initial response (or LOGIN's user name) has been sent.
    FirstSent,
    /// Every message of the mechanism has been sent; only the server's verdict remains.
    Done,
}

impl SaslExchange {
    /// Prepares an exchange of `mechanism` with `credentials`.
    ///
    /// # Errors
    ///
    /// [`SaslError::CredentialsMismatch`] when the credentials do not fit the mechanism (a password for
    /// XOAUTH2, a token for PLAIN); [`SaslError::ForbiddenByte`] when a value holds the mechanism's
    /// separator byte.
    pub fn new(mechanism: Mechanism, credentials: Credentials) -> Result<Self, SaslError> {
        let script = match (mechanism, credentials) {
            (Mechanism::XOAuth2, Credentials::Bearer { user, token, .. }) => {
                client_first(xoauth2(&user, &token)?)
            }
            (
                Mechanism::OAuthBearer,
                Credentials::Bearer {
                    user,
                    host,
                    port,
                    token,
                },
            ) => client_first(oauthbearer(&user, &host, port, &token)?),
            (
                Mechanism::Plain,
                Credentials::Password {
                    authzid,
                    user,
                    password,
                },
            ) => client_first(plain(authzid.as_deref(), &user, &password)?),
            (Mechanism::Login, Credentials::Password { user, password, .. }) => {
                Script::Login { user, password }
            }
            (mechanism, _) => return Err(SaslError::CredentialsMismatch { mechanism }),
        };
        Ok(SaslExchange {
            mechanism,
            script,
            phase: Phase::Fresh,
        })
    }

    /// The mechanism of this exchange, for `AUTHENTICATE <name>` / `AUTH <name>`.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Hands out the initial response to send with the command itself (IMAP SASL-IR, SMTP
    /// `AUTH <mech> <base64>`), and records it as sent.
    ///
    /// `None` for LOGIN (the server speaks first) and once anything has been sent. A caller that does not
    /// use initial responses skips this; the first challenge is then answered with the same bytes.
    pub fn initial_response(&mut self) -> Option<SecretBox<Vec<u8>>> {
        if self.phase != Phase::Fresh {
            return None;
        }
        let Script::ClientFirst { initial } = &mut self.script else {
            return None;
        };
        self.phase = Phase::FirstSent;
        initial.take()
    }

    /// Answers one server challenge, given raw (as async-imap passes it) or base64 (as an SMTP `334`
    /// carries it; only the OAuth error JSON is ever decoded here).
    ///
    /// # Errors
    ///
    /// [`SaslError::UnexpectedChallenge`] when the mechanism has nothing left to send, or an OAuth server
    /// sends an empty challenge after the initial response; the decoding errors of
    /// [`decode_oauth_error`] when the OAuth error challenge is not the expected JSON. The exchange is
    /// over in either case: the caller should send [`error_challenge_reply`] (or cancel) and expect
    /// failure.
    pub fn on_challenge(&mut self, challenge: &[u8]) -> Result<Step, SaslError> {
        match self.phase {
            Phase::Fresh => self.send_first(),
            Phase::FirstSent => self.answer_second(challenge),
            Phase::Done => Err(self.unexpected()),
        }
    }

    /// The first challenge's content is not checked: it is empty for client-first mechanisms and a
    /// user-name prompt for LOGIN, whose wording servers vary ("Username:", "User Name").
    fn send_first(&mut self) -> Result<Step, SaslError> {
        self.phase = Phase::FirstSent;
        let response = match &mut self.script {
            Script::ClientFirst { initial } => initial.take(),
            Script::Login { user, .. } => Some(secret_bytes(user)),
        };
        response.map(Step::Respond).ok_or_else(|| self.unexpected())
    }

    fn answer_second(&mut self, challenge: &[u8]) -> Result<Step, SaslError> {
        self.phase = Phase::Done;
        if let Script::Login { password, .. } = &self.script {
            return Ok(Step::Respond(secret_bytes(password.expose_secret())));
        }
        if !self.mechanism.is_oauth() || challenge.trim_ascii().is_empty() {
            return Err(self.unexpected());
        }
        Ok(Step::ErrorChallenge {
            challenge: decode_oauth_error(challenge)?,
            reply: error_challenge_reply(self.mechanism),
        })
    }

    fn unexpected(&self) -> SaslError {
        SaslError::UnexpectedChallenge {
            mechanism: self.mechanism,
        }
    }
}

fn client_first(initial: SecretBox<Vec<u8>>) -> Script {
    Script::ClientFirst {
        initial: Some(initial),
    }
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;
