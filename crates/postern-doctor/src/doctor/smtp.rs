//! The SMTP steps: DNS, TCP, greeting and EHLO, TLS, AUTH, and the dry send path.
//!
//! Non-goal: sending. The send path is `MAIL FROM` and `RCPT TO` the account's own address, then
//! `RSET` and `QUIT`: the server has checked sender and recipient, and no message exists.
//!
//! Key decision: one connection carries every step, in the order a real submission takes (for
//! STARTTLS: EHLO in plain text, STARTTLS, EHLO again), and nothing secret is written before the TLS
//! step has found the certificate trusted.

use std::path::Path;
use std::time::Instant;

use postern_auth::sasl::Mechanism;
use postern_store::Security;
use postern_sync::BoxedStream;
use tokio::net::TcpStream;

use super::credentials::AccountLogin;
use super::imap::{plaintext_step, probe_failure_step, tls_step};
use super::{DoctorOptions, HostPort, Steps, network};
use crate::catalogue::{self, Condition, Observation};
use crate::error::SmtpError;
use crate::probe::tls;
use crate::report::{Status, Step, StepName};
use crate::smtp::auth::{AuthOutcome, authenticate};
use crate::smtp::{Reply, SmtpConn};

/// The SMTP steps after TCP, in order.
fn later_steps(with_auth: bool) -> Vec<StepName> {
    let mut all = vec![StepName::SmtpEhlo, StepName::SmtpTls];
    if with_auth {
        all.extend([StepName::SmtpAuth, StepName::SmtpSendPath]);
    }
    all
}

/// A connection secured as the endpoint asks, with its last EHLO; `None` when it cannot carry a
/// login (the failing step is recorded).
type Secured = Option<(SmtpConn<BoxedStream>, Reply)>;

pub(super) async fn check(
    steps: &mut Steps,
    server: &HostPort,
    ca_file: Option<&Path>,
    auth: Option<&AccountLogin>,
    email: Option<&str>,
    options: &DoctorOptions,
) {
    let with_auth = auth.is_some();
    let Some(tcp) = network::reach(
        steps,
        server,
        StepName::SmtpDns,
        StepName::SmtpTcp,
        options.connect_timeout,
    )
    .await
    else {
        steps.skip_unrecorded(
            &later_steps(with_auth),
            "no TCP connection to the SMTP server",
        );
        return;
    };
    let secured = match server.security {
        Security::Tls => implicit_tls(steps, server, tcp, ca_file, options).await,
        Security::StartTls => upgraded(steps, server, tcp, ca_file, options).await,
        Security::None => plaintext(steps, server, tcp, options).await,
    };
    let Some((mut conn, ehlo)) = secured else {
        steps.skip_unrecorded(&later_steps(with_auth), "no usable SMTP connection");
        return;
    };
    if let Some(auth) = auth {
        if login(steps, &mut conn, &ehlo, server, auth).await {
            match email {
                Some(email) => send_path(steps, &mut conn, email).await,
                None => steps.skip(&[StepName::SmtpSendPath], "no address to check"),
            }
        } else {
            steps.skip(&[StepName::SmtpSendPath], "not logged in");
        }
    }
    // Politeness only: the connection closes either way.
    let _ = conn.send("QUIT").await;
}

/// TLS from the first byte, then the greeting and EHLO over it.
async fn implicit_tls(
    steps: &mut Steps,
    server: &HostPort,
    tcp: TcpStream,
    ca_file: Option<&Path>,
    options: &DoctorOptions,
) -> Secured {
    let started = Instant::now();
    let stream = match tls::handshake(tcp, &server.host, ca_file, options.io_timeout).await {
        Ok((stream, facts)) => {
            let step =
                tls_step(StepName::SmtpTls, &facts, started).with_evidence_lines(facts.evidence());
            let usable = step.status != Status::Fail;
            steps.push(step);
            if !usable {
                return None;
            }
            stream
        }
        Err(failure) => {
            steps.push(probe_failure_step(StepName::SmtpTls, failure, started));
            return None;
        }
    };
    let mut conn = SmtpConn::new(Box::new(stream) as BoxedStream, options.io_timeout);
    let ehlo = greet(steps, &mut conn, &options.ehlo_name).await?;
    Some((conn, ehlo))
}

/// Greeting and EHLO in plain text, then STARTTLS and EHLO again.
async fn upgraded(
    steps: &mut Steps,
    server: &HostPort,
    tcp: TcpStream,
    ca_file: Option<&Path>,
    options: &DoctorOptions,
) -> Secured {
    let mut plain = SmtpConn::new(tcp, options.io_timeout);
    let ehlo = greet(steps, &mut plain, &options.ehlo_name).await?;
    starttls(steps, plain, &ehlo, server, ca_file, options).await
}

/// No TLS at all: allowed to a loopback host only.
async fn plaintext(
    steps: &mut Steps,
    server: &HostPort,
    tcp: TcpStream,
    options: &DoctorOptions,
) -> Secured {
    let mut conn = SmtpConn::new(Box::new(tcp) as BoxedStream, options.io_timeout);
    let ehlo = greet(steps, &mut conn, &options.ehlo_name).await?;
    steps.push(plaintext_step(StepName::SmtpTls, server));
    server.is_loopback().then_some((conn, ehlo))
}

/// Reads the greeting and says EHLO; the EHLO reply when both were positive.
async fn greet<S>(steps: &mut Steps, conn: &mut SmtpConn<S>, ehlo_name: &str) -> Option<Reply>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let started = Instant::now();
    let step =
        |status, summary: String| Step::new(StepName::SmtpEhlo, status, started.elapsed(), summary);
    let greeting = match conn.read_reply().await {
        Ok(greeting) => greeting,
        Err(error) => {
            steps.push(wire_failure(
                step(Status::Fail, "no greeting".to_owned()),
                &error,
                true,
            ));
            return None;
        }
    };
    if greeting.code != 220 {
        steps.push(refusal(
            step(
                Status::Fail,
                format!("the server refused the connection: {}", greeting.headline()),
            ),
            &greeting,
        ));
        return None;
    }
    let ehlo = match conn.send(&format!("EHLO {ehlo_name}")).await {
        Ok(ehlo) => ehlo,
        Err(error) => {
            steps.push(wire_failure(
                step(Status::Fail, "no answer to EHLO".to_owned()),
                &error,
                false,
            ));
            return None;
        }
    };
    if !ehlo.is_success() {
        steps.push(refusal(
            step(Status::Fail, format!("EHLO refused: {}", ehlo.headline())),
            &ehlo,
        ));
        return None;
    }
    let mechanisms = ehlo.auth_mechanisms();
    let summary = format!(
        "greeted; EHLO lists {} extensions{}",
        ehlo.extensions().len(),
        if mechanisms.is_empty() {
            String::new()
        } else {
            format!(", AUTH {}", mechanisms.join(" "))
        }
    );
    let evidence = std::iter::once(format!("S: {}", greeting.headline())).chain(
        ehlo.transcript()
            .into_iter()
            .map(|line| format!("S: {line}")),
    );
    steps.push(step(Status::Pass, summary).with_evidence_lines(evidence));
    Some(ehlo)
}

/// STARTTLS, the handshake, and EHLO again over TLS.
async fn starttls(
    steps: &mut Steps,
    mut plain: SmtpConn<TcpStream>,
    ehlo: &Reply,
    server: &HostPort,
    ca_file: Option<&Path>,
    options: &DoctorOptions,
) -> Option<(SmtpConn<BoxedStream>, Reply)> {
    let started = Instant::now();
    let fail =
        |summary: String| Step::new(StepName::SmtpTls, Status::Fail, started.elapsed(), summary);
    let missing = || catalogue::explain(&Observation::Condition(Condition::StartTlsMissing));
    if !ehlo.offers("STARTTLS") {
        steps.push(fail("the server does not offer STARTTLS".to_owned()).explained_by(missing()));
        return None;
    }
    let answer = match plain.send("STARTTLS").await {
        Ok(answer) => answer,
        Err(error) => {
            steps.push(wire_failure(
                fail("no answer to STARTTLS".to_owned()),
                &error,
                false,
            ));
            return None;
        }
    };
    if answer.code != 220 {
        let step = fail(format!("STARTTLS refused: {}", answer.headline())).explained_by(missing());
        steps.push(step);
        return None;
    }
    let bound = options.io_timeout;
    let (stream, facts) =
        match tls::handshake(plain.into_inner(), &server.host, ca_file, bound).await {
            Ok(done) => done,
            Err(failure) => {
                steps.push(probe_failure_step(StepName::SmtpTls, failure, started));
                return None;
            }
        };
    let step = tls_step(StepName::SmtpTls, &facts, started).with_evidence_lines(facts.evidence());
    if step.status == Status::Fail {
        steps.push(step);
        return None;
    }
    let mut conn = SmtpConn::new(Box::new(stream) as BoxedStream, bound);
    match conn.send(&format!("EHLO {}", options.ehlo_name)).await {
        Ok(secured) if secured.is_success() => {
            let mechanisms = secured.auth_mechanisms().join(" ");
            steps.push(step.with_evidence(format!("EHLO over TLS: AUTH {mechanisms}")));
            Some((conn, secured))
        }
        Ok(refused) => {
            steps.push(refusal(
                fail(format!("EHLO over TLS refused: {}", refused.headline())),
                &refused,
            ));
            None
        }
        Err(error) => {
            steps.push(wire_failure(
                fail("no answer to EHLO over TLS".to_owned()),
                &error,
                false,
            ));
            None
        }
    }
}

/// The AUTH step; true when logged in.
async fn login(
    steps: &mut Steps,
    conn: &mut SmtpConn<BoxedStream>,
    ehlo: &Reply,
    server: &HostPort,
    login: &AccountLogin,
) -> bool {
    let started = Instant::now();
    let step =
        |status, summary: String| Step::new(StepName::SmtpAuth, status, started.elapsed(), summary);
    let offered = ehlo.auth_mechanisms();
    let mechanism = match login.oauth_mechanism() {
        Some(mechanism) => mechanism,
        None if offered.iter().any(|m| m == "PLAIN") => Mechanism::Plain,
        None => Mechanism::Login,
    };
    if !offered.iter().any(|m| m == mechanism.as_str()) {
        let entry = catalogue::explain(&Observation::Condition(Condition::MechanismNotOffered));
        let summary = format!("the server does not offer AUTH {mechanism}");
        let offered = if offered.is_empty() {
            "nothing".to_owned()
        } else {
            offered.join(" ")
        };
        steps.push(
            step(Status::Fail, summary)
                .with_evidence(format!("AUTH offered: {offered}"))
                .explained_by(entry),
        );
        return false;
    }
    let credentials = match login.sasl_credentials(&server.host, server.port) {
        Ok(credentials) => credentials,
        Err(reason) => {
            steps.push(step(Status::Fail, reason));
            return false;
        }
    };
    match authenticate(conn, mechanism, credentials).await {
        Ok(AuthOutcome::Accepted(reply)) => {
            let summary = format!("AUTH {mechanism} accepted as {}", login.user);
            steps.push(
                step(Status::Pass, summary).with_evidence(format!("S: {}", reply.headline())),
            );
            true
        }
        Ok(AuthOutcome::Rejected { reply, challenge }) => {
            let summary = format!("AUTH {mechanism} refused: {}", reply.headline());
            let mut failed = step(Status::Fail, summary).with_evidence_lines(
                reply
                    .transcript()
                    .into_iter()
                    .map(|line| format!("S: {line}")),
            );
            let text = reply.text();
            let entry = match &challenge {
                Some(json) => {
                    failed = failed.with_evidence(format!("SASL error JSON: {}", json.raw_json()));
                    catalogue::explain(&catalogue::sasl_observation(
                        json,
                        login.token_just_refreshed(),
                    ))
                }
                None => catalogue::explain(&reply.observation(&text)),
            };
            steps.push(failed.explained_by(entry));
            false
        }
        Err(error) => {
            steps.push(wire_failure(
                step(Status::Fail, format!("AUTH {mechanism} failed")),
                &error,
                false,
            ));
            false
        }
    }
}

/// MAIL FROM and RCPT TO the account itself, then RSET: nothing is sent.
async fn send_path(steps: &mut Steps, conn: &mut SmtpConn<BoxedStream>, email: &str) {
    let started = Instant::now();
    let mut evidence = Vec::new();
    for command in [
        format!("MAIL FROM:<{email}>"),
        format!("RCPT TO:<{email}>"),
        "RSET".to_owned(),
    ] {
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_owned();
        let reply = match conn.send(&command).await {
            Ok(reply) => reply,
            Err(error) => {
                let step = Step::new(
                    StepName::SmtpSendPath,
                    Status::Fail,
                    started.elapsed(),
                    format!("no answer to {verb}"),
                );
                steps.push(wire_failure(
                    step.with_evidence_lines(evidence),
                    &error,
                    false,
                ));
                return;
            }
        };
        evidence.push(format!("C: {command}"));
        evidence.push(format!("S: {}", reply.headline()));
        if !reply.is_success() {
            let step = Step::new(
                StepName::SmtpSendPath,
                Status::Fail,
                started.elapsed(),
                format!("{verb} refused: {}", reply.headline()),
            )
            .with_evidence_lines(evidence);
            steps.push(refusal(step, &reply));
            // Leave the server in a clean state; nothing was sent.
            let _ = conn.send("RSET").await;
            return;
        }
    }
    let step = Step::new(
        StepName::SmtpSendPath,
        Status::Pass,
        started.elapsed(),
        format!("the server accepts mail from and to {email}; reset, nothing sent"),
    );
    steps.push(step.with_evidence_lines(evidence));
}

/// Adds the catalogue's explanation of a negative reply.
fn refusal(step: Step, reply: &Reply) -> Step {
    let text = reply.text();
    step.explained_by(catalogue::explain(&reply.observation(&text)))
}

/// A step for a broken connection; a missing greeting is explained as such.
fn wire_failure(step: Step, error: &SmtpError, at_greeting: bool) -> Step {
    let step = step.with_evidence(error.to_string());
    if at_greeting && error.is_timeout() {
        step.explained_by(catalogue::explain(&Observation::Condition(
            Condition::NoGreeting,
        )))
    } else {
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_and_send_path_are_steps_only_with_credentials() {
        assert_eq!(later_steps(false), [StepName::SmtpEhlo, StepName::SmtpTls]);
        assert_eq!(later_steps(true).len(), 4);
    }
}
