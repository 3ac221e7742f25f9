//! Which mailboxes to create, delete, relabel and sync, from the server's LIST and the store.
//!
//! Purpose: one pure function, [`plan_discovery`], so "a mailbox appeared", "one was deleted",
//! "Sent got its `\Sent` attribute" and "this one is not selected" are tested without a server.
//! Non-goal: renames. A renamed mailbox is a deleted one and a new one (IMAP gives no identity
//! across a RENAME; its UIDVALIDITY may even stay), so its messages are fetched again.
//! Key decision: a stored mailbox the server no longer lists *or* the account no longer selects is
//! deleted with its messages (`mailbox.deleted`); keeping unsynced copies would make the local
//! picture lie about the server.

use postern_store::{Mailbox, MailboxId, MailboxRole};

use crate::engine::plan::ServerStatus;
use crate::engine::{MailboxSelection, same_mailbox};

/// A mailbox as the server's LIST (and, with LIST-STATUS, its STATUS) describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedMailbox {
    /// The name as the server spells it.
    pub name: String,
    /// The hierarchy delimiter.
    pub delimiter: Option<String>,
    /// Its role, from SPECIAL-USE or the name INBOX.
    pub role: Option<MailboxRole>,
    /// False for `\Noselect` and `\NonExistent` names (hierarchy placeholders).
    pub selectable: bool,
    /// Its status, when LIST-STATUS returned one.
    pub status: Option<ServerStatus>,
}

/// What discovery changes in the store, and what then syncs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryPlan {
    /// Listed mailboxes to store (indexes into the listing).
    pub create: Vec<usize>,
    /// Stored mailboxes to delete.
    pub delete: Vec<MailboxId>,
    /// Stored mailboxes whose delimiter or role changed: (id, listing index).
    pub relabel: Vec<(MailboxId, usize)>,
    /// Stored mailboxes to sync: (id, listing index). Those in `create` sync too, once stored.
    pub sync: Vec<(MailboxId, usize)>,
}

/// Compares the listing with the stored mailboxes of the account.
pub fn plan_discovery(
    listed: &[ListedMailbox],
    stored: &[Mailbox],
    selection: &MailboxSelection,
) -> DiscoveryPlan {
    let mut plan = DiscoveryPlan::default();
    let wanted = |mailbox: &ListedMailbox| {
        mailbox.selectable && selection.includes_within(&mailbox.name, mailbox.delimiter.as_deref())
    };
    for (index, mailbox) in listed.iter().enumerate().filter(|(_, m)| wanted(m)) {
        match stored.iter().find(|s| same_mailbox(&s.name, &mailbox.name)) {
            None => plan.create.push(index),
            Some(known) => {
                if known.delimiter != mailbox.delimiter || known.role != mailbox.role {
                    plan.relabel.push((known.id, index));
                }
                plan.sync.push((known.id, index));
            }
        }
    }
    for known in stored {
        let still_wanted = listed
            .iter()
            .any(|mailbox| wanted(mailbox) && same_mailbox(&known.name, &mailbox.name));
        if !still_wanted {
            plan.delete.push(known.id);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use postern_store::AccountId;

    fn listed(name: &str, role: Option<MailboxRole>, selectable: bool) -> ListedMailbox {
        ListedMailbox {
            name: name.to_owned(),
            delimiter: Some("/".to_owned()),
            role,
            selectable,
            status: None,
        }
    }

    fn stored(id: i64, name: &str, role: Option<MailboxRole>) -> Mailbox {
        Mailbox {
            id: MailboxId(id),
            account_id: AccountId::generate(),
            name: name.to_owned(),
            delimiter: Some("/".to_owned()),
            role,
            sync: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn new_mailboxes_are_created_and_missing_ones_deleted() {
        let listing = [
            listed("INBOX", Some(MailboxRole::Inbox), true),
            listed("Work", None, true),
        ];
        let known = [
            stored(1, "inbox", Some(MailboxRole::Inbox)),
            stored(2, "Old", None),
        ];
        let plan = plan_discovery(&listing, &known, &MailboxSelection::All);
        assert_eq!(plan.create, [1]);
        assert_eq!(plan.delete, [MailboxId(2)]);
        assert_eq!(plan.sync, [(MailboxId(1), 0)]);
        assert!(plan.relabel.is_empty());
    }

    #[test]
    fn noselect_names_never_sync() {
        let listing = [
            listed("Projects", None, false),
            listed("Projects/A", None, true),
        ];
        let known = [stored(1, "Projects", None)];
        let plan = plan_discovery(&listing, &known, &MailboxSelection::All);
        assert_eq!(plan.create, [1]);
        assert_eq!(plan.delete, [MailboxId(1)]);
    }

    #[test]
    fn a_changed_role_is_relabelled_and_still_synced() {
        let listing = [listed("Sent", Some(MailboxRole::Sent), true)];
        let known = [stored(4, "Sent", None)];
        let plan = plan_discovery(&listing, &known, &MailboxSelection::All);
        assert_eq!(plan.relabel, [(MailboxId(4), 0)]);
        assert_eq!(plan.sync, [(MailboxId(4), 0)]);
    }

    #[test]
    fn only_selected_mailboxes_sync_and_deselected_ones_are_dropped() {
        let listing = [
            listed("INBOX", Some(MailboxRole::Inbox), true),
            listed("Junk", Some(MailboxRole::Junk), true),
        ];
        let known = [stored(9, "Junk", Some(MailboxRole::Junk))];
        let selection = MailboxSelection::Only(vec!["inbox".to_owned()]);
        let plan = plan_discovery(&listing, &known, &selection);
        assert_eq!(plan.create, [0]);
        assert_eq!(plan.delete, [MailboxId(9)]);
        assert!(plan.sync.is_empty());
    }

    #[test]
    fn a_pattern_selects_by_the_listed_delimiter() {
        let listing = [
            listed("INBOX", Some(MailboxRole::Inbox), true),
            listed("Projects/2026", None, true),
            listed("Projects/2026/Q1", None, true),
            listed("Junk", Some(MailboxRole::Junk), true),
        ];
        let selection = MailboxSelection::Only(vec!["INBOX".to_owned(), "Projects/%".to_owned()]);
        let plan = plan_discovery(&listing, &[], &selection);
        assert_eq!(plan.create, [0, 1]);
    }
}
