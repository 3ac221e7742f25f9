//! What an IMAP server says it can do, parsed once per connection stage.
//!
//! Purpose: a small value type over the server's capability list, with named questions for what
//! Postern's logic depends on (STARTTLS and LOGINDISABLED before login; IDLE, CONDSTORE, QRESYNC, ...
//! after), and the offered SASL mechanisms.
//!
//! Non-goal: asking the server. The connection code decides when a list is current (the greeting's,
//! after STARTTLS, after login) and builds a new value each time; this type never changes.
//!
//! Key decision: names are kept upper-cased (capability names are case-insensitive, RFC 3501 section
//! 7.2.1) in a sorted set, so comparisons and `Debug` output are stable; `AUTH=` entries are split out
//! in the order the server sent them.

use std::collections::BTreeSet;

use async_imap::imap_proto;
use postern_auth::sasl::Mechanism;

const AUTH_PREFIX: &str = "AUTH=";

/// A server's capability list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Every capability but the `AUTH=` ones, upper-case.
    names: BTreeSet<String>,
    /// The `AUTH=` mechanisms, upper-case, in the server's order, without duplicates.
    sasl: Vec<String>,
}

impl Capabilities {
    /// Builds the list from capability names as the server sent them (`"IMAP4rev1"`, `"AUTH=PLAIN"`).
    pub fn from_names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut capabilities = Capabilities::default();
        for name in names {
            capabilities.insert(name.as_ref());
        }
        capabilities
    }

    fn insert(&mut self, name: &str) {
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            return;
        }
        match name.strip_prefix(AUTH_PREFIX) {
            Some(mechanism) if !self.sasl.iter().any(|known| known == mechanism) => {
                self.sasl.push(mechanism.to_owned());
            }
            Some(_) => {}
            None => {
                self.names.insert(name);
            }
        }
    }

    /// Whether the server lists `name` (case-insensitive); `"AUTH=XOAUTH2"` asks about a mechanism.
    pub fn has(&self, name: &str) -> bool {
        let name = name.to_ascii_uppercase();
        match name.strip_prefix(AUTH_PREFIX) {
            Some(mechanism) => self.sasl.iter().any(|known| known == mechanism),
            None => self.names.contains(&name),
        }
    }

    /// The SASL mechanisms offered (`AUTH=` values), upper-case, in the server's order.
    pub fn sasl_mechanisms(&self) -> &[String] {
        &self.sasl
    }

    /// Whether the server offers `mechanism` for `AUTHENTICATE`.
    pub fn offers(&self, mechanism: Mechanism) -> bool {
        self.sasl.iter().any(|known| known == mechanism.as_str())
    }

    /// Every capability but the `AUTH=` ones, upper-case and sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// `STARTTLS`: the plain connection can be upgraded to TLS.
    pub fn starttls(&self) -> bool {
        self.has("STARTTLS")
    }

    /// `LOGINDISABLED`: the `LOGIN` command must not be used (RFC 3501 section 6.2.3).
    pub fn login_disabled(&self) -> bool {
        self.has("LOGINDISABLED")
    }

    /// `IDLE` (RFC 2177): the server pushes mailbox changes.
    pub fn idle(&self) -> bool {
        self.has("IDLE")
    }

    /// `CONDSTORE` (RFC 7162), which `QRESYNC` implies: MODSEQ values for cheap change detection.
    pub fn condstore(&self) -> bool {
        self.has("CONDSTORE") || self.qresync()
    }

    /// `QRESYNC` (RFC 7162): expunged UIDs reported on re-select (`VANISHED`).
    pub fn qresync(&self) -> bool {
        self.has("QRESYNC")
    }

    /// `ENABLE` (RFC 5161), needed to switch on QRESYNC.
    pub fn enable(&self) -> bool {
        self.has("ENABLE")
    }

    /// `UIDPLUS` (RFC 4315): APPEND and COPY report the new UIDs.
    pub fn uidplus(&self) -> bool {
        self.has("UIDPLUS")
    }

    /// `MOVE` (RFC 6851): atomic move between mailboxes.
    pub fn move_command(&self) -> bool {
        self.has("MOVE")
    }

    /// `SPECIAL-USE` (RFC 6154): LIST marks Sent, Trash, Drafts, ...
    pub fn special_use(&self) -> bool {
        self.has("SPECIAL-USE")
    }

    /// `COMPRESS=DEFLATE` (RFC 4978).
    pub fn compress_deflate(&self) -> bool {
        self.has("COMPRESS=DEFLATE")
    }

    /// `LITERAL+` (RFC 7888): literals without a round trip.
    pub fn literal_plus(&self) -> bool {
        self.has("LITERAL+")
    }

    /// `SASL-IR` (RFC 4959): the first SASL message can go with the command.
    pub fn sasl_ir(&self) -> bool {
        self.has("SASL-IR")
    }

    /// `IMAP4rev2` (RFC 9051).
    pub fn imap4rev2(&self) -> bool {
        self.has("IMAP4REV2")
    }
}

impl From<&[imap_proto::Capability<'_>]> for Capabilities {
    fn from(list: &[imap_proto::Capability<'_>]) -> Self {
        let mut capabilities = Capabilities::default();
        for capability in list {
            match capability {
                imap_proto::Capability::Imap4rev1 => capabilities.insert("IMAP4REV1"),
                imap_proto::Capability::Auth(mechanism) => {
                    capabilities.insert(&format!("{AUTH_PREFIX}{mechanism}"));
                }
                imap_proto::Capability::Atom(name) => capabilities.insert(name),
            }
        }
        capabilities
    }
}

impl From<&async_imap::types::Capabilities> for Capabilities {
    fn from(list: &async_imap::types::Capabilities) -> Self {
        use async_imap::types::Capability;
        let mut capabilities = Capabilities::default();
        for capability in list.iter() {
            match capability {
                Capability::Imap4rev1 => capabilities.insert("IMAP4REV1"),
                Capability::Auth(mechanism) => {
                    capabilities.insert(&format!("{AUTH_PREFIX}{mechanism}"));
                }
                Capability::Atom(name) => capabilities.insert(name),
            }
        }
        capabilities
    }
}

#[cfg(test)]
#[path = "capabilities_tests.rs"]
mod tests;
