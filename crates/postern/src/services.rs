//! Builds the long-lived services from the configuration and an opened data dir.
//!
//! Non-goal: running them; `serve` starts the background tasks and the CLI commands call them once.

use crate::config::{Config, OAuthConfig};
use anyhow::Context;
use postern_accounts::AccountService;
use postern_auth::context::AuthContext;
use postern_auth::token_manager::RefreshPolicy;
use postern_store::Store;
use postern_vault::Vault;
use std::sync::Arc;
use std::time::Duration;

/// The account service for CLI commands (which serve nothing: links point at the configured
/// public URL, or the configured listen address).
pub fn account_service(
    config: &Config,
    store: Store,
    vault: Vault,
) -> anyhow::Result<AccountService> {
    account_service_at(config, store, vault, &config.public_url_for(config.listen))
}

/// The account service (and through it the flows and the token manager), its OAuth links
/// pointing at `public_url`.
pub fn account_service_at(
    config: &Config,
    store: Store,
    vault: Vault,
    public_url: &str,
) -> anyhow::Result<AccountService> {
    let http =
        postern_auth::oauth::http_client().context("cannot build the HTTP client for OAuth")?;
    let ctx = AuthContext {
        store,
        vault: Arc::new(vault),
        http,
    };
    let policy = RefreshPolicy {
        margin: Duration::from_secs(config.oauth.refresh_margin_secs),
        grace: Duration::from_secs(config.oauth.refresh_grace_secs),
        ..RefreshPolicy::default()
    };
    Ok(AccountService::new(
        ctx,
        OAuthConfig::callback_url(public_url),
        policy,
    ))
}

/// The outbox, sharing the account service's store, vault and token manager.
pub fn outbox_service(accounts: &AccountService) -> postern_outbox::OutboxService {
    let ctx = accounts.flows().context();
    postern_outbox::OutboxService::new(
        ctx.store.clone(),
        ctx.vault.clone(),
        accounts.tokens().clone(),
        postern_outbox::OutboxConfig::default(),
    )
}
