//! A world per test: a temp store and vault, a token manager over the shared test OAuth provider,
//! an outbox service, and accounts on one of two Dovecots.
//!
//! Two Dovecots, because the sink's fault modes are global: [`happy`] relays to the shared sink,
//! which always accepts, and tests run against it in parallel; [`faulty`] relays to a sink of its
//! own whose mode the fault tests change, one test at a time ([`fault_lock`]).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use postern_auth::flows::Flows;
use postern_auth::token_manager::{RefreshPolicy, TokenManager};
use postern_outbox::{OutboxConfig, OutboxService, Workers};
use postern_store::{
    AccountAuth, AccountId, AccountState, AppId, Endpoint, NewAccount, NewOAuthApp, OutboxId,
    OutboxItem, OutboxStatus, SaslMechanism, Security, Store, TokenSet,
};
use postern_testkit::dovecot::{Dovecot, DovecotConfig};
use postern_testkit::oauth_provider::{ClientConfig, TestOAuthProvider};
use postern_testkit::smtp_sink::{ReceivedMessage, SmtpSink};
use postern_vault::Vault;
use tokio::sync::watch;

pub const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";
pub const WAIT: Duration = Duration::from_secs(5);

pub fn provider() -> &'static TestOAuthProvider {
    TestOAuthProvider::shared()
}

/// The Dovecot relaying to the shared sink, which stays in `Accept`.
pub fn happy() -> &'static Dovecot {
    Dovecot::shared(|| {
        DovecotConfig::new(provider().introspect_url()).with_relay(happy_sink().addr())
    })
    .unwrap_or_else(|error| panic!("{error}"))
}

pub fn happy_sink() -> &'static SmtpSink {
    SmtpSink::shared().unwrap_or_else(|error| panic!("{error}"))
}

/// The Dovecot relaying to a sink of its own, for tests that change the sink's mode.
pub fn faulty() -> &'static (SmtpSink, Dovecot) {
    static FAULTY: OnceLock<(SmtpSink, Dovecot)> = OnceLock::new();
    FAULTY.get_or_init(|| {
        let sink = SmtpSink::start().unwrap_or_else(|error| panic!("{error}"));
        let config = DovecotConfig::new(provider().introspect_url()).with_relay(sink.addr());
        let dovecot = Dovecot::start(config).unwrap_or_else(|error| panic!("{error}"));
        (sink, dovecot)
    })
}

/// Held by every test that changes the faulty sink's mode.
pub fn fault_lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    &LOCK
}

/// A unique address on `example.test` for this test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}@example.test", uuid::Uuid::new_v4().simple())
}

/// Fast retries and polls, so fault tests take a second, not an hour.
pub fn fast_config() -> OutboxConfig {
    OutboxConfig {
        workers: 2,
        poll_interval: Duration::from_millis(50),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(300),
        max_attempts: 10,
        ..OutboxConfig::default()
    }
}

pub struct World {
    pub _dir: tempfile::TempDir,
    pub store: Store,
    pub vault: Arc<Vault>,
    pub outbox: OutboxService,
    stop: watch::Sender<bool>,
    workers: Option<Workers>,
}

impl World {
    pub async fn new(config: OutboxConfig) -> World {
        let postern_auth::testing::TempContext { dir, ctx } =
            postern_auth::testing::TempContext::new().await;
        let (store, vault) = (ctx.store.clone(), ctx.vault.clone());
        let tokens = TokenManager::new(Flows::new(ctx, REDIRECT.into()), RefreshPolicy::default());
        let outbox = OutboxService::new(store.clone(), vault.clone(), tokens, config);
        let (stop, _) = watch::channel(false);
        World {
            _dir: dir,
            store,
            vault,
            outbox,
            stop,
            workers: None,
        }
    }

    pub fn start_workers(&mut self) {
        self.workers = Some(self.outbox.spawn_workers(self.stop.subscribe()));
    }

    /// Starts workers again after [`World::stop_workers`].
    pub fn restart_workers(&mut self) {
        self.stop = watch::channel(false).0;
        self.start_workers();
    }

    pub async fn stop_workers(&mut self) {
        let _ = self.stop.send(true);
        if let Some(workers) = self.workers.take() {
            workers.join().await;
        }
    }

    /// A password account on `dovecot`, sending through its submission port with STARTTLS.
    pub async fn password_account(&self, dovecot: &Dovecot, email: &str) -> AccountId {
        let password = "s3cret-pw";
        dovecot.add_password_user(email, password).unwrap();
        let id = AccountId::generate();
        let sealed = self
            .vault
            .seal(&id.password_ref().context(), password.as_bytes());
        let new = new_account(
            dovecot,
            id.clone(),
            email,
            AccountAuth::Password { username: None },
        );
        self.store
            .accounts()
            .create(new, Some(&sealed))
            .await
            .unwrap();
        id
    }

    /// An OAuth2 account on `dovecot` whose grant was minted at the test provider; returns the
    /// account and the provider client id (for its counters).
    pub async fn oauth_account(
        &self,
        dovecot: &Dovecot,
        email: &str,
        mechanism: SaslMechanism,
    ) -> (AccountId, String) {
        let client_id = format!("outbox-{}", uuid::Uuid::new_v4().simple());
        let secret = "client-secret";
        provider().register_client(ClientConfig::confidential(&client_id, secret, REDIRECT));
        let app_id = AppId::generate();
        let sealed_secret = self
            .vault
            .seal(&app_id.client_secret_ref().context(), secret.as_bytes());
        self.store
            .oauth_apps()
            .create(new_app(app_id.clone(), &client_id), Some(&sealed_secret))
            .await
            .unwrap();
        let id = AccountId::generate();
        let auth = AccountAuth::OAuth2 { app_id, mechanism };
        let new = new_account(dovecot, id.clone(), email, auth);
        self.store.accounts().create(new, None).await.unwrap();
        let minted = provider()
            .mint_tokens(&client_id, email, &["mail"], None)
            .unwrap();
        let tokens = TokenSet {
            access: self
                .vault
                .seal_str(&id.access_token_ref().context(), &minted.access_token),
            refresh: Some(
                self.vault
                    .seal_str(&id.refresh_token_ref().context(), &minted.refresh_token),
            ),
            access_expires_at: Some(chrono::Utc::now() + chrono::TimeDelta::hours(1)),
            scope: Some(minted.scope),
            consented: true,
        };
        self.store.grants().store_tokens(&id, tokens).await.unwrap();
        (id, client_id)
    }

    /// Waits until the item reaches `status`; panics with the item as it stands otherwise.
    pub async fn wait_for_status(&self, id: &OutboxId, status: OutboxStatus) -> OutboxItem {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let item = self.outbox.get(id).await.unwrap().unwrap();
            if item.status == status {
                return item;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("item never became {status}: {item:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Makes an item look `by` older, writing the database file directly (the store takes its
    /// clock from the system).
    pub async fn age_outbox(&self, id: &OutboxId, by: chrono::TimeDelta) {
        let path = self._dir.path().join("postern.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE outbox SET created_at = created_at - ? WHERE id = ?")
            .bind(by.num_milliseconds())
            .bind(id.as_str().to_owned())
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }

    /// The `kind` events of an account, oldest first.
    pub async fn events(&self, account_id: &AccountId, kind: &str) -> Vec<postern_store::Event> {
        self.store
            .events()
            .list_after(0, 1000, Some(account_id.as_str()))
            .await
            .unwrap()
            .into_iter()
            .filter(|event| event.kind == kind)
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn new_account(dovecot: &Dovecot, id: AccountId, email: &str, auth: AccountAuth) -> NewAccount {
    let ca_file = Some(dovecot.ca_file().display().to_string());
    NewAccount {
        id,
        email: email.to_owned(),
        name: None,
        imap: Endpoint {
            host: "localhost".into(),
            port: dovecot.imaps_addr().port(),
            security: Security::Tls,
            ca_file: ca_file.clone(),
        },
        smtp: Endpoint {
            host: "localhost".into(),
            port: dovecot.submission_addr().unwrap().port(),
            security: Security::StartTls,
            ca_file,
        },
        auth,
        state: AccountState::Connected,
    }
}

fn new_app(id: AppId, client_id: &str) -> NewOAuthApp {
    NewOAuthApp {
        id,
        name: "outbox test app".into(),
        provider: "generic".into(),
        client_id: client_id.to_owned(),
        redirect_uri: Some(REDIRECT.into()),
        scopes: vec!["mail".into()],
        tenant: None,
        authorize_url: provider().authorize_url(),
        token_url: provider().token_url(),
        revoke_url: Some(provider().revoke_url()),
        device_authorization_url: None,
        extra_params: BTreeMap::new(),
        imap_host: None,
        imap_port: None,
        smtp_host: None,
        smtp_port: None,
        secret_expires_at: None,
    }
}

/// Every message the sink received for `rcpt` so far.
pub fn received_by(sink: &SmtpSink, rcpt: &str) -> Vec<ReceivedMessage> {
    sink.messages()
        .into_iter()
        .filter(|m| m.rcpt_to.iter().any(|to| to.eq_ignore_ascii_case(rcpt)))
        .collect()
}
