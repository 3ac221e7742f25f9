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
    let service = account_service_at(config, store, vault, &config.public_url_for(config.listen))?;
    // What the CLI does is recorded in the audit log as done by the CLI.
    Ok(service.with_actor(postern_store::ACTOR_CLI))
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

/// Webhooks and the event stream, woken by the store whenever events are committed.
pub fn webhook_service(
    config: &Config,
    accounts: &AccountService,
) -> anyhow::Result<postern_events::WebhookService> {
    let ctx = accounts.flows().context();
    let webhook_config = postern_events::WebhookConfig {
        allow_private_targets: config.webhooks.allow_private_targets,
        max_age: Duration::from_secs(config.webhooks.retry_for_secs),
        ..postern_events::WebhookConfig::default()
    };
    postern_events::WebhookService::new(
        ctx.store.clone(),
        ctx.vault.clone(),
        webhook_config,
        ctx.store.events_appended(),
    )
    .context("cannot start the webhook service")
}

/// The IMAP supervisors of every account, logging in through the account service's credentials.
pub fn sync_service(config: &Config, accounts: &AccountService) -> postern_sync::SyncService {
    let store = accounts.flows().context().store.clone();
    postern_sync::SyncService::new(store, accounts.credentials().clone(), sync_config(config))
}

fn sync_config(config: &Config) -> postern_sync::SyncConfig {
    use crate::config::raw::BodiesSetting;
    use postern_sync::engine::BodiesMode;
    let defaults = postern_sync::SyncConfig::default();
    let since = config
        .sync
        .window_days
        .map(|days| (chrono::Utc::now() - chrono::TimeDelta::days(i64::from(days))).date_naive());
    let mut sync = defaults.sync.clone();
    sync.bodies = match config.sync.bodies {
        BodiesSetting::OnDemand => BodiesMode::OnDemand,
        BodiesSetting::Cache => BodiesMode::Cache,
        BodiesSetting::Full => BodiesMode::Full,
    };
    sync.window.since = since;
    sync.window.newest = config.sync.newest_per_mailbox;
    postern_sync::SyncConfig {
        sync,
        resync_interval: Duration::from_secs(config.sync.resync_interval_secs),
        ..defaults
    }
}
