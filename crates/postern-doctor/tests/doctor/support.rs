//! A world per test: a temp store and vault, an OAuth client registered with a test provider, an app
//! in the store pointing at it, and accounts on the shared Dovecot (IMAPS, submission with STARTTLS).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use postern_auth::context::AuthContext;
use postern_auth::oauth::TokenGrant;
use postern_doctor::{DoctorDeps, DoctorOptions, Report, Status, StepName};
use postern_store::{
    Account, AccountAuth, AccountId, AccountState, AppId, Endpoint, NewAccount, NewOAuthApp,
    PublishingStatus, SaslMechanism, Security,
};
use postern_testkit::dovecot::{Dovecot, DovecotConfig};
use postern_testkit::oauth_provider::{ClientConfig, TestOAuthProvider};
use postern_testkit::smtp_sink::SmtpSink;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

pub const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

pub fn provider() -> &'static TestOAuthProvider {
    TestOAuthProvider::shared()
}

pub fn sink() -> &'static SmtpSink {
    SmtpSink::shared().unwrap_or_else(|error| panic!("{error}"))
}

pub fn dovecot() -> &'static Dovecot {
    Dovecot::shared(|| DovecotConfig::new(provider().introspect_url()).with_relay(sink().addr()))
        .unwrap_or_else(|error| panic!("{error}"))
}

/// A unique name for this test's client and mailbox.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}{nanos:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Short bounds, so a broken case fails in seconds.
pub fn options() -> DoctorOptions {
    DoctorOptions {
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(4),
        token_timeout: Duration::from_secs(4),
        ..DoctorOptions::default()
    }
}

pub fn ca_file() -> String {
    dovecot().ca_file().display().to_string()
}

/// Dovecot's IMAPS port, trusting its CA.
pub fn imaps() -> Endpoint {
    Endpoint {
        host: "localhost".into(),
        port: dovecot().imaps_addr().port(),
        security: Security::Tls,
        ca_file: Some(ca_file()),
    }
}

/// Dovecot's submission port (STARTTLS), trusting its CA.
pub fn submission() -> Endpoint {
    Endpoint {
        host: "localhost".into(),
        port: dovecot().submission_addr().unwrap().port(),
        security: Security::StartTls,
        ca_file: Some(ca_file()),
    }
}

/// The secrets a test handed out, to look for in reports.
#[derive(Default)]
pub struct Secrets(pub Vec<String>);

pub struct World {
    dir: tempfile::TempDir,
    pub ctx: AuthContext,
    pub client_id: String,
    pub app_id: AppId,
    pub secrets: Mutex<Secrets>,
}

impl World {
    /// A world whose app lives at the shared provider.
    pub async fn new() -> World {
        World::at(provider()).await
    }

    /// A world whose app lives at `provider`.
    pub async fn at(provider: &TestOAuthProvider) -> World {
        World::build(provider, "generic", None).await
    }

    /// A world whose app, at the shared provider, was made from the `preset` provider preset
    /// (`google`, `microsoft`, ...) and has a client secret expiring at `secret_expires_at`.
    pub async fn with_app(preset: &str, secret_expires_at: Option<DateTime<Utc>>) -> World {
        World::build(provider(), preset, secret_expires_at).await
    }

    async fn build(
        provider: &TestOAuthProvider,
        preset: &str,
        secret_expires_at: Option<DateTime<Utc>>,
    ) -> World {
        dovecot();
        let client_id = unique("client");
        let client_secret = unique("client-secret");
        provider.register_client(ClientConfig::confidential(
            client_id.clone(),
            &client_secret,
            REDIRECT,
        ));
        let postern_auth::testing::TempContext { dir, ctx } =
            postern_auth::testing::TempContext::new().await;
        let (_store, _vault) = (ctx.store.clone(), ctx.vault.clone());
        let app_id = AppId::generate();
        let sealed = ctx.vault.seal_str(
            &app_id.client_secret_ref().context(),
            &SecretString::from(client_secret.clone()),
        );
        let app = NewOAuthApp {
            id: app_id.clone(),
            name: "doctor test app".into(),
            provider: preset.into(),
            client_id: client_id.clone(),
            redirect_uri: Some(REDIRECT.into()),
            scopes: vec!["mail".into()],
            tenant: None,
            authorize_url: provider.authorize_url(),
            token_url: provider.token_url(),
            revoke_url: Some(provider.revoke_url()),
            device_authorization_url: None,
            extra_params: Default::default(),
            imap_host: None,
            imap_port: None,
            smtp_host: None,
            smtp_port: None,
            secret_expires_at,
        };
        ctx.store
            .oauth_apps()
            .create(app, Some(&sealed))
            .await
            .unwrap();
        World {
            dir,
            ctx,
            client_id,
            app_id,
            secrets: Mutex::new(Secrets(vec![client_secret])),
        }
    }

    /// The doctor as the server runs it: with the token manager, whose refresh lock the token
    /// step holds.
    pub fn deps(&self) -> DoctorDeps {
        let flows =
            postern_auth::flows::Flows::new(self.ctx.clone(), "http://127.0.0.1:9/cb".to_owned());
        let tokens = postern_auth::token_manager::TokenManager::new(flows, Default::default());
        DoctorDeps {
            ctx: self.ctx.clone(),
            options: options(),
            tokens: None,
        }
        .with_tokens(tokens)
    }

    /// Sets the app's Google publishing status.
    pub async fn set_publishing_status(&self, status: PublishingStatus) {
        let expiry = self.ctx.store.expiry();
        assert!(
            expiry
                .set_publishing_status(&self.app_id, status)
                .await
                .unwrap()
        );
    }

    /// Moves `account`'s consent and the time its tokens were obtained into the past, as if the user
    /// had consented `consented_ago` and the grant were last refreshed `obtained_ago`. The store has
    /// no API for rewriting history, so this writes the row directly.
    pub async fn age_grant(
        &self,
        account: &Account,
        consented_ago: Duration,
        obtained_ago: Duration,
    ) {
        use sqlx::Connection as _;
        let url = format!("sqlite://{}", self.dir.path().join("postern.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let millis_ago =
            |ago: Duration| Utc::now().timestamp_millis() - i64::try_from(ago.as_millis()).unwrap();
        let updated =
            sqlx::query("UPDATE grants SET consented_at = ?, obtained_at = ? WHERE account_id = ?")
                .bind(millis_ago(consented_ago))
                .bind(millis_ago(obtained_ago))
                .bind(account.id.as_str())
                .execute(&mut db)
                .await
                .unwrap();
        assert_eq!(updated.rows_affected(), 1);
        db.close().await.unwrap();
    }

    fn remember(&self, secret: &SecretString) {
        self.secrets
            .lock()
            .unwrap()
            .0
            .push(secret.expose_secret().to_owned());
    }

    /// Every secret this world handed out or stored, including tokens the doctor refreshed.
    pub async fn all_secrets(&self, accounts: &[&Account]) -> Vec<String> {
        let mut all = self.secrets.lock().unwrap().0.clone();
        for account in accounts {
            if let Some((access, refresh)) = self
                .ctx
                .store
                .grants()
                .load_tokens(&account.id)
                .await
                .unwrap()
            {
                let open = |reference: postern_store::SecretRef, sealed| {
                    self.ctx
                        .vault
                        .open_str(&reference.context(), sealed)
                        .unwrap()
                        .expose_secret()
                        .to_owned()
                };
                all.push(open(account.id.access_token_ref(), &access));
                if let Some(refresh) = refresh {
                    all.push(open(account.id.refresh_token_ref(), &refresh));
                }
            }
        }
        all
    }

    async fn create(&self, new: NewAccount, password: Option<&SecretString>) -> Account {
        let sealed = password.map(|password| {
            self.remember(password);
            self.ctx
                .vault
                .seal_str(&new.id.password_ref().context(), password)
        });
        self.ctx
            .store
            .accounts()
            .create(new, sealed.as_ref())
            .await
            .unwrap()
    }

    /// An OAuth account `email` on Dovecot, holding the tokens of `token_owner` minted by `provider`.
    pub async fn oauth_account_with(
        &self,
        provider: &TestOAuthProvider,
        email: &str,
        token_owner: &str,
        mechanism: SaslMechanism,
    ) -> Account {
        let id = AccountId::generate();
        let account = self
            .create(
                NewAccount {
                    id: id.clone(),
                    email: email.to_owned(),
                    name: None,
                    imap: imaps(),
                    smtp: submission(),
                    auth: AccountAuth::OAuth2 {
                        app_id: self.app_id.clone(),
                        mechanism,
                    },
                    state: AccountState::Connected,
                },
                None,
            )
            .await;
        let issued = provider
            .mint_tokens(&self.client_id, token_owner, &["mail"], None)
            .unwrap();
        self.remember(&issued.access_token);
        self.remember(&issued.refresh_token);
        let grant = TokenGrant {
            access_token: issued.access_token,
            refresh_token: Some(issued.refresh_token),
            expires_in: Some(issued.expires_in),
            scope: Some(issued.scope),
        };
        self.ctx.save_grant(&id, &grant, true).await.unwrap();
        account
    }

    /// An OAuth account whose tokens are its own, at the shared provider.
    pub async fn oauth_account(&self, email: &str, mechanism: SaslMechanism) -> Account {
        self.oauth_account_with(provider(), email, email, mechanism)
            .await
    }

    /// A password account; Dovecot knows `email` with `real_password`, Postern stores `stored`.
    pub async fn password_account(
        &self,
        email: &str,
        real_password: &str,
        stored: &str,
    ) -> Account {
        dovecot().add_password_user(email, real_password).unwrap();
        self.remember(&SecretString::from(real_password.to_owned()));
        let new = NewAccount {
            id: AccountId::generate(),
            email: email.to_owned(),
            name: None,
            imap: imaps(),
            smtp: submission(),
            auth: AccountAuth::Password { username: None },
            state: AccountState::Connected,
        };
        self.create(new, Some(&SecretString::from(stored.to_owned())))
            .await
    }
}

/// The step `name`, or a panic showing the whole report.
pub fn step(report: &Report, name: StepName) -> &postern_doctor::Step {
    report
        .step(name)
        .unwrap_or_else(|| panic!("no {} step in\n{}", name.as_str(), report.render_text()))
}

/// Asserts that `name` has `status` and is explained by catalogue entry `id`.
pub fn assert_step(report: &Report, name: StepName, status: Status, id: &str) {
    let found = step(report, name);
    assert_eq!(found.status, status, "{}", report.render_text());
    let known = found.known_error.as_ref().unwrap_or_else(|| {
        panic!(
            "{} has no known error:\n{}",
            name.as_str(),
            report.render_text()
        )
    });
    assert_eq!(known.id, id, "{}", report.render_text());
    assert!(found.fix.is_some(), "{}", report.render_text());
}

/// Asserts every step passed.
pub fn assert_all_pass(report: &Report) {
    for step in &report.steps {
        assert_eq!(
            step.status,
            Status::Pass,
            "{} in\n{}",
            step.name.as_str(),
            report.render_text()
        );
    }
    assert_eq!(report.overall, Status::Pass);
    assert!(!report.has_failures());
}

/// A port nothing listens on.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

/// A plaintext IMAP server that greets with `capabilities`, answers CAPABILITY and LOGOUT, and says
/// BAD to anything else; it records every line it receives.
pub struct ScriptedImap {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<String>>>,
}

impl ScriptedImap {
    pub async fn start(capabilities: &'static str) -> ScriptedImap {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let greeting =
                        format!("* OK [CAPABILITY {capabilities}] scripted server ready\r\n");
                    if write.write_all(greeting.as_bytes()).await.is_err() {
                        return;
                    }
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        log.lock().unwrap().push(line.clone());
                        let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
                        let answer = match command.to_ascii_uppercase().as_str() {
                            "CAPABILITY" => {
                                format!("* CAPABILITY {capabilities}\r\n{tag} OK done\r\n")
                            }
                            "LOGOUT" => format!("* BYE bye\r\n{tag} OK done\r\n"),
                            _ => format!("{tag} BAD not here\r\n"),
                        };
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        ScriptedImap { addr, received }
    }

    pub fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}
