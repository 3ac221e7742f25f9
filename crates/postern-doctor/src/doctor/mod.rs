//! The diagnosis: every step from DNS to a dry send, each timed, each with evidence and a fix.
//!
//! Purpose: [`diagnose_account`] checks a stored account end to end — IMAP DNS → TCP → TLS →
//! capabilities, the OAuth token (and whether refreshing works now), when the grant and the client
//! secret are forecast to die, the IMAP login with the account's mechanism, LIST + SELECT INBOX,
//! then SMTP DNS → TCP → EHLO → TLS → AUTH → MAIL FROM / RCPT TO / RSET.
//! [`diagnose_endpoints`] checks servers before an account exists (DNS, TCP, TLS, capabilities only).
//! Both return a [`Report`]; a broken setup is a failed step, never an `Err`.
//!
//! Non-goals: repairing anything, and changing the account's state: a dead grant is reported, not
//! marked (the token manager does that when it meets it). The one write is the doctor's own refresh:
//! a refresh token the provider rotated is stored at once, as the token manager would, or the account
//! would be locked out. That refresh does not take the token manager's per-account lock, so a doctor
//! run racing a refresh of the same account on a rotating provider can cost one of them its token.
//!
//! Key decisions:
//! - A step that depends on a failed one is reported as skipped with the reason, so the first failure
//!   stands out as the thing to fix.
//! - TLS is looked at twice on purpose: the TLS step's probe handshake records the certificate and its
//!   verification (see `probe::tls`) and is never used for credentials; the login goes through
//!   `postern-sync`'s verifying client, exactly as the sync engine will.
//! - Explanations come from the [`catalogue`](crate::catalogue) only, so the doctor, account
//!   `last_error` and the outbox word the same failure the same way.

mod credentials;
mod expiry;
mod imap;
mod network;
mod smtp;
mod token;

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::Utc;
use postern_auth::context::AuthContext;
use postern_auth::token_manager::ForecastPolicy;
use postern_store::{Account, Security};

use crate::error::DoctorError;
use crate::report::{Report, Step, StepName, Target};

/// Bounds and names the doctor uses.
#[derive(Clone, Debug)]
pub struct DoctorOptions {
    /// Resolving a name and opening a TCP connection, each.
    pub connect_timeout: Duration,
    /// Each handshake, reply or command after that.
    pub io_timeout: Duration,
    /// The call to the token endpoint.
    pub token_timeout: Duration,
    /// The name sent with EHLO.
    pub ehlo_name: String,
    /// How far ahead the expiry step warns: the same horizons as the `account.expiring` and
    /// `app.secret_expiring` events. [`DoctorDeps::with_tokens`] sets the token manager's.
    pub forecast: ForecastPolicy,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(20),
            token_timeout: Duration::from_secs(30),
            ehlo_name: "localhost".to_owned(),
            forecast: ForecastPolicy::default(),
        }
    }
}

/// What [`diagnose_account`] needs: the store and vault (tokens, passwords, the OAuth app) and the
/// options.
#[derive(Clone)]
pub struct DoctorDeps {
    /// Store, vault and HTTP client, as the token manager uses them.
    pub ctx: AuthContext,
    /// Bounds and names.
    pub options: DoctorOptions,
    /// The server's token manager, when there is one: the token step holds its per-account
    /// refresh lock, so the doctor's own refresh never races a background one.
    pub tokens: Option<postern_auth::token_manager::TokenManager>,
}

impl DoctorDeps {
    /// Dependencies with the default options.
    pub fn new(ctx: AuthContext) -> Self {
        DoctorDeps {
            ctx,
            options: DoctorOptions::default(),
            tokens: None,
        }
    }

    /// Serializes the token step with `tokens`' refreshes of the same account, and warns of
    /// expiries with its forecast horizons, so the doctor and the events agree on "soon".
    pub fn with_tokens(mut self, tokens: postern_auth::token_manager::TokenManager) -> Self {
        self.options.forecast = tokens.policy().forecast.clone();
        self.tokens = Some(tokens);
        self
    }
}

/// Which protocol an endpoint speaks; decides the default port and security.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// IMAP: 993 with TLS, 143 with STARTTLS.
    Imap,
    /// SMTP submission: 465 with TLS, 587 (and 25) with STARTTLS.
    Smtp,
}

/// A server to check: host, port and how the connection is secured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP address (IPv6 in brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS from the first byte, STARTTLS, or none (loopback only).
    pub security: Security,
}

impl HostPort {
    /// An endpoint with an explicit security.
    pub fn new(host: impl Into<String>, port: u16, security: Security) -> Self {
        HostPort {
            host: host.into(),
            port,
            security,
        }
    }

    /// Parses `host`, `host:port` or `[ipv6]:port`; the port defaults to the protocol's TLS port and
    /// the security follows the port (IMAP 143 and SMTP 587/25 STARTTLS, anything else TLS for IMAP
    /// and STARTTLS for SMTP except 465).
    ///
    /// # Errors
    ///
    /// [`DoctorError::InvalidEndpoint`] for an empty host or a port that is not 1-65535.
    pub fn parse(text: &str, protocol: Protocol) -> Result<HostPort, DoctorError> {
        let invalid = |reason| DoctorError::InvalidEndpoint {
            input: text.to_owned(),
            reason,
        };
        let (host, port) = split_host_port(text.trim()).ok_or_else(|| invalid("no host"))?;
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| invalid("the port must be a number from 1 to 65535"))?,
            None => match protocol {
                Protocol::Imap => 993,
                Protocol::Smtp => 465,
            },
        };
        Ok(HostPort::new(host, port, default_security(protocol, port)))
    }

    fn endpoint(endpoint: &postern_store::Endpoint) -> Self {
        HostPort::new(endpoint.host.clone(), endpoint.port, endpoint.security)
    }

    /// Whether the host names this machine (`localhost`, 127.0.0.0/8, ::1).
    pub fn is_loopback(&self) -> bool {
        let host = crate::probe::tls::bare_host(&self.host);
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => host.eq_ignore_ascii_case("localhost"),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} ({})",
            self.host,
            self.port,
            self.security.as_str()
        )
    }
}

impl FromStr for HostPort {
    type Err = DoctorError;

    /// Parses as an IMAP endpoint; use [`HostPort::parse`] for SMTP.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        HostPort::parse(text, Protocol::Imap)
    }
}

fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':');
        return (!inside.is_empty()).then_some((&text[..inside.len() + 2], port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (text, None),
    };
    (!host.is_empty()).then_some((host, port))
}

fn default_security(protocol: Protocol, port: u16) -> Security {
    match (protocol, port) {
        (Protocol::Imap, 143) | (Protocol::Smtp, 587 | 25) => Security::StartTls,
        (Protocol::Imap, _) | (Protocol::Smtp, 465) => Security::Tls,
        (Protocol::Smtp, _) => Security::StartTls,
    }
}

/// The steps gathered so far.
#[derive(Default)]
pub(crate) struct Steps(Vec<Step>);

impl Steps {
    pub fn push(&mut self, step: Step) {
        self.0.push(step);
    }

    /// Marks those of `names` that have no step yet as not run because of `reason`.
    pub fn skip_unrecorded(&mut self, names: &[StepName], reason: &str) {
        let missing: Vec<StepName> = names
            .iter()
            .copied()
            .filter(|name| self.0.iter().all(|step| step.name != *name))
            .collect();
        self.skip(&missing, reason);
    }

    /// Marks `names` as not run because of `reason`.
    pub fn skip(&mut self, names: &[StepName], reason: &str) {
        for name in names {
            self.0.push(Step::skipped(*name, reason));
        }
    }
}

/// Diagnoses a stored account: IMAP, its token, its login, then SMTP up to a dry send.
pub async fn diagnose_account(account: &Account, deps: &DoctorDeps) -> Report {
    let started_at = Utc::now();
    let started = Instant::now();
    let options = &deps.options;
    let imap_server = HostPort::endpoint(&account.imap);
    let smtp_server = HostPort::endpoint(&account.smtp);
    let mut steps = Steps::default();

    let imap_reachable = imap::connectivity(
        &mut steps,
        &imap_server,
        ca_path(&account.imap),
        Some(account),
        options,
    )
    .await;
    let refresh_guard = match &deps.tokens {
        Some(tokens) => Some(tokens.refresh_lock(&account.id).await),
        None => None,
    };
    // Read before the token step: its refresh may renew a grant that was about to die unused.
    let grant_before = expiry::grant_before(account, &deps.ctx).await;
    let token = token::check(&mut steps, account, &deps.ctx, options).await;
    drop(refresh_guard);
    expiry::check(
        &mut steps,
        account,
        &deps.ctx,
        grant_before,
        &options.forecast,
    )
    .await;
    let login = credentials::for_account(account, &deps.ctx, &token).await;
    imap::login(&mut steps, imap_reachable, &login, options).await;
    smtp::check(
        &mut steps,
        &smtp_server,
        ca_path(&account.smtp),
        Some(&login),
        Some(&account.email),
        options,
    )
    .await;

    let target = Target {
        account_id: Some(account.id.to_string()),
        email: Some(account.email.clone()),
        imap: Some(imap_server.to_string()),
        smtp: Some(smtp_server.to_string()),
    };
    Report::new(target, started_at, started.elapsed(), steps.0)
}

/// Diagnoses servers before an account exists: DNS, TCP, TLS and capabilities (IMAP), DNS, TCP, EHLO
/// and TLS (SMTP). `ca_file` is trusted instead of the webpki roots, as an account's would be.
pub async fn diagnose_endpoints(
    imap: Option<HostPort>,
    smtp: Option<HostPort>,
    email: Option<&str>,
    ca_file: Option<&Path>,
    options: &DoctorOptions,
) -> Report {
    let started_at = Utc::now();
    let started = Instant::now();
    let mut steps = Steps::default();
    if let Some(server) = &imap {
        imap::connectivity(&mut steps, server, ca_file, None, options).await;
    }
    if let Some(server) = &smtp {
        smtp::check(&mut steps, server, ca_file, None, email, options).await;
    }
    let target = Target {
        account_id: None,
        email: email.map(str::to_owned),
        imap: imap.as_ref().map(ToString::to_string),
        smtp: smtp.as_ref().map(ToString::to_string),
    };
    Report::new(target, started_at, started.elapsed(), steps.0)
}

fn ca_path(endpoint: &postern_store::Endpoint) -> Option<&Path> {
    endpoint.ca_file.as_deref().map(Path::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_ports_and_securities_from_convention() {
        let imap = HostPort::parse("imap.gmail.com", Protocol::Imap).unwrap();
        assert_eq!(imap, HostPort::new("imap.gmail.com", 993, Security::Tls));
        let plain = HostPort::parse("mail.example.com:143", Protocol::Imap).unwrap();
        assert_eq!(plain.security, Security::StartTls);
        let submission = HostPort::parse("smtp.office365.com:587", Protocol::Smtp).unwrap();
        assert_eq!(submission.security, Security::StartTls);
        let smtps = HostPort::parse("smtp.gmail.com:465", Protocol::Smtp).unwrap();
        assert_eq!(smtps.security, Security::Tls);
        let v6 = HostPort::parse("[::1]:1993", Protocol::Imap).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("[::1]", 1993));
        assert!(v6.is_loopback());
        assert_eq!(imap.to_string(), "imap.gmail.com:993 (tls)");
    }

    #[test]
    fn bad_endpoints_are_refused_with_the_reason() {
        for bad in ["", ":993", "host:0", "host:99999", "host:imap", "[]:993"] {
            let error = HostPort::parse(bad, Protocol::Imap).unwrap_err();
            assert!(
                error.to_string().contains("invalid endpoint"),
                "{bad}: {error}"
            );
        }
    }
}
