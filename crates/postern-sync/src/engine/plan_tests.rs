//! Tests of the pass planner: fresh mailboxes, nothing moved, UIDVALIDITY, new mail, each
//! strategy's change checks, window batching, flag diffs.

use super::*;

fn server(uidvalidity: u32, uidnext: u32, exists: u32, modseq: Option<u64>) -> ServerStatus {
    ServerStatus {
        uidvalidity,
        uidnext,
        exists,
        highest_modseq: modseq,
        unseen: None,
    }
}

/// A mailbox fully synced up to `uidnext`, everything from UID 1.
fn synced(uidvalidity: u32, uidnext: u32, exists: u32, modseq: Option<u64>) -> SyncState {
    SyncState {
        uidvalidity,
        uidnext,
        highest_modseq: modseq,
        lowest_uid: 1,
        initial_done: true,
        exists,
        unseen: None,
    }
}

fn steps(plan: Plan) -> Steps {
    match plan {
        Plan::Sync(steps) => steps,
        other => panic!("expected steps, got {other:?}"),
    }
}

#[test]
fn a_new_mailbox_snapshots_the_server_and_starts_the_initial_sync_at_uidnext() {
    let steps = steps(plan_pass(
        None,
        &server(7, 101, 100, Some(55)),
        Strategy::Qresync,
    ));
    assert_eq!(steps.start.uidnext, 101);
    assert_eq!(steps.start.lowest_uid, 101);
    assert_eq!(steps.start.highest_modseq, Some(55));
    assert!(steps.continue_initial && !steps.start.initial_done);
    assert_eq!(steps.new_mail, None);
    assert_eq!(
        (steps.flags, steps.expunges),
        (FlagCheck::Skip, ExpungeCheck::Skip)
    );
}

#[test]
fn a_new_empty_mailbox_has_nothing_to_fetch() {
    let steps = steps(plan_pass(None, &server(7, 1, 0, Some(1)), Strategy::Plain));
    assert!(steps.start.initial_done);
    assert!(!steps.continue_initial);
}

#[test]
fn nothing_moved_means_up_to_date_on_a_condstore_server() {
    let stored = synced(7, 101, 100, Some(55));
    for strategy in [Strategy::Qresync, Strategy::Condstore] {
        assert_eq!(
            plan_pass(Some(&stored), &server(7, 101, 100, Some(55)), strategy),
            Plan::UpToDate
        );
    }
}

#[test]
fn without_condstore_flags_are_always_compared_in_full() {
    let stored = synced(7, 101, 100, None);
    let steps = steps(plan_pass(
        Some(&stored),
        &server(7, 101, 100, None),
        Strategy::Plain,
    ));
    assert_eq!(steps.flags, FlagCheck::All);
    assert_eq!(steps.expunges, ExpungeCheck::WithFlags);
    assert_eq!(steps.known, Some(1..=100));
}

#[test]
fn a_changed_uidvalidity_resets_the_mailbox() {
    let stored = synced(7, 101, 100, Some(55));
    assert_eq!(
        plan_pass(Some(&stored), &server(8, 3, 2, Some(4)), Strategy::Qresync),
        Plan::Reset {
            stored: 7,
            server: 8
        }
    );
}

#[test]
fn new_mail_is_the_range_between_the_two_uidnexts() {
    let stored = synced(7, 101, 100, Some(55));
    let steps = steps(plan_pass(
        Some(&stored),
        &server(7, 104, 103, Some(58)),
        Strategy::Qresync,
    ));
    assert_eq!(steps.new_mail, Some(101..=103));
    assert_eq!(steps.flags, FlagCheck::ChangedSince(55));
    assert_eq!(steps.expunges, ExpungeCheck::WithFlags);
    assert_eq!(steps.known, Some(1..=100));
    let done = steps.finished_state(&server(7, 104, 103, Some(58)));
    assert_eq!(
        (done.uidnext, done.highest_modseq, done.exists),
        (104, Some(58), 103)
    );
}

#[test]
fn a_flag_change_alone_is_fetched_by_modseq_without_searching_for_expunges_on_condstore() {
    let stored = synced(7, 101, 100, Some(55));
    let steps = steps(plan_pass(
        Some(&stored),
        &server(7, 101, 100, Some(56)),
        Strategy::Condstore,
    ));
    assert_eq!(steps.flags, FlagCheck::ChangedSince(55));
    assert_eq!(steps.expunges, ExpungeCheck::Skip);
}

#[test]
fn an_expunge_on_condstore_is_found_by_searching_because_exists_fell() {
    let stored = synced(7, 101, 100, Some(55));
    let steps = steps(plan_pass(
        Some(&stored),
        &server(7, 101, 99, Some(56)),
        Strategy::Condstore,
    ));
    assert_eq!(steps.expunges, ExpungeCheck::Search);
}

#[test]
fn a_uidnext_that_went_down_is_not_new_mail() {
    let stored = synced(7, 101, 100, Some(55));
    let steps = steps(plan_pass(
        Some(&stored),
        &server(7, 90, 99, Some(56)),
        Strategy::Condstore,
    ));
    assert_eq!(steps.new_mail, None);
    assert_eq!(
        steps.finished_state(&server(7, 90, 99, Some(56))).uidnext,
        101
    );
}

#[test]
fn an_unfinished_initial_sync_continues_even_when_nothing_moved() {
    let mut stored = synced(7, 101, 100, Some(55));
    stored.lowest_uid = 51;
    stored.initial_done = false;
    let steps = steps(plan_pass(
        Some(&stored),
        &server(7, 101, 100, Some(55)),
        Strategy::Qresync,
    ));
    assert!(steps.continue_initial);
    assert_eq!(steps.known, Some(51..=100));
    assert_eq!(steps.flags, FlagCheck::Skip);
}

#[test]
fn initial_batches_go_newest_first_and_stop_at_the_window() {
    let window = SyncWindow::default();
    assert_eq!(
        initial_batches(vec![1, 5, 3, 4, 2], 0, &window, 2),
        vec![vec![5, 4], vec![3, 2], vec![1]]
    );
    let newest = SyncWindow {
        newest: Some(4),
        ..SyncWindow::default()
    };
    // One message is stored already (a resumed sync): three more fill the window.
    assert_eq!(
        initial_batches(vec![10, 20, 30, 40, 50], 1, &newest, 2),
        vec![vec![50, 40], vec![30]]
    );
    assert!(initial_batches(vec![1, 2], 4, &newest, 2).is_empty());
    assert!(initial_batches(Vec::new(), 0, &window, 0).is_empty());
}

#[test]
fn new_mail_batches_go_oldest_first() {
    assert_eq!(
        new_mail_batches(vec![9, 7, 8, 12], 3),
        vec![vec![7, 8, 9], vec![12]]
    );
}

#[test]
fn a_full_listing_gives_flag_updates_and_vanished_uids_of_stored_messages_only() {
    let flags = |list: &[&str]| list.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>();
    let stored = vec![
        (1, flags(&["\\Seen"])),
        (2, flags(&[])),
        (3, flags(&["\\Seen"])),
    ];
    let server = vec![
        (1, flags(&["\\Seen"])),
        (3, flags(&["\\Flagged", "\\Seen"])),
        (4, flags(&[])),
    ];
    let (updates, vanished) = flag_changes(&stored, &server);
    assert_eq!(updates, vec![(3, flags(&["\\Flagged", "\\Seen"]))]);
    assert_eq!(vanished, vec![2]);
}

#[test]
fn flags_are_sorted_deduplicated_and_lose_recent() {
    assert_eq!(
        normalize_flags(["\\Seen", "\\Recent", "$Label", "\\Seen"]),
        vec!["$Label".to_owned(), "\\Seen".to_owned()]
    );
}

#[test]
fn the_strategy_follows_the_capabilities() {
    let caps = |names: &[&str]| Capabilities::from_names(names);
    assert_eq!(
        Strategy::from_capabilities(&caps(&["QRESYNC", "ENABLE"])),
        Strategy::Qresync
    );
    assert_eq!(
        Strategy::from_capabilities(&caps(&["QRESYNC"])),
        Strategy::Condstore
    );
    assert_eq!(
        Strategy::from_capabilities(&caps(&["CONDSTORE"])),
        Strategy::Condstore
    );
    assert_eq!(
        Strategy::from_capabilities(&caps(&["IMAP4rev1"])),
        Strategy::Plain
    );
}
