//! What the doctor found: a [`Report`] of timed [`Step`]s, for people ([`Report::render_text`]) and
//! machines (serde JSON).
//!
//! Non-goal: running checks; `doctor` fills the report. Key decision: a step carries the evidence as
//! the server said it and, when the catalogue knows the answer, the [`KnownError`] with its cause and
//! fix, so the text and the JSON tell the same story. Nothing secret is ever put into a step: the
//! doctor only writes server replies, facts it measured, and catalogue text.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::{Entry, Provider};

/// The verdict of one step, ordered from best to worst for [`Report::overall`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not run: an earlier step failed, or it does not apply (e.g. no token for a password account).
    Skip,
    /// Works.
    Pass,
    /// Works now, but something needs attention (a certificate or a grant expiring soon, no IDLE, a
    /// refresh that failed for a moment).
    Warn,
    /// Does not work.
    Fail,
}

impl Status {
    /// `PASS`, `WARN`, `FAIL`, `SKIP`.
    pub const fn label(self) -> &'static str {
        match self {
            Status::Skip => "SKIP",
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// The steps, in the order the doctor runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StepName {
    /// The IMAP host name resolves.
    #[serde(rename = "imap.dns")]
    ImapDns,
    /// A TCP connection to the IMAP port opens.
    #[serde(rename = "imap.tcp")]
    ImapTcp,
    /// TLS (implicit or after STARTTLS): protocol, chain trusted, host name, days to expiry.
    #[serde(rename = "imap.tls")]
    ImapTls,
    /// Greeting and CAPABILITY: IDLE, CONDSTORE, QRESYNC, SASL mechanisms, LOGINDISABLED.
    #[serde(rename = "imap.capabilities")]
    ImapCapabilities,
    /// The OAuth token: present, expiry, and whether refreshing works now.
    #[serde(rename = "token")]
    Token,
    /// The forecast: whether the grant (Google "Testing" apps: 7 days after consent; Microsoft: 90
    /// days unused) or the app's client secret is going to die within the warning horizon.
    #[serde(rename = "token.expiry")]
    TokenExpiry,
    /// The IMAP login with the account's mechanism.
    #[serde(rename = "imap.login")]
    ImapLogin,
    /// LIST and SELECT INBOX, and the extensions sync relies on.
    #[serde(rename = "imap.mailbox")]
    ImapMailbox,
    /// The SMTP host name resolves.
    #[serde(rename = "smtp.dns")]
    SmtpDns,
    /// A TCP connection to the SMTP port opens.
    #[serde(rename = "smtp.tcp")]
    SmtpTcp,
    /// The greeting and EHLO: extensions, AUTH mechanisms, STARTTLS offered.
    #[serde(rename = "smtp.ehlo")]
    SmtpEhlo,
    /// TLS (implicit or STARTTLS): protocol, chain trusted, host name, days to expiry.
    #[serde(rename = "smtp.tls")]
    SmtpTls,
    /// SMTP AUTH with the account's mechanism.
    #[serde(rename = "smtp.auth")]
    SmtpAuth,
    /// MAIL FROM / RCPT TO the account itself, then RSET: nothing is sent.
    #[serde(rename = "smtp.send_path")]
    SmtpSendPath,
}

impl StepName {
    /// The name as in JSON: `imap.tls`, `token`, `smtp.send_path`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            StepName::ImapDns => "imap.dns",
            StepName::ImapTcp => "imap.tcp",
            StepName::ImapTls => "imap.tls",
            StepName::ImapCapabilities => "imap.capabilities",
            StepName::Token => "token",
            StepName::TokenExpiry => "token.expiry",
            StepName::ImapLogin => "imap.login",
            StepName::ImapMailbox => "imap.mailbox",
            StepName::SmtpDns => "smtp.dns",
            StepName::SmtpTcp => "smtp.tcp",
            StepName::SmtpEhlo => "smtp.ehlo",
            StepName::SmtpTls => "smtp.tls",
            StepName::SmtpAuth => "smtp.auth",
            StepName::SmtpSendPath => "smtp.send_path",
        }
    }
}

/// A catalogue entry as it appears in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownError {
    /// The catalogue id, e.g. `tls.untrusted_certificate`.
    pub id: String,
    /// Where the response comes from.
    pub provider: Provider,
    /// The cause in plain words.
    pub cause: String,
    /// Whether it passes by itself.
    pub transient: bool,
    /// The provider's documentation, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docs: Option<String>,
}

impl From<&Entry> for KnownError {
    fn from(entry: &Entry) -> Self {
        KnownError {
            id: entry.id.to_owned(),
            provider: entry.provider,
            cause: entry.cause.to_owned(),
            transient: entry.transient,
            docs: entry.docs.map(str::to_owned),
        }
    }
}

/// One check, timed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Which check.
    pub name: StepName,
    /// Its verdict.
    pub status: Status,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// One line: what was found.
    pub summary: String,
    /// What was seen: server replies, certificate facts, capabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// What to do, when something needs doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The catalogue's explanation, when it knows the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_error: Option<KnownError>,
}

impl Step {
    /// A step with a verdict and a one-line summary.
    pub fn new(
        name: StepName,
        status: Status,
        duration: Duration,
        summary: impl Into<String>,
    ) -> Self {
        Step {
            name,
            status,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            summary: summary.into(),
            evidence: Vec::new(),
            fix: None,
            known_error: None,
        }
    }

    /// A step that did not run, and why.
    pub fn skipped(name: StepName, reason: impl Into<String>) -> Self {
        Step::new(name, Status::Skip, Duration::ZERO, reason)
    }

    /// Adds a line of evidence.
    #[must_use]
    pub fn with_evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }

    /// Adds lines of evidence.
    #[must_use]
    pub fn with_evidence_lines(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.evidence.extend(lines);
        self
    }

    /// Sets the fix (replacing the catalogue's, if any).
    #[must_use]
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// Attaches the catalogue's explanation and its fix (unless a fix is already set), when there is
    /// one.
    #[must_use]
    pub fn explained_by(mut self, entry: Option<&Entry>) -> Self {
        if let Some(entry) = entry {
            if self.fix.is_none() {
                self.fix = Some(entry.fix.to_owned());
            }
            self.known_error = Some(KnownError::from(entry));
        }
        self
    }
}

/// What the doctor looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The account's id, for an account diagnosis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The mailbox address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `host:port (security)` of the IMAP server, when checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap: Option<String>,
    /// `host:port (security)` of the SMTP server, when checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<String>,
}

/// The whole diagnosis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// What was diagnosed.
    pub target: Target,
    /// When the diagnosis started.
    pub started_at: DateTime<Utc>,
    /// How long it took in all, in milliseconds.
    pub duration_ms: u64,
    /// The worst status of any step (`pass` when every step passed or was skipped).
    pub overall: Status,
    /// The steps, in the order they ran.
    pub steps: Vec<Step>,
}

impl Report {
    /// A report of `steps`, its overall status computed.
    pub fn new(
        target: Target,
        started_at: DateTime<Utc>,
        duration: Duration,
        steps: Vec<Step>,
    ) -> Self {
        let overall = steps
            .iter()
            .map(|step| step.status)
            .filter(|status| *status != Status::Skip)
            .max()
            .unwrap_or(Status::Pass);
        Report {
            target,
            started_at,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            overall,
            steps,
        }
    }

    /// Whether any step failed: the CLI's exit code.
    pub fn has_failures(&self) -> bool {
        self.overall == Status::Fail
    }

    /// The step of this name, if it ran (or was skipped).
    pub fn step(&self, name: StepName) -> Option<&Step> {
        self.steps.iter().find(|step| step.name == name)
    }

    /// The first failed step, if any: usually the one to fix first.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps.iter().find(|step| step.status == Status::Fail)
    }

    /// The report for a person: one line per step, then evidence, cause and fix under the steps that
    /// need them.
    pub fn render_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "Postern doctor: {}", self.target.describe());
        let width = self
            .steps
            .iter()
            .map(|step| step.name.as_str().len())
            .max()
            .unwrap_or(0);
        for step in &self.steps {
            render_step(&mut text, step, width);
        }
        let count = |status| self.steps.iter().filter(|s| s.status == status).count();
        let _ = writeln!(
            text,
            "Overall: {} ({} passed, {} warnings, {} failed, {} skipped) in {} ms",
            self.overall.label(),
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip),
            self.duration_ms
        );
        text
    }
}

impl Target {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(email) = &self.email {
            parts.push(email.clone());
        }
        if let Some(id) = &self.account_id {
            parts.push(format!("account {id}"));
        }
        if let Some(imap) = &self.imap {
            parts.push(format!("IMAP {imap}"));
        }
        if let Some(smtp) = &self.smtp {
            parts.push(format!("SMTP {smtp}"));
        }
        if parts.is_empty() {
            "nothing to check".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

fn render_step(text: &mut String, step: &Step, width: usize) {
    let duration = match step.status {
        Status::Skip => "-".to_owned(),
        _ => format!("{} ms", step.duration_ms),
    };
    let _ = writeln!(
        text,
        "  {}  {:<width$}  {:>7}  {}",
        step.status.label(),
        step.name.as_str(),
        duration,
        step.summary
    );
    let indent = " ".repeat(8);
    for line in &step.evidence {
        let _ = writeln!(text, "{indent}  {line}");
    }
    if let Some(known) = &step.known_error {
        let _ = writeln!(text, "{indent}cause: {}", known.cause);
        let transient = if known.transient {
            "passes by itself"
        } else {
            "needs a change"
        };
        let _ = writeln!(text, "{indent}known error: {} ({transient})", known.id);
        if let Some(docs) = &known.docs {
            let _ = writeln!(text, "{indent}docs: {docs}");
        }
    }
    if let Some(fix) = &step.fix {
        let _ = writeln!(text, "{indent}fix: {fix}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: StepName, status: Status) -> Step {
        Step::new(name, status, Duration::from_millis(3), "something")
    }

    fn report(steps: Vec<Step>) -> Report {
        Report::new(Target::default(), Utc::now(), Duration::ZERO, steps)
    }

    #[test]
    fn overall_is_the_worst_step_and_skips_do_not_count() {
        assert_eq!(report(vec![]).overall, Status::Pass);
        let all_skipped = report(vec![Step::skipped(StepName::Token, "password account")]);
        assert_eq!(all_skipped.overall, Status::Pass);
        let warned = report(vec![
            step(StepName::ImapDns, Status::Pass),
            step(StepName::ImapTls, Status::Warn),
        ]);
        assert_eq!(warned.overall, Status::Warn);
        assert!(!warned.has_failures());
        let failed = report(vec![
            step(StepName::ImapTls, Status::Warn),
            step(StepName::ImapLogin, Status::Fail),
            Step::skipped(StepName::ImapMailbox, "login failed"),
        ]);
        assert_eq!(failed.overall, Status::Fail);
        assert!(failed.has_failures());
        assert_eq!(failed.first_failure().unwrap().name, StepName::ImapLogin);
    }

    #[test]
    fn json_uses_the_dotted_step_names_and_lowercase_statuses() {
        let entry = crate::catalogue::by_id("tls.untrusted_certificate").unwrap();
        let failed = report(vec![
            step(StepName::ImapTls, Status::Fail).explained_by(Some(entry)),
        ]);
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json["overall"], "fail");
        assert_eq!(json["steps"][0]["name"], "imap.tls");
        assert_eq!(
            json["steps"][0]["known_error"]["id"],
            "tls.untrusted_certificate"
        );
        assert_eq!(json["steps"][0]["fix"], entry.fix);
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back, failed);
    }

    #[test]
    fn text_shows_each_step_with_cause_and_fix_under_failures() {
        let entry = crate::catalogue::by_id("net.connection_refused").unwrap();
        let text = report(vec![
            step(StepName::ImapDns, Status::Pass),
            step(StepName::ImapTcp, Status::Fail)
                .with_evidence("127.0.0.1:1: Connection refused")
                .explained_by(Some(entry)),
            Step::skipped(StepName::ImapTls, "no connection"),
        ])
        .render_text();
        assert!(text.contains("PASS  imap.dns"), "{text}");
        assert!(text.contains("FAIL  imap.tcp"), "{text}");
        assert!(text.contains("127.0.0.1:1: Connection refused"), "{text}");
        assert!(text.contains(&format!("fix: {}", entry.fix)), "{text}");
        assert!(
            text.contains("known error: net.connection_refused"),
            "{text}"
        );
        assert!(text.contains("SKIP  imap.tls"), "{text}");
        assert!(text.contains("Overall: FAIL (1 passed, 0 warnings, 1 failed, 1 skipped)"));
    }

    #[test]
    fn a_set_fix_is_kept_over_the_catalogue_one() {
        let entry = crate::catalogue::by_id("net.connection_refused").unwrap();
        let step = step(StepName::ImapTcp, Status::Fail)
            .with_fix("use port 993")
            .explained_by(Some(entry));
        assert_eq!(step.fix.as_deref(), Some("use port 993"));
        assert_eq!(step.known_error.unwrap().id, "net.connection_refused");
    }
}
