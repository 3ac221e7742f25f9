//! Local full-text search (migration 0008): the index follows `apply`, `put_body` and deletes,
//! user text is matched as text (never as FTS syntax), and results stay within the accounts asked.

use chrono::{DateTime, Utc};
use postern_store::{
    AccountId, EmailAddress, Envelope, MailboxId, MessageId, NewMailbox, NewMessage, SearchQuery,
    SearchText, Store, SyncBatch, SyncState,
};

use crate::fixtures::{Fixture, new_password_account};

const UIDVALIDITY: u32 = 7;

async fn account_with_inbox(store: &Store, email: &str) -> (AccountId, MailboxId) {
    let account = new_password_account(email);
    let id = account.id.clone();
    store.accounts().create(account, None).await.unwrap();
    let mailbox = store
        .mailboxes()
        .create(NewMailbox {
            account_id: id.clone(),
            name: "INBOX".into(),
            delimiter: Some("/".into()),
            role: None,
        })
        .await
        .unwrap();
    (id, mailbox.id)
}

fn state(uidnext: u32) -> SyncState {
    SyncState {
        uidvalidity: UIDVALIDITY,
        uidnext,
        highest_modseq: None,
        lowest_uid: 1,
        initial_done: true,
        exists: 0,
        unseen: None,
    }
}

fn message(uid: u32, subject: &str, body: Option<&str>) -> NewMessage {
    NewMessage {
        uid,
        modseq: None,
        flags: Vec::new(),
        internaldate: DateTime::<Utc>::from_timestamp(1_700_000_000 + i64::from(uid), 0).unwrap(),
        size: 100,
        envelope: Envelope {
            subject: Some(subject.to_owned()),
            from: vec![EmailAddress {
                name: Some("Grace Hopper".into()),
                address: Some("grace@navy.example".into()),
            }],
            ..Envelope::default()
        },
        snippet: Some(format!("snippet of {subject}")),
        mime: Default::default(),
        parse_problems: None,
        body: body.map(raw_message),
        body_text: None,
    }
}

fn raw_message(text: &str) -> Vec<u8> {
    format!("From: grace@navy.example\r\nSubject: x\r\nContent-Type: text/plain\r\n\r\n{text}\r\n")
        .into_bytes()
}

async fn store_messages(store: &Store, mailbox: MailboxId, messages: Vec<NewMessage>) {
    let batch = SyncBatch {
        new_messages: messages,
        ..SyncBatch::cursor_only(mailbox, state(100))
    };
    store.messages().apply(batch).await.unwrap();
}

async fn vanish(store: &Store, mailbox: MailboxId, uid: u32) {
    let batch = SyncBatch {
        vanished: vec![uid],
        ..SyncBatch::cursor_only(mailbox, state(100))
    };
    assert_eq!(store.messages().apply(batch).await.unwrap().deleted, 1);
}

async fn find(store: &Store, text: &str, accounts: Option<Vec<AccountId>>) -> Vec<MessageId> {
    let query = SearchQuery {
        text: SearchText::parse(text).unwrap(),
        account_ids: accounts,
        limit: 50,
    };
    let hits = store.search().search(query).await.unwrap();
    hits.into_iter().map(|hit| hit.id).collect()
}

async fn id_of(store: &Store, mailbox: MailboxId, uid: u32) -> MessageId {
    store
        .messages()
        .get_by_uid(mailbox, uid)
        .await
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test]
async fn applied_messages_are_found_by_subject_sender_snippet_and_stored_body() {
    let f = Fixture::new().await;
    let (_, inbox) = account_with_inbox(&f.store, "ada@example.org").await;
    let messages = vec![
        message(
            1,
            "Quarterly report",
            Some("The zeppelin budget is attached."),
        ),
        message(2, "Lunch plans", None),
    ];
    store_messages(&f.store, inbox, messages).await;
    let first = id_of(&f.store, inbox, 1).await;
    let second = id_of(&f.store, inbox, 2).await;

    assert_eq!(find(&f.store, "quarterly", None).await, [first]);
    assert_eq!(find(&f.store, "ZEPPELIN budget", None).await, [first]);
    assert_eq!(find(&f.store, "lunch snippet", None).await, [second]);
    let by_sender = find(&f.store, "hopper navy", None).await;
    assert_eq!(by_sender.len(), 2, "{by_sender:?}");
    // Every term must match: no message has both words.
    assert!(find(&f.store, "zeppelin lunch", None).await.is_empty());
}

#[tokio::test]
async fn body_text_the_caller_extracted_is_indexed_instead_of_parsing_the_body_again() {
    let f = Fixture::new().await;
    let (_, inbox) = account_with_inbox(&f.store, "kay@example.org").await;
    let mut handed = message(1, "Handed text", Some("The raw says walrus."));
    handed.body_text = Some("The parser said narwhal.".to_owned());
    store_messages(&f.store, inbox, vec![handed]).await;
    let id = id_of(&f.store, inbox, 1).await;
    assert_eq!(find(&f.store, "narwhal", None).await, [id]);
    assert!(find(&f.store, "walrus", None).await.is_empty());
}

#[tokio::test]
async fn a_body_stored_later_is_indexed_and_a_vanished_message_is_forgotten() {
    let f = Fixture::new().await;
    let (_, inbox) = account_with_inbox(&f.store, "ada@example.org").await;
    store_messages(&f.store, inbox, vec![message(1, "Hello", None)]).await;
    let id = id_of(&f.store, inbox, 1).await;
    assert!(find(&f.store, "walrus", None).await.is_empty());

    let raw = raw_message("A walrus walked in.");
    assert!(f.store.messages().put_body(id, &raw).await.unwrap());
    assert_eq!(find(&f.store, "walrus", None).await, [id]);
    assert_eq!(
        find(&f.store, "hello", None).await,
        [id],
        "headers still indexed"
    );

    vanish(&f.store, inbox, 1).await;
    assert!(find(&f.store, "walrus", None).await.is_empty());
    assert!(find(&f.store, "hello", None).await.is_empty());
}

#[tokio::test]
async fn deleting_an_account_empties_its_part_of_the_index() {
    let f = Fixture::new().await;
    let (account, inbox) = account_with_inbox(&f.store, "ada@example.org").await;
    store_messages(&f.store, inbox, vec![message(1, "Ephemeral", Some("gone"))]).await;
    assert_eq!(find(&f.store, "ephemeral", None).await.len(), 1);
    assert!(f.store.accounts().delete(&account).await.unwrap());
    assert!(find(&f.store, "ephemeral", None).await.is_empty());
}

#[tokio::test]
async fn results_stay_within_the_accounts_asked_for() {
    let f = Fixture::new().await;
    let (ada, ada_inbox) = account_with_inbox(&f.store, "ada@example.org").await;
    let (bob, bob_inbox) = account_with_inbox(&f.store, "bob@example.org").await;
    store_messages(&f.store, ada_inbox, vec![message(1, "Invoice", None)]).await;
    store_messages(&f.store, bob_inbox, vec![message(1, "Invoice", None)]).await;
    let ada_message = id_of(&f.store, ada_inbox, 1).await;
    let bob_message = id_of(&f.store, bob_inbox, 1).await;

    assert_eq!(find(&f.store, "invoice", None).await.len(), 2);
    assert_eq!(
        find(&f.store, "invoice", Some(vec![ada])).await,
        [ada_message]
    );
    assert_eq!(
        find(&f.store, "invoice", Some(vec![bob])).await,
        [bob_message]
    );
    assert!(find(&f.store, "invoice", Some(Vec::new())).await.is_empty());
}

#[tokio::test]
async fn fts_syntax_in_the_query_is_plain_text() {
    let f = Fixture::new().await;
    let (_, inbox) = account_with_inbox(&f.store, "ada@example.org").await;
    let messages = vec![
        message(1, "alpha NEAR beta", None),
        message(2, "alpha gamma", None),
        message(3, "say \"hi\" there", None),
    ];
    store_messages(&f.store, inbox, messages).await;
    let third = id_of(&f.store, inbox, 3).await;
    let first = id_of(&f.store, inbox, 1).await;
    let second = id_of(&f.store, inbox, 2).await;

    // As FTS syntax each of these would be an operator, a prefix, a column filter or an error.
    for query in [
        "alpha NEAR beta",
        "NEAR(alpha beta)",
        "alpha -gamma AND beta",
        "beta*",
    ] {
        let _ = find(&f.store, query, None).await; // must not fail to parse
    }
    assert_eq!(find(&f.store, "alpha NEAR beta", None).await, [first]);
    assert_eq!(find(&f.store, "near", None).await, [first]);
    // `-gamma` is the word gamma, not "without gamma": only message 2 has it.
    assert_eq!(find(&f.store, "alpha -gamma", None).await, [second]);
    // `bet*` is not a prefix query: no message has the word "bet".
    assert!(find(&f.store, "bet*", None).await.is_empty());
    assert_eq!(find(&f.store, "\"hi\"", None).await, [third]);
    assert_eq!(find(&f.store, "say\"hi", None).await, [third]);
    assert!(find(&f.store, "subject:alpha", None).await.is_empty());
}

#[test]
fn a_query_without_any_word_is_refused() {
    for text in ["", "   ", "\t\n", "\" * - ( ) :", "\"\""] {
        assert!(SearchText::parse(text).is_err(), "{text:?}");
    }
    assert_eq!(
        SearchText::parse("a\"b NEAR *").unwrap().as_fts(),
        "\"a\"\"b\" \"NEAR\""
    );
}
