//! A world per sync test: a Dovecot password user of its own, a temp store holding an account for
//! it, sessions logged in as that user, and helpers to fill, change and inspect both sides.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Mutex;

use futures::TryStreamExt as _;
use postern_store::{
    AccountAuth, AccountId, AccountState, Endpoint, Event, Mailbox, Message, MessageQuery,
    NewAccount, Security, Store,
};
use postern_sync::engine::{BatchReport, Phase};
use postern_sync::{
    ImapSession, NoObserver, SyncError, SyncObserver, SyncOptions, SyncReport, authenticate,
    connect, sync_account,
};
use postern_testkit::mailgen::{ImapAppender, MailGen};

use crate::support::{dovecot, endpoint, password, timeouts};

pub const PASSWORD: &str = "sync-test-password";

pub struct World {
    pub user: String,
    pub store: Store,
    pub account_id: AccountId,
    _dir: tempfile::TempDir,
}

impl World {
    /// A new Dovecot user named after `name` (unique per run) and an empty store.
    pub async fn new(name: &str) -> World {
        let user = format!("{name}-{}@example.test", unique());
        dovecot().add_password_user(&user, PASSWORD).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("postern.db"))
            .await
            .unwrap();
        let account_id = AccountId::generate();
        let server = |port: u16| Endpoint {
            host: "localhost".to_owned(),
            port,
            security: Security::Tls,
            ca_file: Some(dovecot().ca_file().display().to_string()),
        };
        store
            .accounts()
            .create(
                NewAccount {
                    id: account_id.clone(),
                    email: user.clone(),
                    name: None,
                    imap: server(dovecot().imaps_addr().port()),
                    smtp: server(dovecot().imaps_addr().port()),
                    auth: AccountAuth::Password { username: None },
                    state: AccountState::Connecting,
                },
                None,
            )
            .await
            .unwrap();
        World {
            user,
            store,
            account_id,
            _dir: dir,
        }
    }

    /// A session as this user over IMAPS.
    pub async fn session(&self) -> ImapSession {
        let endpoint = endpoint(
            dovecot(),
            dovecot().imaps_addr(),
            postern_sync::Security::Tls,
        );
        let client = connect(&endpoint, &timeouts()).await.unwrap();
        authenticate(client, &password(&self.user, PASSWORD))
            .await
            .unwrap()
    }

    /// Appends raw messages to `mailbox` (created if needed) with MULTIAPPEND.
    pub async fn fill(&self, mailbox: &str, messages: &[Vec<u8>]) {
        let mut appender = ImapAppender::login(dovecot().imap_addr(), &self.user, PASSWORD)
            .await
            .unwrap();
        appender.create_mailbox(mailbox).await.unwrap();
        appender.append_all(mailbox, &[], messages).await.unwrap();
        appender.logout().await.unwrap();
    }

    /// `count` generated messages for this user (deterministic per seed).
    pub fn generate(&self, seed: u64, count: usize) -> Vec<Vec<u8>> {
        MailGen::new(seed, &self.user).raw_messages(count)
    }

    /// One pass on a fresh session.
    pub async fn sync(&self, options: &SyncOptions) -> SyncReport {
        self.sync_observed(options, &NoObserver).await.unwrap()
    }

    pub async fn sync_observed(
        &self,
        options: &SyncOptions,
        observer: &dyn SyncObserver,
    ) -> Result<SyncReport, SyncError> {
        let mut session = self.session().await;
        let report = sync_account(
            &mut session,
            &self.store,
            &self.account_id,
            options,
            observer,
        )
        .await;
        let _ = session.logout().await;
        report
    }

    pub async fn mailbox(&self, name: &str) -> Mailbox {
        self.store
            .mailboxes()
            .list(&self.account_id)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no mailbox {name}"))
    }

    /// How many messages of `mailbox` are stored.
    pub async fn messages_count(&self, mailbox: &str) -> u64 {
        let mailbox = self.mailbox(mailbox).await;
        self.store.messages().count(mailbox.id).await.unwrap()
    }

    /// Every stored message of `mailbox`, by UID.
    pub async fn messages(&self, mailbox: &str) -> BTreeMap<u32, Message> {
        let mailbox = self.mailbox(mailbox).await;
        let page = self
            .store
            .messages()
            .list(MessageQuery {
                account_id: self.account_id.clone(),
                mailbox_id: Some(mailbox.id),
                limit: 1000,
                after: None,
                filter: Default::default(),
            })
            .await
            .unwrap();
        assert!(page.next.is_none(), "more than 1000 messages");
        page.messages.into_iter().map(|m| (m.uid, m)).collect()
    }

    /// The account's events of `kind`.
    pub async fn events(&self, kind: &str) -> Vec<Event> {
        self.store
            .events()
            .list_after(0, 100_000, Some(self.account_id.as_str()))
            .await
            .unwrap()
            .into_iter()
            .filter(|event| event.kind == kind)
            .collect()
    }

    /// Runs `change` on another client's session with `mailbox` selected.
    pub async fn elsewhere(&self, mailbox: &str, commands: &[&str]) {
        let mut session = self.session().await;
        let inner = session.inner_mut();
        inner.select(mailbox).await.unwrap();
        for command in commands {
            if let Some(flags) = command.strip_prefix("STORE ") {
                let (set, change) = flags.split_once(' ').unwrap();
                let _: Vec<_> = inner
                    .uid_store(set, change)
                    .await
                    .unwrap()
                    .try_collect()
                    .await
                    .unwrap();
            } else if *command == "EXPUNGE" {
                let _: Vec<_> = inner.expunge().await.unwrap().try_collect().await.unwrap();
            } else {
                inner.run_command_and_check_ok(command).await.unwrap();
            }
        }
        session.logout().await.unwrap();
    }
}

/// Records every batch; stops the pass after `stop_after` Initial batches when set.
#[derive(Default)]
pub struct Recorder {
    pub batches: Mutex<Vec<(Phase, Vec<u32>)>>,
    pub stop_after: Option<usize>,
}

impl Recorder {
    pub fn stopping_after(batches: usize) -> Recorder {
        Recorder {
            stop_after: Some(batches),
            ..Recorder::default()
        }
    }

    pub fn fetched(&self) -> Vec<u32> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, uids)| uids.clone())
            .collect()
    }
}

impl SyncObserver for Recorder {
    fn batch_committed(&self, batch: &BatchReport<'_>) -> ControlFlow<()> {
        let mut batches = self.batches.lock().unwrap();
        batches.push((batch.phase, batch.fetched.to_vec()));
        let initial = batches.iter().filter(|(p, _)| *p == Phase::Initial).count();
        match self.stop_after {
            Some(limit) if initial >= limit => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
}

/// Options with a small batch size, so a few dozen messages make several batches.
pub fn options(batch_size: usize) -> SyncOptions {
    SyncOptions {
        batch_size,
        bodies: postern_sync::BodiesMode::Full,
        ..SyncOptions::default()
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}{nanos:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}
