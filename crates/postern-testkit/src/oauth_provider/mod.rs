//! A test OAuth2 authorization server that behaves like Google's and Microsoft's token endpoints.
//!
//! Postern's OAuth code is tested only against this provider, so it reproduces what the real ones do
//! to a client: single-use expiring codes with PKCE S256, refresh tokens issued or withheld by the
//! provider's rules ([`RefreshPolicy`]), optional rotation, `invalid_grant` with Google's
//! "Token has been expired or revoked.", `invalid_client` as a 401, RFC 7662 introspection for
//! Dovecot's `passdb oauth2`, Google-style revocation, the RFC 8628 device flow with
//! `authorization_pending` / `slow_down` / `expired_token`, and switchable [`Fault`]s.
//!
//! Endpoints, under [`TestOAuthProvider::base_url`]: `GET /authorize`, `POST /token`,
//! `GET|POST /introspect`, `POST /revoke`, `POST /device/code`.
//!
//! Non-goal: being a secure or complete authorization server (no ID tokens, no JWTs, no login page:
//! the user named by `login_hint` answers at once, as set by [`TestOAuthProvider::set_user_decision`]).
//!
//! Key decision: the server runs on its own thread with its own runtime, and its state sits behind a
//! std mutex, so one instance ([`TestOAuthProvider::shared`]) serves every `#[tokio::test]` of a test
//! binary and tests adjust it with plain synchronous calls. Tests sharing it isolate themselves by
//! their own client id and user email, and use the per-client controls ([`TestOAuthProvider::set_fault_for`],
//! [`TestOAuthProvider::counters_for`]); a test that needs global faults or global counters starts its
//! own instance with [`TestOAuthProvider::start`].
//!
//! ```no_run
//! use postern_testkit::oauth_provider::{ClientConfig, TestOAuthProvider};
//! use secrecy::ExposeSecret as _;
//!
//! let provider = TestOAuthProvider::shared();
//! provider.register_client(ClientConfig::google_like("app-1", "secret", "http://127.0.0.1:9/cb"));
//! let tokens = provider.mint_tokens("app-1", "alice@example.test", &["https://mail.google.com/"], None)?;
//! assert!(tokens.access_token.expose_secret().starts_with("pat_"));
//! assert_eq!(provider.counters_for("app-1").token_refresh, 0);
//! # Ok::<(), postern_testkit::oauth_provider::ProviderError>(())
//! ```

mod authorize;
mod config;
mod counters;
mod device;
mod error;
mod grants;
mod routes;
mod server;
mod state;
mod wire;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

pub use config::{ClientConfig, Decision, Fault, IssuedTokens, RefreshPolicy};
pub use counters::Counters;
pub use error::ProviderError;

use routes::Shared;
use server::ServerThread;
use state::Subject;

/// A running test OAuth2 provider on `127.0.0.1` and a port of its own.
///
/// Dropping it stops the server (the [`shared`](Self::shared) one lives until the process ends).
pub struct TestOAuthProvider {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _server: ServerThread,
}

impl std::fmt::Debug for TestOAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestOAuthProvider")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TestOAuthProvider {
    /// Starts a provider with no clients; returns once it accepts connections.
    pub fn start() -> Result<Self, ProviderError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(ProviderError::Bind)?;
        let addr = listener.local_addr().map_err(ProviderError::Bind)?;
        let shared = Arc::new(Shared::new(format!("http://{addr}")));
        let server = ServerThread::spawn(listener, routes::router(Arc::clone(&shared)))?;
        tracing::debug!(%addr, "test OAuth provider listening");
        Ok(Self {
            shared,
            addr,
            _server: server,
        })
    }

    /// The provider shared by every test of this test binary, started on first use.
    ///
    /// # Panics
    ///
    /// When the first start fails (no loopback port, no thread): no test could run without it.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<TestOAuthProvider> = OnceLock::new();
        SHARED.get_or_init(|| match Self::start() {
            Ok(provider) => provider,
            Err(error) => panic!("cannot start the shared test OAuth provider: {error:?}"),
        })
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The authorization endpoint (`GET`).
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.shared.base_url)
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.shared.base_url)
    }

    /// The RFC 7662 introspection endpoint, for Dovecot's `introspection_url`.
    pub fn introspect_url(&self) -> String {
        format!("{}/introspect", self.shared.base_url)
    }

    /// The revocation endpoint (Google style: `token=` in a form or the query).
    pub fn revoke_url(&self) -> String {
        format!("{}/revoke", self.shared.base_url)
    }

    /// The RFC 8628 device authorization endpoint.
    pub fn device_code_url(&self) -> String {
        format!("{}/device/code", self.shared.base_url)
    }

    /// Registers a client, replacing any client with the same id (its tokens stay valid).
    pub fn register_client(&self, client: ClientConfig) {
        self.shared.lock().register_client(client);
    }

    /// Creates a grant for `email` without the browser dance and returns its tokens: an access token
    /// living `access_ttl` (or the client's default) and a refresh token, whatever the client's policy.
    pub fn mint_tokens(
        &self,
        client_id: &str,
        email: &str,
        scopes: &[&str],
        access_ttl: Option<Duration>,
    ) -> Result<IssuedTokens, ProviderError> {
        let mut state = self.shared.lock();
        let client = state
            .client(client_id)
            .ok_or_else(|| ProviderError::UnknownClient(client_id.to_owned()))?;
        let scopes: Vec<String> = scopes.iter().map(|scope| (*scope).to_owned()).collect();
        let scope = scopes.join(" ");
        let subject = Subject::User(email.to_owned());
        let grant = state.create_grant(client_id, subject, scopes.clone(), true);
        let ttl = access_ttl.unwrap_or(client.access_ttl);
        let now = SystemTime::now();
        let access_token = state.issue_access_token(grant, scopes, ttl, now);
        let refresh_token = state.issue_refresh_token(grant, client.refresh_ttl, now);
        Ok(IssuedTokens {
            access_token: SecretString::from(access_token),
            refresh_token: SecretString::from(refresh_token),
            expires_in: ttl,
            scope,
        })
    }

    /// Ends the life of every live access token of `email` now (refresh tokens stay usable), as if
    /// an hour had passed; returns how many tokens expired.
    pub fn expire_access_tokens_of(&self, email: &str) -> usize {
        self.shared
            .lock()
            .expire_access_tokens_of(email, SystemTime::now())
    }

    /// Revokes every grant of `email` (user revoked access, password change, 7-day "Testing" expiry):
    /// its tokens die and refreshing answers `invalid_grant`. Returns how many grants were revoked.
    pub fn revoke_grants_of(&self, email: &str) -> usize {
        self.shared.lock().revoke_grants_of(email)
    }

    /// Sets the fault every endpoint plays for every client without a fault of its own.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().set_fault(fault);
    }

    /// Sets the fault played for calls of one client (the client of the token, for `/introspect`
    /// and `/revoke`); `Fault::None` removes the override, so the global fault applies again.
    pub fn set_fault_for(&self, client_id: &str, fault: Fault) {
        self.shared.lock().set_fault_for(client_id, fault);
    }

    /// How `email` answers consent (`/authorize` and `approve_device`); every user approves by default.
    pub fn set_user_decision(&self, email: &str, decision: Decision) {
        self.shared.lock().set_decision(email, decision);
    }

    /// The user `email` enters `user_code` and consents (or refuses, if set to [`Decision::Deny`]).
    pub fn approve_device(&self, user_code: &str, email: &str) -> Result<(), ProviderError> {
        let mut state = self.shared.lock();
        device::decide(&mut state, user_code, Some(email), SystemTime::now())
    }

    /// The user enters `user_code` and refuses: polling then answers `access_denied`.
    pub fn deny_device(&self, user_code: &str) -> Result<(), ProviderError> {
        let mut state = self.shared.lock();
        device::decide(&mut state, user_code, None, SystemTime::now())
    }

    /// Calls received since start or the last [`reset_counters`](Self::reset_counters), all clients.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters()
    }

    /// Calls attributed to one client: exact even while other tests use the shared provider.
    pub fn counters_for(&self, client_id: &str) -> Counters {
        self.shared.lock().counters_for(client_id)
    }

    /// Zeroes every counter, global and per client.
    pub fn reset_counters(&self) {
        self.shared.lock().reset_counters();
    }

    /// Zeroes the counters of one client.
    pub fn reset_counters_for(&self, client_id: &str) {
        self.shared.lock().reset_counters_for(client_id);
    }
}
