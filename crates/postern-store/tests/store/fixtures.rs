//! Shared set-up for the account-aggregate tests: a store with a vault key, and typical apps and
//! accounts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use postern_store::{
    AccountAuth, AccountId, AccountState, AppId, Endpoint, NewAccount, NewEvent, NewOAuthApp,
    OAuthApp, SaslMechanism, SecretRef, Security, Store,
};
use postern_vault::{KeyId, MasterKey, Sealed, Vault};
use secrecy::ExposeSecret;
use tempfile::TempDir;

/// A migrated store holding vault key 1, and the vault that seals with it.
pub struct Fixture {
    pub _dir: TempDir,
    pub store: Store,
    pub master: MasterKey,
    pub vault: Vault,
}

impl Fixture {
    pub async fn new() -> Fixture {
        let (dir, _path, store) = crate::fresh_store().await;
        let (master, vault) = crate::vault_with_first_key(&store).await;
        Fixture {
            _dir: dir,
            store,
            master,
            vault,
        }
    }

    /// Seals `plaintext` for `secret` (its address is the associated data).
    pub fn seal(&self, secret: &SecretRef, plaintext: &str) -> Sealed {
        self.vault.seal(&secret.context(), plaintext.as_bytes())
    }

    /// Opens `sealed` as stored at `secret`.
    pub fn open(&self, secret: &SecretRef, sealed: &Sealed) -> String {
        let plaintext = self.vault.open(&secret.context(), sealed).unwrap();
        String::from_utf8(plaintext.expose_secret().clone()).unwrap()
    }

    /// The plaintext of the secret stored at `secret`, or `None` if nothing is stored there.
    pub async fn stored(&self, secret: &SecretRef) -> Option<String> {
        let sealed = self.store.secrets().get(secret).await.unwrap()?;
        Some(self.open(secret, &sealed))
    }

    /// Sealed with data key 9, which the store does not hold: storing it must fail.
    pub fn seal_with_unknown_key(&self, secret: &SecretRef, plaintext: &str) -> Sealed {
        let (wrapped, _) = Vault::new_data_key(&self.master, KeyId(9));
        let stray = Vault::unlock(&self.master, &[wrapped], KeyId(9)).unwrap();
        stray.seal(&secret.context(), plaintext.as_bytes())
    }

    /// Creates a Google-like app with client secret `client-secret`.
    pub async fn app(&self, name: &str) -> OAuthApp {
        let new = new_app(name);
        let secret = self.seal(&new.id.client_secret_ref(), "client-secret");
        self.store
            .oauth_apps()
            .create(new, Some(&secret))
            .await
            .unwrap()
    }

    /// Creates an OAuth2 account of `app`, pending authorization.
    pub async fn oauth_account(&self, app: &AppId, email: &str) -> AccountId {
        let new = new_oauth_account(app, email);
        let id = new.id.clone();
        self.store.accounts().create(new, None).await.unwrap();
        id
    }
}

pub fn new_app(name: &str) -> NewOAuthApp {
    NewOAuthApp {
        id: AppId::generate(),
        name: name.to_owned(),
        provider: "google".to_owned(),
        client_id: format!("{name}.apps.googleusercontent.com"),
        redirect_uri: Some("https://postern.example/oauth/callback".to_owned()),
        scopes: vec!["https://mail.google.com/".to_owned()],
        tenant: None,
        authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
        token_url: "https://oauth2.googleapis.com/token".to_owned(),
        revoke_url: Some("https://oauth2.googleapis.com/revoke".to_owned()),
        device_authorization_url: None,
        extra_params: BTreeMap::from([
            ("access_type".to_owned(), "offline".to_owned()),
            ("prompt".to_owned(), "consent".to_owned()),
        ]),
        imap_host: Some("imap.gmail.com".to_owned()),
        imap_port: Some(993),
        smtp_host: Some("smtp.gmail.com".to_owned()),
        smtp_port: Some(465),
        secret_expires_at: Some(millis("2027-03-01T12:00:00.123Z")),
    }
}

pub fn endpoint(host: &str, port: u16, security: Security) -> Endpoint {
    Endpoint {
        host: host.to_owned(),
        port,
        security,
        ca_file: None,
    }
}

pub fn new_oauth_account(app: &AppId, email: &str) -> NewAccount {
    NewAccount {
        id: AccountId::generate(),
        email: email.to_owned(),
        name: Some("Ada".to_owned()),
        imap: endpoint("imap.gmail.com", 993, Security::Tls),
        smtp: endpoint("smtp.gmail.com", 587, Security::StartTls),
        auth: AccountAuth::OAuth2 {
            app_id: app.clone(),
            mechanism: SaslMechanism::OAuthBearer,
        },
        state: AccountState::PendingAuthorization,
    }
}

pub fn new_password_account(email: &str) -> NewAccount {
    NewAccount {
        id: AccountId::generate(),
        email: email.to_owned(),
        name: None,
        imap: Endpoint {
            ca_file: Some("/etc/postern/ca.pem".to_owned()),
            ..endpoint("mail.example.org", 143, Security::None)
        },
        smtp: endpoint("mail.example.org", 465, Security::Tls),
        auth: AccountAuth::Password {
            username: Some("ada".to_owned()),
        },
        state: AccountState::Connecting,
    }
}

pub fn account_event(id: &AccountId, kind: &str) -> NewEvent {
    NewEvent {
        account_id: Some(id.to_string()),
        kind: kind.to_owned(),
        payload: serde_json::json!({ "account_id": id.as_str() }),
    }
}

/// A timestamp with millisecond precision, as the store keeps them.
pub fn millis(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

/// Creates `db` and applies the migrations in the folder `migrations` (a subset of the shipped
/// ones, as an older build had them), recording them as sqlx does.
pub async fn migrate_with(db: &std::path::Path, migrations: &std::path::Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(migrations)
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    pool
}
