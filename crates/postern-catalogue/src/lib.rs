//! The known-error catalogue: what a provider's or server's answer means, in plain words, and what
//! fixes it.
//!
//! Purpose: one table ([`entries`]) from an observed response — an IMAP tagged `NO`/`BAD` text and its
//! RFC 5530 response code, an SMTP reply code with its enhanced status code and text, an OAuth token
//! endpoint's `error` / description / Microsoft `AADSTS` codes, the decoded SASL error JSON, or a
//! condition the client saw itself (connection refused, untrusted certificate, ...) — to an [`Entry`]:
//! an id, the provider it is known from, the cause, the fix, and whether it passes by itself
//! ([`Entry::transient`]). [`explain`] looks an [`Observation`] up; [`explain_oauth`],
//! [`explain_imap`], [`explain_smtp`], [`explain_sasl`] and [`explain_condition`] do it from plain
//! strings, and [`Entry::annotate`] appends the advice to a `last_error` text.
//!
//! ```
//! let entry = postern_catalogue::explain_oauth(
//!     400,
//!     Some("invalid_grant"),
//!     Some("Token has been expired or revoked."),
//!     &[],
//! );
//! assert_eq!(entry.map(|entry| entry.id), Some("google.invalid_grant"));
//! ```
//!
//! Non-goal: deciding what to do. The catalogue explains; the doctor reports, the token manager and the
//! supervisors keep their own policies (they may use [`Entry::transient`] as a hint). Nor does it know
//! any other crate's error types: adapters live next to those types (`postern-auth` for OAuth errors,
//! `postern-doctor` for IMAP errors), so this crate depends on nothing but serde and every layer that
//! writes a `last_error` can use it without a dependency cycle.
//!
//! Key decision: the knowledge is data (`entries.rs`, a static table read top to bottom, first match
//! wins, specific entries above generic ones), not `if`s spread over the code base, so an entry is added
//! in one place and every caller (doctor, account `last_error`, outbox) explains it the same way. Every
//! entry has a test that feeds it a recorded response (`tests.rs`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod entries;

use serde::{Deserialize, Serialize};

/// Where an entry's response comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Provider {
    /// Gmail and Google Workspace.
    Google,
    /// Outlook.com, Microsoft 365 and Microsoft Entra ID.
    Microsoft,
    /// Yahoo and AOL.
    Yahoo,
    /// Dovecot (self-hosted servers and Postern's test rig).
    Dovecot,
    /// Any server or provider: a standard response code or a client-side condition.
    Any,
}

impl Provider {
    /// The lower-case name, as in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Microsoft => "microsoft",
            Provider::Yahoo => "yahoo",
            Provider::Dovecot => "dovecot",
            Provider::Any => "any",
        }
    }
}

/// Something the client itself noticed, rather than a server's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Condition {
    /// The host name does not resolve.
    HostNotFound,
    /// Nothing listens on the port (TCP RST).
    ConnectionRefused,
    /// The TCP connection did not open in time (a firewall dropping packets, a wrong address).
    ConnectTimeout,
    /// The network or host is unreachable from here.
    NetworkUnreachable,
    /// The certificate chain does not lead to a trusted root.
    UntrustedCertificate,
    /// The certificate is not valid for the host name connected to.
    HostnameMismatch,
    /// The certificate has expired.
    CertificateExpired,
    /// The certificate is not valid yet.
    CertificateNotYetValid,
    /// The TLS handshake failed for a reason other than the certificate.
    TlsHandshakeFailed,
    /// A TLS handshake was answered in plain text: the port expects STARTTLS or no TLS.
    TlsOnPlainPort,
    /// The server sent no greeting: usually a port that expects TLS from the first byte.
    NoGreeting,
    /// STARTTLS was asked for and the server does not offer it.
    StartTlsMissing,
    /// The server does not offer the SASL mechanism the account logs in with.
    MechanismNotOffered,
    /// The grant holds no refresh token, so the access token cannot be renewed.
    NoRefreshToken,
    /// The provider's token endpoint could not be reached (DNS, connection, timeout).
    TokenEndpointUnreachable,
}

/// A response or condition to look up. Strings are the server's or provider's own text.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Observation<'a> {
    /// An IMAP tagged `NO`/`BAD` or a `BYE`.
    Imap {
        /// The RFC 5530 response code without brackets (`AUTHENTICATIONFAILED`), if any.
        code: Option<&'a str>,
        /// The server's text (it may still start with the bracketed code).
        text: &'a str,
    },
    /// An SMTP reply.
    Smtp {
        /// The three-digit reply code.
        code: u16,
        /// The RFC 3463 enhanced status code (`5.7.139`), if the reply carried one.
        enhanced: Option<&'a str>,
        /// The reply text (all lines).
        text: &'a str,
    },
    /// A token endpoint's refusal.
    OAuth {
        /// The HTTP status.
        status: u16,
        /// RFC 6749 `error` (`invalid_grant`), if the body had one.
        error: Option<&'a str>,
        /// `error_description`, if any.
        description: Option<&'a str>,
        /// Microsoft's `AADSTS` codes, from `error_codes` and the description.
        aadsts: &'a [u32],
    },
    /// The decoded JSON of an OAuth SASL error challenge (IMAP `+ <b64>`, SMTP `334 <b64>`).
    SaslChallenge {
        /// `status`: `"401"`, `"400"`, `"invalid_token"`, `"insufficient_scope"`, ...
        status: &'a str,
        /// `scope`, if the server named one.
        scope: Option<&'a str>,
        /// Whether the token was obtained from the provider moments before (so "expired" is unlikely).
        token_just_refreshed: bool,
    },
    /// Something the client noticed itself.
    Condition(Condition),
}

impl<'a> Observation<'a> {
    /// An SMTP reply whose text may begin with an enhanced status code (`5.7.139 Authentication ...`).
    pub fn smtp_reply(code: u16, text: &'a str) -> Self {
        let text = text.trim();
        let (enhanced, rest) = match text.split_once(' ') {
            Some((first, rest)) if is_enhanced_code(first) => (Some(first), rest),
            _ if is_enhanced_code(text) => (Some(text), ""),
            _ => (None, text),
        };
        Observation::Smtp {
            code,
            enhanced,
            text: rest,
        }
    }

    /// The decoded SASL error JSON of a failed OAuth login, from its `status` and `scope` members.
    pub fn sasl(status: &'a str, scope: Option<&'a str>, token_just_refreshed: bool) -> Self {
        Observation::SaslChallenge {
            status,
            scope,
            token_just_refreshed,
        }
    }
}

/// `x.y.z` with x in 2, 4, 5 (RFC 3463).
fn is_enhanced_code(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|part| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()))
}

/// How an entry recognises an observation. Text fragments are matched ASCII case-insensitively and
/// must all occur.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Matcher {
    /// An IMAP refusal.
    Imap {
        /// The response code it must carry, if any.
        code: Option<&'static str>,
        /// Fragments of its text.
        text: &'static [&'static str],
    },
    /// An SMTP reply.
    Smtp {
        /// The reply code, if it matters.
        code: Option<u16>,
        /// The enhanced status code, if it matters.
        enhanced: Option<&'static str>,
        /// Fragments of its text.
        text: &'static [&'static str],
    },
    /// A token endpoint's refusal.
    OAuth {
        /// The `error` code, if it matters.
        error: Option<&'static str>,
        /// An `AADSTS` code it must carry, if any.
        aadsts: Option<u32>,
        /// The lowest HTTP status it applies to (`Some(500)`: server failures), if it matters.
        min_status: Option<u16>,
        /// Fragments of the description.
        text: &'static [&'static str],
    },
    /// A SASL error challenge.
    Sasl {
        /// The `status` values it applies to (compared case-insensitively).
        status: &'static [&'static str],
        /// Whether a `scope` must be present (`Some(true)`), absent, or does not matter.
        scope: Option<bool>,
        /// Whether the token must have been just refreshed, not, or does not matter.
        token_just_refreshed: Option<bool>,
    },
    /// A client-side condition.
    Condition(Condition),
}

/// One known error: what it means and what to do.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Entry {
    /// A stable id, `<provider or area>.<name>`, e.g. `google.invalid_grant`.
    pub id: &'static str,
    /// Where the response comes from.
    pub provider: Provider,
    /// How it is recognised.
    #[serde(skip)]
    pub matcher: Matcher,
    /// The cause, in plain words.
    pub cause: &'static str,
    /// What fixes it.
    pub fix: &'static str,
    /// Whether it passes by itself (retry later) rather than needing someone to change something.
    pub transient: bool,
    /// Where the provider documents it, if anywhere.
    pub docs: Option<&'static str>,
}

impl Entry {
    /// `message` followed by this entry's cause and fix and its id, for a `last_error` that tells a
    /// person what happened and what to do: `"<message> — <cause> Fix: <fix> [<id>]"`.
    pub fn annotate(&self, message: &str) -> String {
        format!(
            "{} — {} Fix: {} [{}]",
            message.trim_end(),
            self.cause,
            self.fix,
            self.id
        )
    }
}

/// `message`, annotated with `entry`'s advice when there is one (see [`Entry::annotate`]).
pub fn annotate(message: &str, entry: Option<&Entry>) -> String {
    match entry {
        Some(entry) => entry.annotate(message),
        None => message.to_owned(),
    }
}

/// Every entry, in matching order.
pub fn entries() -> &'static [Entry] {
    entries::ENTRIES
}

/// The entry with this id.
pub fn by_id(id: &str) -> Option<&'static Entry> {
    entries::ENTRIES.iter().find(|entry| entry.id == id)
}

/// The first entry that recognises `observation`, if any.
pub fn explain(observation: &Observation<'_>) -> Option<&'static Entry> {
    entries::ENTRIES
        .iter()
        .find(|entry| matches(&entry.matcher, observation))
}

/// Explains a token endpoint's refusal: its HTTP status, RFC 6749 `error` and `error_description`,
/// and Microsoft's `AADSTS` codes (from `error_codes` or the description).
pub fn explain_oauth(
    status: u16,
    error: Option<&str>,
    description: Option<&str>,
    aadsts: &[u32],
) -> Option<&'static Entry> {
    explain(&Observation::OAuth {
        status,
        error,
        description,
        aadsts,
    })
}

/// Explains an IMAP refusal: its RFC 5530 response code (without brackets), if the parser split one
/// out, and the server's text.
pub fn explain_imap(code: Option<&str>, text: &str) -> Option<&'static Entry> {
    explain(&Observation::Imap { code, text })
}

/// Explains an SMTP reply: its code and text (which may start with an enhanced status code).
pub fn explain_smtp(code: u16, text: &str) -> Option<&'static Entry> {
    explain(&Observation::smtp_reply(code, text))
}

/// Explains a SASL error challenge from its `status` and `scope`; `token_just_refreshed` says whether
/// the token was obtained moments before the login.
pub fn explain_sasl(
    status: &str,
    scope: Option<&str>,
    token_just_refreshed: bool,
) -> Option<&'static Entry> {
    explain(&Observation::sasl(status, scope, token_just_refreshed))
}

/// Explains a condition the client noticed itself.
pub fn explain_condition(condition: Condition) -> Option<&'static Entry> {
    explain(&Observation::Condition(condition))
}

/// The condition a failed TCP connect means, if it is one the catalogue knows.
pub fn io_condition(kind: std::io::ErrorKind) -> Option<Condition> {
    use std::io::ErrorKind;
    match kind {
        ErrorKind::ConnectionRefused => Some(Condition::ConnectionRefused),
        ErrorKind::TimedOut => Some(Condition::ConnectTimeout),
        ErrorKind::NetworkUnreachable | ErrorKind::HostUnreachable => {
            Some(Condition::NetworkUnreachable)
        }
        _ => None,
    }
}

fn matches(matcher: &Matcher, observation: &Observation<'_>) -> bool {
    match (matcher, observation) {
        (
            Matcher::Imap { code, text },
            Observation::Imap {
                code: seen,
                text: said,
            },
        ) => code_matches(*code, *seen, said) && contains_all(said, text),
        (
            Matcher::Smtp {
                code,
                enhanced,
                text,
            },
            Observation::Smtp {
                code: seen,
                enhanced: seen_enhanced,
                text: said,
            },
        ) => {
            code.is_none_or(|code| code == *seen)
                && enhanced.is_none_or(|wanted| *seen_enhanced == Some(wanted))
                && contains_all(said, text)
        }
        (
            Matcher::OAuth {
                error,
                aadsts,
                min_status,
                text,
            },
            Observation::OAuth {
                status,
                error: seen_error,
                description,
                aadsts: seen_codes,
            },
        ) => {
            error.is_none_or(|wanted| *seen_error == Some(wanted))
                && aadsts.is_none_or(|wanted| seen_codes.contains(&wanted))
                && min_status.is_none_or(|lowest| *status >= lowest)
                && contains_all(description.unwrap_or_default(), text)
        }
        (
            Matcher::Sasl {
                status,
                scope,
                token_just_refreshed,
            },
            Observation::SaslChallenge {
                status: seen,
                scope: seen_scope,
                token_just_refreshed: fresh,
            },
        ) => {
            status
                .iter()
                .any(|wanted| wanted.eq_ignore_ascii_case(seen.trim()))
                && scope.is_none_or(|present| present == seen_scope.is_some())
                && token_just_refreshed.is_none_or(|wanted| wanted == *fresh)
        }
        (Matcher::Condition(wanted), Observation::Condition(seen)) => wanted == seen,
        _ => false,
    }
}

/// The code matches when the server sent it as a response code, or (servers and parsers differ) when
/// the text starts with it in brackets.
fn code_matches(wanted: Option<&str>, seen: Option<&str>, text: &str) -> bool {
    let Some(wanted) = wanted else {
        return true;
    };
    seen.is_some_and(|seen| seen.eq_ignore_ascii_case(wanted))
        || text
            .trim_start()
            .strip_prefix('[')
            .and_then(|rest| rest.get(..wanted.len()))
            .is_some_and(|head| head.eq_ignore_ascii_case(wanted))
}

fn contains_all(haystack: &str, fragments: &[&str]) -> bool {
    let haystack = haystack.to_ascii_lowercase();
    fragments
        .iter()
        .all(|fragment| haystack.contains(&fragment.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests;
