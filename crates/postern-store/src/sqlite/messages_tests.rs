//! Tests of the message repository: replayed batches, flag and delete events, stale UIDVALIDITY,
//! the listing cursor under concurrent inserts, cascading deletes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test

use chrono::{DateTime, Utc};

use crate::{
    AccountAuth, AccountId, AccountState, Endpoint, ListCursor, Mailbox, MailboxId, MessageQuery,
    NewAccount, NewMailbox, NewMessage, Security, Store, StoreError, SyncBatch, SyncState,
};

struct Fixture {
    store: Store,
    account_id: AccountId,
    mailbox: Mailbox,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("p.db")).await.unwrap();
    let account_id = AccountId::generate();
    let endpoint = Endpoint {
        host: "localhost".into(),
        port: 993,
        security: Security::Tls,
        ca_file: None,
    };
    store
        .accounts()
        .create(
            NewAccount {
                id: account_id.clone(),
                email: "a@example.test".into(),
                name: None,
                imap: endpoint.clone(),
                smtp: endpoint,
                auth: AccountAuth::Password { username: None },
                state: AccountState::Connecting,
            },
            None,
        )
        .await
        .unwrap();
    let mailbox = store
        .mailboxes()
        .create(NewMailbox {
            account_id: account_id.clone(),
            name: "INBOX".into(),
            delimiter: Some("/".into()),
            role: None,
        })
        .await
        .unwrap();
    Fixture {
        store,
        account_id,
        mailbox,
        _dir: dir,
    }
}

fn state(uidvalidity: u32, uidnext: u32) -> SyncState {
    SyncState {
        uidvalidity,
        uidnext,
        highest_modseq: Some(1),
        lowest_uid: 1,
        initial_done: true,
        exists: 0,
        unseen: None,
    }
}

fn message(uid: u32, internaldate_secs: i64) -> NewMessage {
    NewMessage {
        uid,
        modseq: Some(1),
        flags: vec!["\\Seen".into()],
        internaldate: DateTime::<Utc>::from_timestamp(internaldate_secs, 0).unwrap(),
        size: 100,
        envelope: Default::default(),
        snippet: Some(format!("message {uid}")),
        mime: Default::default(),
        parse_problems: None,
        body: Some(format!("raw {uid}").into_bytes()),
        body_text: None,
    }
}

fn batch(mailbox_id: MailboxId, state: SyncState, messages: Vec<NewMessage>) -> SyncBatch {
    SyncBatch {
        new_messages: messages,
        ..SyncBatch::cursor_only(mailbox_id, state)
    }
}

async fn kinds(store: &Store, account_id: &AccountId) -> Vec<String> {
    store
        .events()
        .list_after(0, 1000, Some(account_id.as_str()))
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect()
}

#[tokio::test]
async fn a_replayed_batch_stores_and_announces_nothing_twice() {
    let f = fixture().await;
    let id = f.mailbox.id;
    let first = batch(id, state(7, 3), vec![message(1, 100), message(2, 200)]);
    let outcome = f.store.messages().apply(first.clone()).await.unwrap();
    assert_eq!(outcome.inserted, 2);
    let again = f.store.messages().apply(first).await.unwrap();
    assert_eq!(again.inserted, 0);
    assert_eq!(f.store.messages().count(id).await.unwrap(), 2);
    let events = kinds(&f.store, &f.account_id).await;
    assert_eq!(events, ["mailbox.created", "message.new", "message.new"]);
    let stored = f.store.mailboxes().get(id).await.unwrap().unwrap();
    assert_eq!(stored.sync, Some(state(7, 3)));
    let message = f.store.messages().get_by_uid(id, 2).await.unwrap().unwrap();
    assert_eq!(
        f.store.messages().body(message.id).await.unwrap().unwrap(),
        b"raw 2"
    );
}

#[tokio::test]
async fn flag_updates_announce_only_real_changes_and_deletes_announce_each_row() {
    let f = fixture().await;
    let id = f.mailbox.id;
    let messages = f.store.messages();
    messages
        .apply(batch(
            id,
            state(7, 4),
            vec![message(1, 1), message(2, 2), message(3, 3)],
        ))
        .await
        .unwrap();
    let mut changes = SyncBatch::cursor_only(id, state(7, 4));
    changes.flag_updates = vec![
        crate::FlagUpdate {
            uid: 1,
            flags: vec!["\\Seen".into()],
            modseq: Some(5),
        },
        crate::FlagUpdate {
            uid: 2,
            flags: vec!["\\Seen".into(), "\\Flagged".into()],
            modseq: Some(5),
        },
    ];
    changes.vanished = vec![3, 99];
    let outcome = messages.apply(changes).await.unwrap();
    assert_eq!((outcome.updated, outcome.deleted), (1, 1));
    let second = messages.get_by_uid(id, 2).await.unwrap().unwrap();
    assert_eq!(second.flags, ["\\Flagged", "\\Seen"]);
    assert_eq!(
        messages.get_by_uid(id, 1).await.unwrap().unwrap().modseq,
        Some(5)
    );
    assert_eq!(messages.uids(id).await.unwrap(), [1, 2]);
    let events = kinds(&f.store, &f.account_id).await;
    assert_eq!(&events[4..], ["message.updated", "message.deleted"]);
}

#[tokio::test]
async fn a_batch_for_a_stale_uidvalidity_is_refused_after_a_reset() {
    let f = fixture().await;
    let id = f.mailbox.id;
    f.store
        .messages()
        .apply(batch(id, state(7, 2), vec![message(1, 1)]))
        .await
        .unwrap();
    let refused = f
        .store
        .messages()
        .apply(batch(id, state(8, 3), vec![message(2, 2)]))
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { .. })),
        "{refused:?}"
    );

    assert_eq!(f.store.mailboxes().reset(id, 8).await.unwrap(), 1);
    let reset = f.store.mailboxes().get(id).await.unwrap().unwrap();
    assert_eq!(reset.sync, None);
    assert_eq!(f.store.messages().count(id).await.unwrap(), 0);
    f.store
        .messages()
        .apply(batch(id, state(8, 3), vec![message(2, 2)]))
        .await
        .unwrap();
    let events = kinds(&f.store, &f.account_id).await;
    assert!(events.contains(&"mailbox.reset".to_owned()));
}

#[tokio::test]
async fn the_listing_cursor_is_stable_while_messages_arrive() {
    let f = fixture().await;
    let id = f.mailbox.id;
    let messages = f.store.messages();
    // Five messages, two sharing an INTERNALDATE (the id breaks the tie).
    let first: Vec<NewMessage> = [(1, 10), (2, 20), (3, 20), (4, 40), (5, 50)]
        .into_iter()
        .map(|(uid, date)| message(uid, date))
        .collect();
    messages.apply(batch(id, state(7, 6), first)).await.unwrap();
    let query = |after: Option<ListCursor>| MessageQuery {
        account_id: f.account_id.clone(),
        mailbox_id: Some(id),
        limit: 2,
        after,
        filter: Default::default(),
    };
    let page = messages.list(query(None)).await.unwrap();
    let uids: Vec<u32> = page.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [5, 4]);
    // Mail arrives between pages: one newer than everything, one older than the cursor.
    messages
        .apply(batch(id, state(7, 8), vec![message(6, 60), message(7, 15)]))
        .await
        .unwrap();
    let token = page.next.unwrap().to_string();
    let mut after: Option<ListCursor> = Some(token.parse().unwrap());
    let mut rest = Vec::new();
    while let Some(cursor) = after {
        let page = messages.list(query(Some(cursor))).await.unwrap();
        rest.extend(page.messages.iter().map(|m| m.uid));
        after = page.next;
    }
    assert_eq!(
        rest,
        [3, 2, 7, 1],
        "no repeat, no skip; the older arrival appears in place"
    );
    assert!("garbage".parse::<ListCursor>().is_err());
}

#[tokio::test]
async fn deleting_the_account_or_the_mailbox_takes_the_messages_along() {
    let f = fixture().await;
    let id = f.mailbox.id;
    f.store
        .messages()
        .apply(batch(id, state(7, 2), vec![message(1, 1)]))
        .await
        .unwrap();
    let second = f
        .store
        .mailboxes()
        .create(NewMailbox {
            account_id: f.account_id.clone(),
            name: "Work".into(),
            delimiter: None,
            role: None,
        })
        .await
        .unwrap();
    assert!(f.store.mailboxes().delete(second.id).await.unwrap());
    assert!(!f.store.mailboxes().delete(second.id).await.unwrap());
    assert!(
        kinds(&f.store, &f.account_id)
            .await
            .contains(&"mailbox.deleted".to_owned())
    );

    assert!(f.store.accounts().delete(&f.account_id).await.unwrap());
    assert_eq!(f.store.mailboxes().get(id).await.unwrap(), None);
    assert_eq!(f.store.messages().count(id).await.unwrap(), 0);
    let orphan = f
        .store
        .mailboxes()
        .create(NewMailbox {
            account_id: f.account_id.clone(),
            name: "INBOX".into(),
            delimiter: None,
            role: None,
        })
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound { .. })),
        "{orphan:?}"
    );
}

#[tokio::test]
async fn listings_narrow_by_unseen_sender_and_arrival_time() {
    let f = fixture().await;
    let id = f.mailbox.id;
    let sender = |name: &str, address: &str| crate::EmailAddress {
        name: Some(name.into()),
        address: Some(address.into()),
    };
    let mut unseen_from_ada = message(1, 100);
    unseen_from_ada.flags = vec!["\\Flagged".into()];
    unseen_from_ada.envelope.from = vec![sender("Ada Lovelace", "ada@example.test")];
    let mut seen_from_ada = message(2, 200);
    seen_from_ada.envelope.from = vec![sender("Ada", "ada@example.test")];
    let mut from_bob = message(3, 300);
    from_bob.flags = Vec::new();
    from_bob.envelope.from = vec![sender("Bob 100%_off", "bob@example.test")];
    let batch = batch(
        id,
        state(7, 4),
        vec![unseen_from_ada, seen_from_ada, from_bob],
    );
    f.store.messages().apply(batch).await.unwrap();

    let store = &f.store;
    let list = |filter: crate::MessageFilter| {
        let query = MessageQuery {
            account_id: f.account_id.clone(),
            mailbox_id: None,
            limit: 10,
            after: None,
            filter,
        };
        async move {
            let page = store.messages().list(query).await.unwrap();
            page.messages.iter().map(|m| m.uid).collect::<Vec<u32>>()
        }
    };
    let at = |secs| DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
    let filter = crate::MessageFilter::default;
    assert_eq!(list(filter()).await, [3, 2, 1]);
    assert_eq!(
        list(crate::MessageFilter {
            unseen: true,
            ..filter()
        })
        .await,
        [3, 1]
    );
    let ada = crate::MessageFilter {
        from: Some("ADA@".into()),
        ..filter()
    };
    assert_eq!(list(ada).await, [2, 1], "case-insensitive, name or address");
    let literal = crate::MessageFilter {
        from: Some("100%_".into()),
        ..filter()
    };
    assert_eq!(
        list(literal).await,
        [3],
        "LIKE wildcards in the text are literal"
    );
    let wildcard = crate::MessageFilter {
        from: Some("%".into()),
        ..filter()
    };
    assert_eq!(list(wildcard).await, [3]);
    let window = crate::MessageFilter {
        since: Some(at(200)),
        before: Some(at(300)),
        ..filter()
    };
    assert_eq!(
        list(window).await,
        [2],
        "since is inclusive, before exclusive"
    );
}

#[tokio::test]
async fn a_body_fetched_later_is_kept_only_while_its_message_is_stored() {
    let f = fixture().await;
    let id = f.mailbox.id;
    let messages = f.store.messages();
    let mut headers_only = message(1, 1);
    headers_only.body = None;
    let mut gone = message(2, 2);
    gone.body = None;
    messages
        .apply(batch(id, state(7, 3), vec![headers_only, gone]))
        .await
        .unwrap();
    let first = messages.get_by_uid(id, 1).await.unwrap().unwrap();
    assert!(!first.has_body);
    assert!(messages.put_body(first.id, b"fetched").await.unwrap());
    assert!(messages.put_body(first.id, b"other").await.unwrap());
    assert_eq!(messages.body(first.id).await.unwrap().unwrap(), b"fetched");
    assert!(messages.get(first.id).await.unwrap().unwrap().has_body);

    let second = messages.get_by_uid(id, 2).await.unwrap().unwrap();
    let mut expunge = SyncBatch::cursor_only(id, state(7, 3));
    expunge.vanished = vec![2];
    messages.apply(expunge).await.unwrap();
    assert!(!messages.put_body(second.id, b"late").await.unwrap());
    assert_eq!(messages.body(second.id).await.unwrap(), None);
    let events = kinds(&f.store, &f.account_id).await;
    assert_eq!(
        events,
        [
            "mailbox.created",
            "message.new",
            "message.new",
            "message.deleted"
        ],
        "storing a body announces nothing"
    );
}

#[tokio::test]
async fn messages_are_found_by_a_list_of_uids_newest_first() {
    let f = fixture().await;
    let id = f.mailbox.id;
    let messages = f.store.messages();
    messages
        .apply(batch(
            id,
            state(7, 4),
            vec![message(1, 300), message(2, 100), message(3, 200)],
        ))
        .await
        .unwrap();
    let found = messages.get_by_uids(id, &[2, 1, 9]).await.unwrap();
    let uids: Vec<u32> = found.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [1, 2], "newest first; UID 9 is not stored");
    assert!(messages.get_by_uids(id, &[]).await.unwrap().is_empty());
    f.store.mailboxes().reset(id, 8).await.unwrap();
    assert!(
        messages
            .get_by_uids(id, &[1, 2, 3])
            .await
            .unwrap()
            .is_empty()
    );
}
