//! The state every handler can reach: the store and the services built on it.
//!
//! Non-goal: holding configuration the handlers do not read; the binary resolves configuration and
//! hands down only what the API needs. Cloning is cheap (everything inside is reference-counted).

use crate::metrics::Metrics;
use crate::rate_limit::{RateLimit, TokenLimiter};
use postern_accounts::AccountService;
use postern_events::WebhookService;
use postern_outbox::OutboxService;
use postern_store::Store;
use postern_sync::SyncService;
use url::Url;

/// Shared application state, cloned into every request.
#[derive(Clone)]
pub struct AppState {
    /// Persistence for tokens, accounts and the event log.
    pub store: Store,
    /// OAuth apps and accounts.
    pub accounts: AccountService,
    /// Sending.
    pub outbox: OutboxService,
    /// Webhooks and the event stream.
    pub webhooks: WebhookService,
    /// The per-account IMAP supervisors.
    pub sync: SyncService,
    /// Where the OAuth callback sends the browser when done, instead of showing its own page.
    pub callback_redirect: Option<Url>,
    /// Per-token request limits.
    pub limiter: TokenLimiter,
    /// The Prometheus recorder behind `/metrics`.
    pub metrics: Metrics,
}

impl AppState {
    /// State over an opened store and the services.
    pub fn new(
        store: Store,
        accounts: AccountService,
        outbox: OutboxService,
        webhooks: WebhookService,
        sync: SyncService,
    ) -> Self {
        Self {
            store,
            accounts,
            outbox,
            webhooks,
            sync,
            callback_redirect: None,
            limiter: TokenLimiter::new(RateLimit::default()),
            metrics: Metrics::install(),
        }
    }

    /// Enforces `limit` per API token instead of the default (100/s, burst 200).
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.limiter = TokenLimiter::new(limit);
        self
    }

    /// Sends the browser to `url` after the OAuth callback (with `account_id`, `status` and, on
    /// failure, `error` in the query) instead of showing Postern's own result page.
    pub fn with_callback_redirect(mut self, url: Option<Url>) -> Self {
        self.callback_redirect = url;
        self
    }
}
