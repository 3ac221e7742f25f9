//! A world per test: a temp store and vault, an OAuth client registered with the shared test
//! provider, an app in Postern pointing at it, and the shared Dovecot trusting the provider.

use postern_accounts::{
    AccountService, AuthInput, CreatedAccount, EndpointInput, NewAccountInput, NewAppInput,
};
use postern_auth::flows::Callback;
use postern_auth::token_manager::RefreshPolicy;
use postern_store::{Account, AccountId, Event, SaslMechanism, Security, Store, TokenSet};
use postern_testkit::dovecot::{Dovecot, DovecotConfig};
use postern_testkit::oauth_provider::{ClientConfig, TestOAuthProvider};
use postern_testkit::smtp_sink::SmtpSink;
use postern_vault::Vault;
use secrecy::SecretString;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

pub fn provider() -> &'static TestOAuthProvider {
    TestOAuthProvider::shared()
}

pub fn dovecot() -> &'static Dovecot {
    Dovecot::shared(|| {
        DovecotConfig::new(provider().introspect_url())
            .with_relay(SmtpSink::shared().unwrap().addr())
    })
    .unwrap_or_else(|error| panic!("{error}"))
}

/// Every log line of this test binary, captured at TRACE (including `log` records of dependencies).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| Capture)
            .with_ansi(false)
            .try_init();
    });
}

/// A unique name for this test's client and mailbox.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid_like())
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

pub struct World {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub vault: Arc<Vault>,
    pub service: AccountService,
    pub client_id: String,
    pub client_secret: String,
    pub app_id: String,
}

pub struct WorldOptions {
    pub client: ClientConfig,
    pub policy: RefreshPolicy,
    pub extra_params: Option<std::collections::BTreeMap<String, String>>,
    pub scopes: Vec<String>,
}

impl WorldOptions {
    pub fn new() -> Self {
        let client_id = unique("client");
        Self {
            client: ClientConfig::confidential(client_id, &unique("secret"), REDIRECT),
            policy: RefreshPolicy::default(),
            extra_params: None,
            scopes: vec!["mail".into()],
        }
    }
}

impl World {
    pub async fn new() -> World {
        World::with(WorldOptions::new()).await
    }

    pub async fn with(options: WorldOptions) -> World {
        capture_logs();
        dovecot();
        let client_secret = options
            .client
            .client_secret
            .as_ref()
            .map(|s| secrecy::ExposeSecret::expose_secret(s).to_owned())
            .unwrap_or_default();
        let client_id = options.client.client_id.clone();
        provider().register_client(options.client);
        let postern_auth::testing::TempContext { dir, ctx } =
            postern_auth::testing::TempContext::new().await;
        let (store, vault) = (ctx.store.clone(), ctx.vault.clone());
        let service = AccountService::new(ctx, REDIRECT.to_owned(), options.policy);
        let app = service
            .register_app(NewAppInput {
                name: "test app".into(),
                provider: "generic".into(),
                client_id: client_id.clone(),
                client_secret: Some(SecretString::from(client_secret.clone())),
                redirect_uri: Some(REDIRECT.into()),
                scopes: Some(options.scopes),
                tenant: None,
                authorize_url: Some(provider().authorize_url()),
                token_url: Some(provider().token_url()),
                revoke_url: Some(provider().revoke_url()),
                device_authorization_url: Some(provider().device_code_url()),
                extra_params: options.extra_params,
                secret_expires_at: None,
            })
            .await
            .unwrap();
        World {
            dir,
            store,
            vault,
            service,
            client_id,
            client_secret,
            app_id: app.app.id.to_string(),
        }
    }

    pub fn imap() -> EndpointInput {
        EndpointInput {
            host: "localhost".into(),
            port: dovecot().imaps_addr().port(),
            security: Security::Tls,
            ca_file: Some(dovecot().ca_file().display().to_string()),
        }
    }

    pub fn smtp() -> EndpointInput {
        EndpointInput {
            host: "localhost".into(),
            port: dovecot().submission_addr().unwrap().port(),
            security: Security::StartTls,
            ca_file: Some(dovecot().ca_file().display().to_string()),
        }
    }

    pub fn oauth_input(&self, email: &str, mechanism: SaslMechanism) -> NewAccountInput {
        NewAccountInput {
            email: email.to_owned(),
            name: None,
            imap: Some(World::imap()),
            smtp: Some(World::smtp()),
            auth: AuthInput::OAuth2 {
                app_id: self.app_id.clone(),
                mechanism: Some(mechanism),
            },
        }
    }

    /// Creates a pending OAuth2 account.
    pub async fn pending(&self, email: &str, mechanism: SaslMechanism) -> CreatedAccount {
        self.service
            .create_account(self.oauth_input(email, mechanism))
            .await
            .unwrap()
    }

    /// Creates an OAuth2 account and walks the browser flow to the end: a connected account.
    pub async fn connected(&self, email: &str, mechanism: SaslMechanism) -> Account {
        let created = self.pending(email, mechanism).await;
        let link = created.authorization.unwrap();
        let callback = follow(link.url.as_str()).await;
        self.service.complete_authorization(callback).await.unwrap()
    }

    /// Makes the store believe the access token expired a minute ago (the provider still accepts it).
    pub async fn expire_in_store(&self, account_id: &AccountId) {
        let (access, _) = self
            .store
            .grants()
            .load_tokens(account_id)
            .await
            .unwrap()
            .unwrap();
        let past = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
        let token_set = TokenSet {
            access,
            refresh: None,
            access_expires_at: Some(past),
            scope: None,
            consented: false,
        };
        self.store
            .grants()
            .store_tokens(account_id, token_set)
            .await
            .unwrap();
    }

    pub async fn events(&self, account_id: &AccountId, kind: &str) -> Vec<Event> {
        self.store
            .events()
            .list_after(0, 1000, Some(account_id.as_str()))
            .await
            .unwrap()
            .into_iter()
            .filter(|event| event.kind == kind)
            .collect()
    }

    pub async fn reload(&self, account_id: &AccountId) -> Account {
        self.store
            .accounts()
            .get(account_id)
            .await
            .unwrap()
            .unwrap()
    }

    pub fn token_calls(&self) -> u64 {
        provider().counters_for(&self.client_id).token_refresh
    }

    /// The plaintext tokens the store holds for an account.
    pub async fn stored_tokens(&self, account_id: &AccountId) -> (String, Option<String>) {
        use secrecy::ExposeSecret;
        let (access, refresh) = self
            .store
            .grants()
            .load_tokens(account_id)
            .await
            .unwrap()
            .unwrap();
        let open = |r: postern_store::SecretRef, sealed: &postern_vault::Sealed| {
            self.vault
                .open_str(&r.context(), sealed)
                .unwrap()
                .expose_secret()
                .to_owned()
        };
        (
            open(account_id.access_token_ref(), &access),
            refresh.map(|refresh| open(account_id.refresh_token_ref(), &refresh)),
        )
    }
}

/// Follows a provider link as a browser would, up to the redirect back to Postern, and returns the
/// callback's query.
pub async fn follow(authorize_url: &str) -> Callback {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(authorize_url).send().await.unwrap();
    assert_eq!(
        response.status(),
        302,
        "the provider did not redirect: {}",
        response.text().await.unwrap()
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    callback_from(&location)
}

pub fn callback_from(location: &str) -> Callback {
    let url = url::Url::parse(location).unwrap();
    let mut callback = Callback::default();
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "state" => callback.state = Some(value.into_owned()),
            "code" => callback.code = Some(value.into_owned()),
            "error" => callback.error = Some(value.into_owned()),
            "error_description" => callback.error_description = Some(value.into_owned()),
            _ => {}
        }
    }
    callback
}

/// Waits up to `limit` for `condition`.
pub async fn eventually<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
