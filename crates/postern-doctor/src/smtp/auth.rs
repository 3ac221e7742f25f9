//! SMTP `AUTH` (RFC 4954) driven by `postern-auth`'s SASL exchange: XOAUTH2, OAUTHBEARER, PLAIN, LOGIN.
//!
//! Purpose: log in and, when the server refuses an OAuth token, keep the decoded `334` error JSON and
//! answer it (an empty line for XOAUTH2, `AQ==` for OAUTHBEARER) so the server ends with its `535`
//! instead of waiting forever.
//!
//! Non-goal: choosing the mechanism (the doctor takes the account's). Key decision: the initial
//! response goes with the command (`AUTH XOAUTH2 <base64>`), as every submission server accepts, and is
//! written through `send_secret` only.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use postern_auth::sasl::{Credentials, Mechanism, OAuthErrorChallenge, SaslExchange, Step};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Reply, SmtpConn};
use crate::error::SmtpError;

/// More rounds than any mechanism here needs (LOGIN: two prompts, OAuth: one error challenge).
const MAX_ROUNDS: usize = 4;

/// How an AUTH exchange ended.
#[derive(Debug)]
pub(crate) enum AuthOutcome {
    /// `235`: logged in.
    Accepted(Reply),
    /// Any other final reply, with the OAuth error JSON when the server sent one first.
    Rejected {
        reply: Reply,
        challenge: Option<Box<OAuthErrorChallenge>>,
    },
}

/// Runs `AUTH mechanism` with `credentials` to its final reply.
pub(crate) async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut SmtpConn<S>,
    mechanism: Mechanism,
    credentials: Credentials,
) -> Result<AuthOutcome, SmtpError> {
    let mut exchange = SaslExchange::new(mechanism, credentials)
        .map_err(|error| SmtpError::InvalidCredentials(error.to_string()))?;
    let mut reply = match exchange.initial_response() {
        Some(initial) => {
            let prefix = format!("AUTH {} ", mechanism.as_str());
            conn.send_secret(&base64_line(&prefix, initial.expose_secret()))
                .await?
        }
        None => conn.send(&format!("AUTH {}", mechanism.as_str())).await?,
    };
    let mut error_json = None;
    for _ in 0..MAX_ROUNDS {
        if reply.code == 235 {
            return Ok(AuthOutcome::Accepted(reply));
        }
        if reply.code != 334 {
            return Ok(AuthOutcome::Rejected {
                reply,
                challenge: error_json,
            });
        }
        let challenge = reply.lines.first().map_or("", |line| line.trim());
        reply = match exchange.on_challenge(challenge.as_bytes()) {
            Ok(Step::Respond(response)) => {
                conn.send_secret(&base64_line("", response.expose_secret()))
                    .await?
            }
            Ok(Step::ErrorChallenge {
                challenge,
                reply: answer,
            }) => {
                error_json = Some(Box::new(challenge));
                conn.send(&STANDARD.encode(answer)).await?
            }
            // A challenge that makes no sense: cancel the exchange (RFC 4954 section 4).
            Err(_) => conn.send("*").await?,
        };
    }
    Err(SmtpError::Malformed(
        "the AUTH exchange did not end".to_owned(),
    ))
}

/// `prefix` followed by `bytes` in base64, built inside the secret so no plain copy outlives it.
fn base64_line(prefix: &str, bytes: &[u8]) -> SecretString {
    let mut line = String::with_capacity(prefix.len() + bytes.len().div_ceil(3) * 4);
    line.push_str(prefix);
    STANDARD.encode_string(bytes, &mut line);
    SecretString::from(line)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

    use super::*;

    /// A scripted server: answers each client line with the next reply, and returns what it received.
    fn script(
        replies: &'static [&'static str],
    ) -> (
        SmtpConn<tokio::io::DuplexStream>,
        tokio::task::JoinHandle<Vec<String>>,
    ) {
        let (client, server) = tokio::io::duplex(16 * 1024);
        let handle = tokio::spawn(async move {
            let (read, mut write) = tokio::io::split(server);
            let mut lines = BufReader::new(read).lines();
            let mut received = Vec::new();
            for reply in replies {
                let Ok(Some(line)) = lines.next_line().await else {
                    break;
                };
                received.push(line);
                write.write_all(reply.as_bytes()).await.unwrap();
            }
            received
        });
        (SmtpConn::new(client, Duration::from_secs(2)), handle)
    }

    fn bearer() -> Credentials {
        Credentials::bearer(
            "alice@example.test",
            "localhost",
            587,
            SecretString::from("tok-123"),
        )
    }

    #[tokio::test]
    async fn a_refused_xoauth2_token_is_answered_with_an_empty_line_and_its_json_kept() {
        let (mut conn, server) = script(&[
            "334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=\r\n",
            "535 5.7.8 Authentication failed.\r\n",
        ]);

        let outcome = authenticate(&mut conn, Mechanism::XOAuth2, bearer())
            .await
            .unwrap();

        match outcome {
            AuthOutcome::Rejected { reply, challenge } => {
                assert_eq!(reply.code, 535);
                assert_eq!(challenge.unwrap().status(), "401");
            }
            other => panic!("{other:?}"),
        }
        let received = server.await.unwrap();
        assert!(received[0].starts_with("AUTH XOAUTH2 "));
        assert_eq!(
            received[1], "",
            "XOAUTH2's error challenge is answered with an empty line"
        );
    }

    #[tokio::test]
    async fn a_refused_oauthbearer_token_is_answered_with_0x01() {
        let (mut conn, server) = script(&[
            "334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n",
            "535 5.7.8 Authentication failed.\r\n",
        ]);

        let outcome = authenticate(&mut conn, Mechanism::OAuthBearer, bearer())
            .await
            .unwrap();

        assert!(matches!(
            outcome,
            AuthOutcome::Rejected {
                challenge: Some(_),
                ..
            }
        ));
        let received = server.await.unwrap();
        assert!(received[0].starts_with("AUTH OAUTHBEARER "));
        assert_eq!(received[1], "AQ==");
    }

    #[tokio::test]
    async fn login_answers_both_prompts_and_accepts_235() {
        let (mut conn, server) = script(&[
            "334 VXNlcm5hbWU6\r\n",
            "334 UGFzc3dvcmQ6\r\n",
            "235 2.7.0 Authentication successful\r\n",
        ]);
        let credentials = Credentials::password("alice", SecretString::from("pw"));

        let outcome = authenticate(&mut conn, Mechanism::Login, credentials)
            .await
            .unwrap();

        assert!(matches!(outcome, AuthOutcome::Accepted(_)));
        let received = server.await.unwrap();
        assert_eq!(received, ["AUTH LOGIN", "YWxpY2U=", "cHc="]);
    }

    #[tokio::test]
    async fn a_challenge_that_makes_no_sense_is_cancelled() {
        let (mut conn, server) = script(&[
            "334 bm90IGpzb24=\r\n",
            "501 5.7.0 Authentication cancelled\r\n",
        ]);

        let outcome = authenticate(&mut conn, Mechanism::XOAuth2, bearer())
            .await
            .unwrap();

        assert!(matches!(
            outcome,
            AuthOutcome::Rejected {
                challenge: None,
                ..
            }
        ));
        assert_eq!(server.await.unwrap()[1], "*");
    }
}
