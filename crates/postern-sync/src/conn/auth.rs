//! The login on the wire: `AUTHENTICATE` through postern-auth's SASL exchange, or the `LOGIN` command.
//!
//! Non-goal: choosing the method (see [`crate::login`]). Key decision: a tagged `NO` becomes
//! [`ImapError::AuthRejected`] with the OAuth error challenge the exchange recorded, because async-imap
//! itself returns only the `NO`'s text.

use std::time::Duration;

use postern_auth::sasl::{
    Credentials, ImapAuthenticator, Mechanism, OAuthErrorChallenge, SaslExchange,
};
use secrecy::{ExposeSecret as _, SecretString};

use super::{BoxedStream, within};
use crate::error::{ImapError, Stage, command_error};
use crate::login::LoginMethod;
use crate::response::ServerReply;

pub(super) async fn sasl_login(
    client: async_imap::Client<BoxedStream>,
    mechanism: Mechanism,
    credentials: Credentials,
    bound: Duration,
) -> Result<async_imap::Session<BoxedStream>, ImapError> {
    let exchange = SaslExchange::new(mechanism, credentials).map_err(|error| {
        ImapError::InvalidCredentials {
            reason: error.to_string(),
        }
    })?;
    let authenticator = ImapAuthenticator::new(exchange);
    let report = authenticator.report();
    let outcome = within(
        Stage::Authenticate,
        bound,
        client.authenticate(mechanism.as_str(), authenticator),
    )
    .await?;
    outcome.map_err(|(error, _client)| {
        if let Some(problem) = report.take_protocol_error() {
            tracing::warn!(%mechanism, %problem, "the server's SASL challenge made no sense");
        }
        let challenge = report.error_challenge().map(Box::new);
        login_error(LoginMethod::Authenticate(mechanism), error, challenge)
    })
}

pub(super) async fn login_command(
    client: async_imap::Client<BoxedStream>,
    user: &str,
    password: &SecretString,
    bound: Duration,
) -> Result<async_imap::Session<BoxedStream>, ImapError> {
    let login = client.login(user, password.expose_secret());
    within(Stage::Authenticate, bound, login)
        .await?
        .map_err(|(error, _client)| login_error(LoginMethod::LoginCommand, error, None))
}

fn login_error(
    method: LoginMethod,
    error: async_imap::error::Error,
    challenge: Option<Box<OAuthErrorChallenge>>,
) -> ImapError {
    use async_imap::error::Error;
    match error {
        Error::No(text) => {
            let reply = ServerReply::from_async_imap(&text);
            ImapError::AuthRejected {
                method,
                challenge,
                response_code: reply.response_code,
                server_text: reply.server_text,
            }
        }
        Error::Validate(invalid) => ImapError::InvalidCredentials {
            reason: format!("the {method} command cannot carry it: {invalid}"),
        },
        other => command_error(Stage::Authenticate, "AUTHENTICATE", other),
    }
}
