//! The token manager's lifecycle work with a real store: the expiry forecast (driven by a fake
//! clock, no sleeping), the daily keep-alive and the catalogue in `last_error` (against the shared
//! test provider), and the audit log written by the flows and the refreshes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] fns: a panic there is a failed test"
)]

mod audit;
mod forecast;
mod keep_alive;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postern_auth::flows::Flows;
use postern_auth::oauth::TokenGrant;
use postern_auth::token_manager::{RefreshPolicy, TokenManager};
use postern_store::{
    AccountAuth, AccountId, AccountState, AppId, AuditEntry, AuditQuery, Endpoint, Event,
    NewAccount, NewOAuthApp, OAuthApp, SaslMechanism, Security, Store,
};
use postern_testkit::oauth_provider::{ClientConfig, TestOAuthProvider};
use postern_vault::Vault;
use secrecy::SecretString;
use tempfile::TempDir;

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

fn provider() -> &'static TestOAuthProvider {
    TestOAuthProvider::shared()
}

/// A unique name per call, so tests sharing the provider never see each other's clients or users.
fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temp store and vault, the flows and a token manager over them.
struct World {
    _dir: TempDir,
    store: Store,
    vault: Arc<Vault>,
    flows: Flows,
    tokens: TokenManager,
}

impl World {
    async fn new() -> World {
        let postern_auth::testing::TempContext { dir, ctx } =
            postern_auth::testing::TempContext::new().await;
        let (store, vault) = (ctx.store.clone(), ctx.vault.clone());
        let flows = Flows::new(ctx, REDIRECT.to_owned());
        let tokens = TokenManager::new(flows.clone(), RefreshPolicy::default());
        World {
            _dir: dir,
            store,
            vault,
            flows,
            tokens,
        }
    }

    /// An app of `provider` pointing at the shared test provider, with client `client_id`.
    async fn app(&self, provider_name: &str, client_id: &str, secret: &str) -> OAuthApp {
        let id = AppId::generate();
        let sealed = self.vault.seal_str(
            &id.client_secret_ref().context(),
            &SecretString::from(secret),
        );
        let new = NewOAuthApp {
            id,
            name: format!("{provider_name} app"),
            provider: provider_name.to_owned(),
            client_id: client_id.to_owned(),
            redirect_uri: Some(REDIRECT.to_owned()),
            scopes: vec!["mail".to_owned()],
            tenant: None,
            authorize_url: provider().authorize_url(),
            token_url: provider().token_url(),
            revoke_url: Some(provider().revoke_url()),
            device_authorization_url: Some(provider().device_code_url()),
            extra_params: BTreeMap::new(),
            imap_host: None,
            imap_port: None,
            smtp_host: None,
            smtp_port: None,
            secret_expires_at: None,
        };
        self.store
            .oauth_apps()
            .create(new, Some(&sealed))
            .await
            .unwrap()
    }

    /// An app registered with the shared provider too (a confidential generic client).
    async fn live_app(&self) -> (OAuthApp, String) {
        let client_id = unique("client");
        let secret = unique("secret");
        provider().register_client(ClientConfig::confidential(&client_id, &secret, REDIRECT));
        (self.app("generic", &client_id, &secret).await, client_id)
    }

    /// A connected OAuth2 account of `app`.
    async fn account(&self, app: &AppId, email: &str) -> AccountId {
        let endpoint = |port| Endpoint {
            host: "localhost".to_owned(),
            port,
            security: Security::Tls,
            ca_file: None,
        };
        let new = NewAccount {
            id: AccountId::generate(),
            email: email.to_owned(),
            name: None,
            imap: endpoint(993),
            smtp: endpoint(465),
            auth: AccountAuth::OAuth2 {
                app_id: app.clone(),
                mechanism: SaslMechanism::XOAuth2,
            },
            state: AccountState::Connected,
        };
        let id = new.id.clone();
        self.store.accounts().create(new, None).await.unwrap();
        id
    }

    /// Stores a consented grant with made-up tokens (for tests that never call the provider).
    async fn consent(&self, account: &AccountId) -> DateTime<Utc> {
        let grant = TokenGrant {
            access_token: SecretString::from("access-not-used"),
            refresh_token: Some(SecretString::from("refresh-not-used")),
            expires_in: Some(Duration::from_secs(3600)),
            scope: None,
        };
        let stored = self.flows.context().save_grant(account, &grant, true).await;
        stored.unwrap().consented_at.unwrap()
    }

    /// Stores a grant minted by the shared provider for `email`, its access token living `ttl`.
    async fn minted(&self, client_id: &str, account: &AccountId, email: &str, ttl: Duration) {
        let issued = provider()
            .mint_tokens(client_id, email, &["mail"], Some(ttl))
            .unwrap();
        let grant = TokenGrant {
            access_token: issued.access_token,
            refresh_token: Some(issued.refresh_token),
            expires_in: Some(issued.expires_in),
            scope: Some(issued.scope),
        };
        let stored = self.flows.context().save_grant(account, &grant, true).await;
        stored.unwrap();
    }

    async fn events(&self) -> Vec<Event> {
        self.store.events().list_after(0, 1000, None).await.unwrap()
    }

    async fn events_of_kind(&self, kind: &str) -> Vec<Event> {
        let mut events = self.events().await;
        events.retain(|event| event.kind == kind);
        events
    }

    async fn audit(&self) -> Vec<AuditEntry> {
        let query = AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        };
        self.store.audit().list(query).await.unwrap()
    }
}
