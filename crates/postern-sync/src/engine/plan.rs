//! What a pass must do for one mailbox, decided from the stored cursor and the server's status.
//!
//! Purpose: pure functions, tested without a socket: [`plan_pass`] compares a stored
//! [`SyncState`] with a [`ServerStatus`] (UIDVALIDITY, UIDNEXT, EXISTS, HIGHESTMODSEQ) and says
//! whether the mailbox is up to date, must be reset, or which steps it needs;
//! [`initial_batches`], [`new_mail_batches`] and [`flag_changes`] split and diff the rest.
//! Non-goal: sending anything; `run` executes the plan.
//! Key decisions:
//! - Nothing is fetched for a mailbox whose UIDNEXT, EXISTS and HIGHESTMODSEQ did not move:
//!   without a new UID no message can appear, and an expunge lowers EXISTS unless a new message
//!   (a new UID) made up for it. Flag changes are only visible through HIGHESTMODSEQ, so a server
//!   without CONDSTORE gets a full flag comparison of the stored range on every pass.
//! - A server whose UIDNEXT went down broke RFC 3501; it is logged and no new mail is assumed
//!   (chatmail/core does the same), rather than refetching or dropping anything.

use std::ops::RangeInclusive;

use postern_store::SyncState;

use crate::capabilities::Capabilities;
use crate::engine::SyncWindow;

/// How much the server can tell about changes, from least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strategy {
    /// Neither: flags compared in full, expunges found by the same listing.
    Plain,
    /// CONDSTORE: changed flags since a MODSEQ; expunges by comparing UIDs.
    Condstore,
    /// QRESYNC: changed flags and vanished UIDs since a MODSEQ, in one FETCH.
    Qresync,
}

impl Strategy {
    /// The best strategy the server's capabilities allow.
    pub fn from_capabilities(capabilities: &Capabilities) -> Strategy {
        if capabilities.qresync() && capabilities.enable() {
            Strategy::Qresync
        } else if capabilities.condstore() {
            Strategy::Condstore
        } else {
            Strategy::Plain
        }
    }

    /// Whether MODSEQ values exist on this server.
    pub fn has_modseq(self) -> bool {
        !matches!(self, Strategy::Plain)
    }
}

/// What the server says about a mailbox (from STATUS, LIST-STATUS or SELECT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerStatus {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT.
    pub uidnext: u32,
    /// EXISTS (MESSAGES).
    pub exists: u32,
    /// HIGHESTMODSEQ, on CONDSTORE servers.
    pub highest_modseq: Option<u64>,
    /// UNSEEN, when asked by STATUS.
    pub unseen: Option<u32>,
}

/// How the flags of stored messages are brought up to date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagCheck {
    /// Nothing can have changed.
    Skip,
    /// `UID FETCH <range> (FLAGS) (CHANGEDSINCE <modseq>)`.
    ChangedSince(u64),
    /// Fetch every flag of the range and compare.
    All,
}

/// How expunged messages are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpungeCheck {
    /// None can have happened.
    Skip,
    /// The flag FETCH reports them (`VANISHED` modifier under QRESYNC; the full listing of
    /// [`FlagCheck::All`] otherwise).
    WithFlags,
    /// `UID SEARCH UID <range>` and compare with the stored UIDs.
    Search,
}

/// The steps of a pass over one mailbox whose UIDVALIDITY did not change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Steps {
    /// The cursor the pass starts from (a first snapshot for a mailbox never synced).
    pub start: SyncState,
    /// UIDs that may hold new mail: from the stored UIDNEXT to the server's UIDNEXT - 1.
    pub new_mail: Option<RangeInclusive<u32>>,
    /// Flags of the stored range.
    pub flags: FlagCheck,
    /// Expunges in the stored range.
    pub expunges: ExpungeCheck,
    /// The UIDs flags and expunges are checked over: `lowest_uid ..= uidnext - 1` of `start`.
    pub known: Option<RangeInclusive<u32>>,
    /// Whether the initial sync still has to go further down.
    pub continue_initial: bool,
}

impl Steps {
    /// The cursor once every step is done, with the server's counts.
    pub fn finished_state(&self, server: &ServerStatus) -> SyncState {
        SyncState {
            uidnext: server.uidnext.max(self.start.uidnext),
            highest_modseq: server.highest_modseq,
            exists: server.exists,
            unseen: server.unseen,
            ..self.start
        }
    }
}

/// What a pass does with one mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing moved since the last pass.
    UpToDate,
    /// The server's UIDVALIDITY differs from the stored one: every stored UID is void. Reset the
    /// mailbox, then plan again from nothing.
    Reset {
        /// The stored UIDVALIDITY.
        stored: u32,
        /// The server's.
        server: u32,
    },
    /// Work to do.
    Sync(Steps),
}

/// Decides what a pass does with a mailbox.
pub fn plan_pass(stored: Option<&SyncState>, server: &ServerStatus, strategy: Strategy) -> Plan {
    let Some(stored) = stored else {
        return Plan::Sync(first_pass(server));
    };
    if stored.uidvalidity != server.uidvalidity {
        return Plan::Reset {
            stored: stored.uidvalidity,
            server: server.uidvalidity,
        };
    }
    let steps = later_pass(stored, server, strategy);
    let nothing_to_do = steps.new_mail.is_none()
        && steps.flags == FlagCheck::Skip
        && steps.expunges == ExpungeCheck::Skip
        && !steps.continue_initial;
    if nothing_to_do && stored.exists == server.exists && stored.unseen == server.unseen {
        Plan::UpToDate
    } else {
        Plan::Sync(steps)
    }
}

/// A mailbox never synced: remember the server's UIDNEXT and MODSEQ now (changes after this are
/// caught next time), then the initial sync goes down from UIDNEXT.
fn first_pass(server: &ServerStatus) -> Steps {
    let start = SyncState {
        uidvalidity: server.uidvalidity,
        uidnext: server.uidnext,
        highest_modseq: server.highest_modseq,
        lowest_uid: server.uidnext,
        initial_done: server.uidnext <= 1,
        exists: server.exists,
        unseen: server.unseen,
    };
    Steps {
        start,
        new_mail: None,
        flags: FlagCheck::Skip,
        expunges: ExpungeCheck::Skip,
        known: None,
        continue_initial: !start.initial_done,
    }
}

fn later_pass(stored: &SyncState, server: &ServerStatus, strategy: Strategy) -> Steps {
    if server.uidnext < stored.uidnext {
        tracing::warn!(
            stored = stored.uidnext,
            server = server.uidnext,
            "the server's UIDNEXT went down (RFC 3501 forbids it); assuming no new mail"
        );
    }
    let new_mail = (server.uidnext > stored.uidnext).then(|| stored.uidnext..=server.uidnext - 1);
    let known =
        (stored.lowest_uid < stored.uidnext).then(|| stored.lowest_uid..=stored.uidnext - 1);
    let counts_moved = new_mail.is_some() || server.exists != stored.exists;
    let (flags, expunges) = match known {
        None => (FlagCheck::Skip, ExpungeCheck::Skip),
        Some(_) => change_checks(stored, server, strategy, counts_moved),
    };
    Steps {
        start: *stored,
        new_mail,
        flags,
        expunges,
        known,
        continue_initial: !stored.initial_done,
    }
}

fn change_checks(
    stored: &SyncState,
    server: &ServerStatus,
    strategy: Strategy,
    counts_moved: bool,
) -> (FlagCheck, ExpungeCheck) {
    let since = match (strategy, stored.highest_modseq, server.highest_modseq) {
        (Strategy::Plain, _, _) | (_, None, _) | (_, _, None) => {
            return (FlagCheck::All, ExpungeCheck::WithFlags);
        }
        (_, Some(stored), Some(server)) if stored == server => None,
        (_, Some(stored), Some(_)) => Some(stored),
    };
    let flags = since.map_or(FlagCheck::Skip, FlagCheck::ChangedSince);
    let expunges = match strategy {
        // QRESYNC servers raise HIGHESTMODSEQ on expunge, and the VANISHED modifier reports them.
        Strategy::Qresync if since.is_some() => ExpungeCheck::WithFlags,
        _ if counts_moved => ExpungeCheck::Search,
        _ => ExpungeCheck::Skip,
    };
    (flags, expunges)
}

/// The initial sync's next batches, newest first (each batch descending).
///
/// `candidates` are the server's UIDs below the cursor that match the window's date (a `UID
/// SEARCH`), in any order; `stored` is how many messages the mailbox holds already, which counts
/// toward [`SyncWindow::newest`].
pub fn initial_batches(
    mut candidates: Vec<u32>,
    stored: u64,
    window: &SyncWindow,
    batch_size: usize,
) -> Vec<Vec<u32>> {
    candidates.sort_unstable_by(|a, b| b.cmp(a));
    candidates.dedup();
    if let Some(newest) = window.newest {
        let room = u64::from(newest).saturating_sub(stored);
        candidates.truncate(usize::try_from(room).unwrap_or(usize::MAX));
    }
    candidates
        .chunks(batch_size.max(1))
        .map(<[u32]>::to_vec)
        .collect()
}

/// New mail in batches, oldest first (each batch ascending), so the cursor's UIDNEXT can move up
/// after each one.
pub fn new_mail_batches(mut candidates: Vec<u32>, batch_size: usize) -> Vec<Vec<u32>> {
    candidates.sort_unstable();
    candidates.dedup();
    candidates
        .chunks(batch_size.max(1))
        .map(<[u32]>::to_vec)
        .collect()
}

/// The flag updates a full listing implies, and the stored UIDs it no longer has.
///
/// `stored` and `server` are `(uid, flags)` sorted by UID, flags already normalized (sorted, no
/// `\Recent`). Only stored UIDs matter: a server UID the store does not hold is outside the window.
pub fn flag_changes(
    stored: &[(u32, Vec<String>)],
    server: &[(u32, Vec<String>)],
) -> (Vec<(u32, Vec<String>)>, Vec<u32>) {
    let mut updates = Vec::new();
    let mut vanished = Vec::new();
    for (uid, flags) in stored {
        match server.binary_search_by_key(uid, |(server_uid, _)| *server_uid) {
            Ok(at) if server[at].1 != *flags => updates.push((*uid, server[at].1.clone())),
            Ok(_) => {}
            Err(_) => vanished.push(*uid),
        }
    }
    (updates, vanished)
}

/// Flags as the engine compares and stores them: sorted, without duplicates, without `\Recent`
/// (a per-session flag that would make every new session look like a change).
pub fn normalize_flags<I, S>(flags: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut flags: Vec<String> = flags
        .into_iter()
        .map(|flag| flag.as_ref().to_owned())
        .filter(|flag| !flag.eq_ignore_ascii_case("\\Recent"))
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
