use chrono::Utc;
use postern_store::{
    AccountAuth, AccountId, AccountState, Endpoint, MailboxId, NewAccount, NewMailbox, NewMessage,
    Security, SyncState,
};

use super::*;

const UIDVALIDITY: u32 = 7;

struct Fixture {
    store: Store,
    mailbox: MailboxId,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("postern.db"))
        .await
        .unwrap();
    let account_id = AccountId::generate();
    let server = Endpoint {
        host: "localhost".to_owned(),
        port: 993,
        security: Security::Tls,
        ca_file: None,
    };
    let account = NewAccount {
        id: account_id.clone(),
        email: "committer@example.test".to_owned(),
        name: None,
        imap: server.clone(),
        smtp: server,
        auth: AccountAuth::Password { username: None },
        state: AccountState::Connecting,
    };
    store.accounts().create(account, None).await.unwrap();
    let mailbox = store
        .mailboxes()
        .create(NewMailbox {
            account_id,
            name: "INBOX".to_owned(),
            delimiter: None,
            role: None,
        })
        .await
        .unwrap();
    store
        .mailboxes()
        .set_sync_state(mailbox.id, state(UIDVALIDITY, 100))
        .await
        .unwrap();
    Fixture {
        store,
        mailbox: mailbox.id,
        _dir: dir,
    }
}

fn state(uidvalidity: u32, lowest_uid: u32) -> SyncState {
    SyncState {
        uidvalidity,
        uidnext: 101,
        highest_modseq: None,
        lowest_uid,
        initial_done: false,
        exists: 100,
        unseen: None,
    }
}

/// A batch storing `uid` and moving the initial sync's cursor down to it.
fn batch(mailbox: MailboxId, uidvalidity: u32, uid: u32) -> SyncBatch {
    let mut batch = SyncBatch::cursor_only(mailbox, state(uidvalidity, uid));
    batch.initial = true;
    batch.new_messages = vec![NewMessage {
        uid,
        modseq: None,
        flags: Vec::new(),
        internaldate: Utc::now(),
        size: 10,
        envelope: Default::default(),
        snippet: None,
        mime: Default::default(),
        parse_problems: None,
        body: None,
        body_text: None,
    }];
    batch
}

async fn stored_uids(fixture: &Fixture) -> Vec<u32> {
    let mut uids = fixture
        .store
        .messages()
        .uids(fixture.mailbox)
        .await
        .unwrap();
    uids.sort_unstable();
    uids
}

/// The initial sync's cursor as stored.
async fn cursor_lowest_uid(fixture: &Fixture) -> u32 {
    let mailbox = fixture
        .store
        .mailboxes()
        .get(fixture.mailbox)
        .await
        .unwrap();
    mailbox.unwrap().sync.unwrap().lowest_uid
}

#[tokio::test]
async fn batches_commit_in_the_order_they_were_queued() {
    let fixture = fixture().await;
    let mut committer = Committer::start(fixture.store.clone());
    for uid in [90, 80, 70, 60] {
        assert!(
            committer
                .queue(batch(fixture.mailbox, UIDVALIDITY, uid), uid)
                .await
        );
    }
    committer.close();
    let mut tags = Vec::new();
    while let Some(result) = committer.next_result().await {
        let (uid, outcome) = result.unwrap();
        assert_eq!(outcome.inserted, 1);
        tags.push(uid);
    }
    // Each result comes back with its batch's tag, in queue order.
    assert_eq!(tags, vec![90, 80, 70, 60]);
    assert_eq!(stored_uids(&fixture).await, vec![60, 70, 80, 90]);
    // The last batch queued set the cursor: the commits ran in queue order.
    assert_eq!(cursor_lowest_uid(&fixture).await, 60);
}

#[tokio::test]
async fn nothing_queued_after_a_failed_commit_is_committed() {
    let fixture = fixture().await;
    let mut committer = Committer::start(fixture.store.clone());
    assert!(
        committer
            .queue(batch(fixture.mailbox, UIDVALIDITY, 90), 90)
            .await
    );
    // A UIDVALIDITY the mailbox is not at: the store refuses the batch.
    assert!(
        committer
            .queue(batch(fixture.mailbox, UIDVALIDITY + 1, 80), 80)
            .await
    );
    // Queued or refused (the task may have stopped already), it must never reach the store.
    committer
        .queue(batch(fixture.mailbox, UIDVALIDITY, 70), 70)
        .await;
    committer.close();

    let first = committer.next_result().await.unwrap();
    assert_eq!(
        first.unwrap(),
        (
            90,
            BatchOutcome {
                inserted: 1,
                updated: 0,
                deleted: 0
            }
        )
    );
    let second = committer.next_result().await.unwrap();
    assert!(matches!(second, Err(SyncError::Store(_))), "{second:?}");
    assert_eq!(stored_uids(&fixture).await, vec![90]);
    assert_eq!(cursor_lowest_uid(&fixture).await, 90);
}

#[tokio::test]
async fn a_committer_dropped_midway_leaves_a_cursor_that_claims_only_what_is_stored() {
    let fixture = fixture().await;
    let mut committer = Committer::start(fixture.store.clone());
    for uid in [90, 80] {
        assert!(
            committer
                .queue(batch(fixture.mailbox, UIDVALIDITY, uid), uid)
                .await
        );
    }
    tokio::task::yield_now().await;
    drop(committer);
    // Wherever the drop fell, what was committed is a prefix of the queue, and the cursor is the
    // last committed batch's: a commit under way was rolled back, not half-applied.
    let stored = stored_uids(&fixture).await;
    let lowest = cursor_lowest_uid(&fixture).await;
    match stored.as_slice() {
        [] => assert_eq!(lowest, 100),
        [90] => assert_eq!(lowest, 90),
        [80, 90] => assert_eq!(lowest, 80),
        other => panic!("not a prefix of the queue: {other:?}"),
    }
    // The store takes the next committer's batches: the first left no transaction open.
    let mut next = Committer::start(fixture.store.clone());
    assert!(
        next.queue(batch(fixture.mailbox, UIDVALIDITY, 70), 70)
            .await
    );
    next.close();
    assert_eq!(next.next_result().await.unwrap().unwrap().1.inserted, 1);
    assert!(stored_uids(&fixture).await.contains(&70));
}
