//! The IMAP steps: DNS, TCP, TLS, capabilities, then login and the mailbox.
//!
//! Non-goal: syncing; LIST and SELECT INBOX prove the account is usable, nothing more is read. Key
//! decision: the TLS step probes with the recording verifier (facts, never credentials); capabilities
//! and login go through `postern-sync`, so the doctor meets exactly the errors the sync engine meets,
//! and explains them through the catalogue.

use std::path::Path;
use std::time::Instant;

use postern_auth::sasl::Mechanism;
use postern_store::{Account, AccountAuth, Security};
use postern_sync::{Capabilities, ImapEndpoint, ImapError, Timeouts, authenticate, connect};
use tokio::net::TcpStream;

use super::credentials::{AccountLogin, oauth_mechanism};
use super::{DoctorOptions, HostPort, Steps, network};
use crate::catalogue::{self, Observation};
use crate::probe::imap_plain;
use crate::probe::tls::{self, EXPIRY_WARNING_DAYS, ProbeFailure, TlsFacts};
use crate::report::{Status, Step, StepName};

const LOGIN_STEPS: [StepName; 2] = [StepName::ImapLogin, StepName::ImapMailbox];

/// DNS, TCP, TLS and capabilities. Returns the endpoint to log in to when all of them allow it.
pub(super) async fn connectivity(
    steps: &mut Steps,
    server: &HostPort,
    ca_file: Option<&Path>,
    account: Option<&Account>,
    options: &DoctorOptions,
) -> Option<ImapEndpoint> {
    let Some(tcp) = network::reach(
        steps,
        server,
        StepName::ImapDns,
        StepName::ImapTcp,
        options.connect_timeout,
    )
    .await
    else {
        steps.skip(
            &[StepName::ImapTls, StepName::ImapCapabilities],
            "no TCP connection to the IMAP server",
        );
        return None;
    };
    if !secure(steps, server, tcp, ca_file, options).await {
        steps.skip(
            &[StepName::ImapCapabilities],
            "no trusted TLS connection to the IMAP server",
        );
        return None;
    }
    let endpoint = endpoint(server, ca_file);
    capabilities(steps, &endpoint, account, options)
        .await
        .then_some(endpoint)
}

fn endpoint(server: &HostPort, ca_file: Option<&Path>) -> ImapEndpoint {
    let security = match server.security {
        Security::Tls => postern_sync::Security::Tls,
        Security::StartTls => postern_sync::Security::StartTls,
        Security::None => postern_sync::Security::None,
    };
    let endpoint = ImapEndpoint::new(server.host.clone(), server.port, security);
    match ca_file {
        Some(path) => endpoint.with_ca_file(path),
        None => endpoint,
    }
}

pub(super) fn timeouts(options: &DoctorOptions) -> Timeouts {
    Timeouts {
        connect: options.connect_timeout,
        handshake: options.io_timeout,
        command: options.io_timeout,
    }
}

/// The TLS step; true when the connection may carry credentials.
async fn secure(
    steps: &mut Steps,
    server: &HostPort,
    tcp: TcpStream,
    ca_file: Option<&Path>,
    options: &DoctorOptions,
) -> bool {
    let started = Instant::now();
    let bound = options.io_timeout;
    let (stream, mut evidence) = match server.security {
        Security::None => {
            steps.push(plaintext_step(StepName::ImapTls, server));
            return server.is_loopback();
        }
        Security::Tls => (tcp, Vec::new()),
        Security::StartTls => match imap_plain::starttls(tcp, bound).await {
            Ok(ready) => ready,
            Err(failure) => {
                let entry = failure
                    .condition
                    .and_then(|condition| catalogue::explain(&Observation::Condition(condition)));
                let step = Step::new(
                    StepName::ImapTls,
                    Status::Fail,
                    started.elapsed(),
                    failure.detail,
                )
                .with_evidence_lines(failure.evidence)
                .explained_by(entry);
                steps.push(step);
                return false;
            }
        },
    };
    let step = match tls::handshake(stream, &server.host, ca_file, bound).await {
        Ok((_probe, facts)) => {
            evidence.extend(facts.evidence());
            tls_step(StepName::ImapTls, &facts, started).with_evidence_lines(evidence)
        }
        Err(failure) => {
            probe_failure_step(StepName::ImapTls, failure, started).with_evidence_lines(evidence)
        }
    };
    let usable = step.status != Status::Fail;
    steps.push(step);
    usable
}

/// The step for an endpoint configured without TLS: allowed to loopback only.
pub(super) fn plaintext_step(name: StepName, server: &HostPort) -> Step {
    if server.is_loopback() {
        Step::skipped(
            name,
            "no TLS configured: plaintext, allowed to a loopback host only",
        )
    } else {
        Step::new(
            name,
            Status::Fail,
            std::time::Duration::ZERO,
            "no TLS configured: Postern refuses plaintext to a host that is not loopback",
        )
        .with_fix("Set the endpoint's security to tls (993/465) or starttls (143/587).")
    }
}

/// A finished handshake's verdict: an untrusted or misnamed certificate fails, an expiring one warns.
pub(super) fn tls_step(name: StepName, facts: &TlsFacts, started: Instant) -> Step {
    let elapsed = started.elapsed();
    if let Some(problem) = facts.problem() {
        let summary = match problem.condition {
            catalogue::Condition::HostnameMismatch => {
                format!("the certificate is not valid for {}", facts.host)
            }
            catalogue::Condition::CertificateExpired => "the certificate has expired".to_owned(),
            _ => format!("the certificate is not trusted: {}", problem.detail),
        };
        let entry = catalogue::explain(&Observation::Condition(problem.condition));
        return Step::new(name, Status::Fail, elapsed, summary).explained_by(entry);
    }
    match facts.days_left() {
        Some(days) if days < EXPIRY_WARNING_DAYS => Step::new(
            name,
            Status::Warn,
            elapsed,
            format!(
                "{}, certificate trusted but expires in {days} days",
                facts.protocol
            ),
        )
        .with_fix("Renew the server's certificate before it expires."),
        days => Step::new(
            name,
            Status::Pass,
            elapsed,
            format!(
                "{}, certificate trusted and valid for {}{}",
                facts.protocol,
                facts.host,
                days.map(|days| format!(", {days} days left"))
                    .unwrap_or_default()
            ),
        ),
    }
}

pub(super) fn probe_failure_step(name: StepName, failure: ProbeFailure, started: Instant) -> Step {
    let elapsed = started.elapsed();
    match failure {
        ProbeFailure::Config(reason) => Step::new(name, Status::Fail, elapsed, reason),
        ProbeFailure::Handshake { condition, detail } => {
            let summary = match condition {
                catalogue::Condition::TlsOnPlainPort => {
                    "the server answered the TLS handshake in plain text".to_owned()
                }
                _ => "the TLS handshake failed".to_owned(),
            };
            Step::new(name, Status::Fail, elapsed, summary)
                .with_evidence(detail)
                .explained_by(catalogue::explain(&Observation::Condition(condition)))
        }
        ProbeFailure::Timeout(bound) => Step::new(
            name,
            Status::Fail,
            elapsed,
            format!("the TLS handshake did not finish within {bound:?}"),
        )
        .explained_by(catalogue::explain(&Observation::Condition(
            catalogue::Condition::TlsHandshakeFailed,
        ))),
    }
}

/// The capabilities step; true when the account can log in with what the server offers.
async fn capabilities(
    steps: &mut Steps,
    endpoint: &ImapEndpoint,
    account: Option<&Account>,
    options: &DoctorOptions,
) -> bool {
    let started = Instant::now();
    let client = match connect(endpoint, &timeouts(options)).await {
        Ok(client) => client,
        Err(error) => {
            steps.push(imap_error_step(
                StepName::ImapCapabilities,
                &error,
                false,
                started,
            ));
            return false;
        }
    };
    let offered = client.capabilities().clone();
    drop(client);
    let evidence = capability_evidence(&offered);
    let step = match account.map(|account| login_possible(account, &offered)) {
        Some(Err(wanted)) => {
            let entry = catalogue::explain(&Observation::Condition(
                catalogue::Condition::MechanismNotOffered,
            ));
            Step::new(
                StepName::ImapCapabilities,
                Status::Fail,
                started.elapsed(),
                format!("the server does not offer {wanted}, which this account logs in with"),
            )
            .explained_by(entry)
        }
        _ if offered.sasl_mechanisms().is_empty() && offered.login_disabled() => Step::new(
            StepName::ImapCapabilities,
            Status::Warn,
            started.elapsed(),
            "the server offers no way to log in on this connection",
        ),
        _ => Step::new(
            StepName::ImapCapabilities,
            Status::Pass,
            started.elapsed(),
            format!("greeted; offers {}", mechanisms_words(&offered)),
        ),
    };
    let usable = step.status != Status::Fail;
    steps.push(step.with_evidence_lines(evidence));
    usable
}

/// `Err(name)` of the mechanism the account needs when the server lacks it.
fn login_possible(account: &Account, offered: &Capabilities) -> Result<(), String> {
    match &account.auth {
        AccountAuth::OAuth2 { mechanism, .. } | AccountAuth::OAuth2App { mechanism, .. } => {
            let mechanism = Mechanism::from(oauth_mechanism(*mechanism));
            if offered.offers(mechanism) {
                Ok(())
            } else {
                Err(format!("AUTH={mechanism}"))
            }
        }
        AccountAuth::Password { .. } => {
            if offered.offers(Mechanism::Plain)
                || offered.offers(Mechanism::Login)
                || !offered.login_disabled()
            {
                Ok(())
            } else {
                Err("a password login (AUTH=PLAIN or the LOGIN command)".to_owned())
            }
        }
    }
}

fn mechanisms_words(offered: &Capabilities) -> String {
    if offered.sasl_mechanisms().is_empty() {
        "no SASL mechanism".to_owned()
    } else {
        format!("SASL {}", offered.sasl_mechanisms().join(", "))
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn capability_evidence(offered: &Capabilities) -> Vec<String> {
    vec![
        format!(
            "IDLE: {}, CONDSTORE: {}, QRESYNC: {}, LOGINDISABLED: {}",
            yes_no(offered.idle()),
            yes_no(offered.condstore()),
            yes_no(offered.qresync()),
            yes_no(offered.login_disabled())
        ),
        format!("SASL mechanisms: {}", offered.sasl_mechanisms().join(", ")),
        format!(
            "capabilities: {}",
            offered.names().collect::<Vec<_>>().join(" ")
        ),
    ]
}

/// A step for an IMAP error, explained by the catalogue.
fn imap_error_step(name: StepName, error: &ImapError, fresh_token: bool, started: Instant) -> Step {
    let mut step = Step::new(name, Status::Fail, started.elapsed(), error.to_string());
    if let Some(code) = error.response_code() {
        step = step.with_evidence(format!("response code: {code}"));
    }
    if let Some(challenge) = error.oauth_challenge() {
        step = step.with_evidence(format!("SASL error JSON: {}", challenge.raw_json()));
    }
    step.explained_by(catalogue::explain_imap_error(error, fresh_token))
}

/// The login and mailbox steps.
pub(super) async fn login(
    steps: &mut Steps,
    endpoint: Option<ImapEndpoint>,
    login: &AccountLogin,
    options: &DoctorOptions,
) {
    let Some(endpoint) = endpoint else {
        steps.skip(&LOGIN_STEPS, "the IMAP server cannot be used (see above)");
        return;
    };
    let started = Instant::now();
    let imap_login = match login.imap_login() {
        Ok(imap_login) => imap_login,
        Err(reason) => {
            steps.push(Step::new(
                StepName::ImapLogin,
                Status::Fail,
                started.elapsed(),
                reason,
            ));
            steps.skip(&[StepName::ImapMailbox], "not logged in");
            return;
        }
    };
    let fresh = login.token_just_refreshed();
    let session = match connect(&endpoint, &timeouts(options)).await {
        Ok(client) => authenticate(client, &imap_login).await,
        Err(error) => Err(error),
    };
    let mut session = match session {
        Ok(session) => session,
        Err(error) => {
            steps.push(imap_error_step(StepName::ImapLogin, &error, fresh, started));
            steps.skip(&[StepName::ImapMailbox], "not logged in");
            return;
        }
    };
    let how = match login.oauth_mechanism() {
        Some(mechanism) => format!("with {mechanism}"),
        None => "with the stored password".to_owned(),
    };
    steps.push(Step::new(
        StepName::ImapLogin,
        Status::Pass,
        started.elapsed(),
        format!("logged in as {} {how}", login.user),
    ));
    mailbox(steps, &mut session, fresh).await;
    // A failed LOGOUT changes nothing for the diagnosis: the connection closes either way.
    let _ = session.logout().await;
}

async fn mailbox(steps: &mut Steps, session: &mut postern_sync::ImapSession, fresh: bool) {
    let started = Instant::now();
    let check = match session.select_inbox_check().await {
        Ok(check) => check,
        Err(error) => {
            steps.push(imap_error_step(
                StepName::ImapMailbox,
                &error,
                fresh,
                started,
            ));
            return;
        }
    };
    let offered = session.capabilities();
    let mut evidence = vec![format!(
        "after login: IDLE: {}, CONDSTORE: {}, QRESYNC: {}",
        yes_no(offered.idle()),
        yes_no(offered.condstore()),
        yes_no(offered.qresync())
    )];
    evidence.push(format!(
        "INBOX: UIDVALIDITY {}, UIDNEXT {}, HIGHESTMODSEQ {}",
        optional(check.uid_validity),
        optional(check.uid_next),
        optional(check.highest_modseq)
    ));
    let summary = format!(
        "{} mailboxes listed; INBOX holds {} messages",
        check.mailboxes, check.exists
    );
    let step = if offered.idle() {
        Step::new(
            StepName::ImapMailbox,
            Status::Pass,
            started.elapsed(),
            summary,
        )
    } else {
        Step::new(
            StepName::ImapMailbox,
            Status::Warn,
            started.elapsed(),
            summary,
        )
        .with_fix("The server has no IDLE: new mail is found by polling, with more delay.")
    };
    steps.push(step.with_evidence_lines(evidence));
}

fn optional<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}
