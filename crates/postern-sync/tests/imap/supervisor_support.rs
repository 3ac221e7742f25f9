//! A fleet per supervisor test: one temp store and vault, password accounts for Dovecot users of
//! its own (reached directly or through a [`Proxy`](crate::proxy::Proxy)), a `SyncService` over
//! them, and polling waits on state, events and progress.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use postern_auth::flows::Flows;
use postern_auth::token_manager::{RefreshPolicy, TokenManager};
use postern_store::{
    AccountAuth, AccountId, AccountState, Endpoint, Event, Mailbox, Message, NewAccount, Security,
    Store,
};
use postern_sync::account::AccountCredentials;
use postern_sync::supervisor::{Activity, Backoff, SyncConfig, SyncService};
use postern_sync::{AccountProgress, ImapSession, authenticate, connect};
use postern_testkit::mailgen::{ImapAppender, MailGen, lmtp_deliver};
use postern_vault::Vault;

use crate::support::{dovecot, endpoint, password, timeouts};

pub const PASSWORD: &str = "supervised-password";

pub struct Fleet {
    pub store: Store,
    vault: Arc<Vault>,
    credentials: AccountCredentials,
    _dir: tempfile::TempDir,
}

/// An account of a fleet and its Dovecot user.
#[derive(Clone)]
pub struct TestAccount {
    pub id: AccountId,
    pub user: String,
}

impl Fleet {
    pub async fn new() -> Fleet {
        let postern_auth::testing::TempContext { dir, ctx } =
            postern_auth::testing::TempContext::new().await;
        let (store, vault) = (ctx.store.clone(), ctx.vault.clone());
        let flows = Flows::new(ctx.clone(), "http://127.0.0.1:9/callback".into());
        let tokens = TokenManager::new(flows, RefreshPolicy::default());
        Fleet {
            store,
            vault,
            credentials: AccountCredentials::new(ctx, tokens),
            _dir: dir,
        }
    }

    /// A password account for a new Dovecot user, its IMAPS reached at `port` (Dovecot's own or
    /// a proxy's).
    pub async fn account(&self, name: &str, port: u16) -> TestAccount {
        self.account_storing(name, port, PASSWORD).await
    }

    /// As [`Fleet::account`], but the store keeps `stored` as the password (wrong unless it is
    /// [`PASSWORD`]).
    pub async fn account_storing(&self, name: &str, port: u16, stored: &str) -> TestAccount {
        let user = format!("{name}-{}@example.test", uuid_like());
        dovecot().add_password_user(&user, PASSWORD).unwrap();
        let id = AccountId::generate();
        let sealed = self
            .vault
            .seal(&id.password_ref().context(), stored.as_bytes());
        let server = Endpoint {
            host: "localhost".to_owned(),
            port,
            security: Security::Tls,
            ca_file: Some(dovecot().ca_file().display().to_string()),
        };
        let new = NewAccount {
            id: id.clone(),
            email: user.clone(),
            name: None,
            imap: server.clone(),
            smtp: server,
            auth: AccountAuth::Password { username: None },
            state: AccountState::Connecting,
        };
        self.store
            .accounts()
            .create(new, Some(&sealed))
            .await
            .unwrap();
        TestAccount { id, user }
    }

    pub fn service(&self, config: SyncConfig) -> SyncService {
        SyncService::new(self.store.clone(), self.credentials.clone(), config)
    }

    pub async fn state(&self, account: &TestAccount) -> (AccountState, Option<String>) {
        let stored = self
            .store
            .accounts()
            .get(&account.id)
            .await
            .unwrap()
            .unwrap();
        (stored.state, stored.last_error)
    }

    pub async fn wait_for_state(&self, account: &TestAccount, wanted: AccountState) {
        let what = format!("{} to be {wanted}", account.user);
        eventually(Duration::from_secs(10), &what, || async {
            self.state(account).await.0 == wanted
        })
        .await;
    }

    /// The account's events of `kind`.
    pub async fn events(&self, account: &TestAccount, kind: &str) -> Vec<Event> {
        self.store
            .events()
            .list_after(0, 100_000, Some(account.id.as_str()))
            .await
            .unwrap()
            .into_iter()
            .filter(|event| event.kind == kind)
            .collect()
    }

    pub async fn mailbox(&self, account: &TestAccount, name: &str) -> Option<Mailbox> {
        self.store
            .mailboxes()
            .list(&account.id)
            .await
            .unwrap()
            .into_iter()
            .find(|mailbox| mailbox.name == name)
    }

    pub async fn count(&self, account: &TestAccount, mailbox: &str) -> u64 {
        match self.mailbox(account, mailbox).await {
            Some(mailbox) => self.store.messages().count(mailbox.id).await.unwrap(),
            None => 0,
        }
    }

    pub async fn message(&self, account: &TestAccount, mailbox: &str, uid: u32) -> Option<Message> {
        let mailbox = self.mailbox(account, mailbox).await?;
        self.store
            .messages()
            .get_by_uid(mailbox.id, uid)
            .await
            .unwrap()
    }
}

impl TestAccount {
    /// Appends `count` generated messages to `mailbox` (created if needed).
    pub async fn fill(&self, mailbox: &str, seed: u64, count: usize) {
        let messages = MailGen::new(seed, &self.user).raw_messages(count);
        let mut appender = ImapAppender::login(dovecot().imap_addr(), &self.user, PASSWORD)
            .await
            .unwrap();
        appender.create_mailbox(mailbox).await.unwrap();
        appender.append_all(mailbox, &[], &messages).await.unwrap();
        appender.logout().await.unwrap();
    }

    /// Delivers one generated message to INBOX over LMTP, as an MTA would.
    pub async fn deliver(&self, seed: u64) {
        let message = MailGen::new(seed, &self.user).raw_messages(1);
        lmtp_deliver(dovecot().lmtp_addr(), &self.user, &message)
            .await
            .unwrap();
    }

    /// A session of another client, straight to Dovecot.
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

    /// Another client stores `change` (e.g. `+FLAGS (\Seen)`) on `uid` of INBOX; with
    /// `expunge`, it expunges afterwards.
    pub async fn change_elsewhere(&self, uid: u32, change: &str, expunge: bool) {
        let mut session = self.session().await;
        let inner = session.inner_mut();
        inner.select("INBOX").await.unwrap();
        let _: Vec<_> = inner
            .uid_store(uid.to_string(), change)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        if expunge {
            let _: Vec<_> = inner.expunge().await.unwrap().try_collect().await.unwrap();
        }
        session.logout().await.unwrap();
    }
}

/// Fast back-off, no staggering, resync and error retry far away: what a test sees is what IDLE
/// and reconnection did, not a timer.
pub fn fast_config() -> SyncConfig {
    SyncConfig {
        resync_interval: Duration::from_secs(3600),
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
        },
        failures_before_error: 3,
        error_retry: Duration::from_secs(3600),
        start_window: Duration::ZERO,
        connection_wait: Duration::from_millis(200),
        ..SyncConfig::default()
    }
}

/// Polls `check` every 5 ms until it holds; fails the test after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {limit:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The account's progress, which must exist.
pub fn progress(service: &SyncService, account: &TestAccount) -> AccountProgress {
    service
        .progress(&account.id)
        .unwrap_or_else(|| panic!("no supervisor for {}", account.user))
}

/// Waits until the account's supervisor is in IDLE.
pub async fn wait_idling(service: &SyncService, account: &TestAccount) {
    let what = format!("{} to idle", account.user);
    eventually(Duration::from_secs(10), &what, || async {
        progress(service, account).activity == Activity::Idling
    })
    .await;
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}{nanos:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}
