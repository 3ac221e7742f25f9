//! `postern serve`: open the data dir, print where everything is, serve the API until a signal.
//!
//! Non-goal: request handling (that is `postern-api`). This module owns the socket, the banner and
//! the graceful shutdown on SIGTERM / SIGINT: in-flight requests finish, new ones are refused.

use crate::config::Config;
use crate::data_dir;
use crate::housekeeping;
use crate::services;
use crate::token;
use anyhow::Context;
use postern_api::{AppState, Scope};
use postern_vault::MasterKeyOrigin;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tower_http::timeout::TimeoutLayer;

/// Runs the server until SIGTERM or SIGINT.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let stop_signals = StopSignals::listen()?;
    let _lock = data_dir::lock_for_serving(&config.data_dir)?;
    let data = data_dir::open(config).await?;
    let first_token = if data.store.api_tokens().count_active().await? == 0 {
        Some(token::create(&data.store, "admin", &[Scope::Admin], None).await?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    print_banner(config, &data.master_origin, address, first_token.as_ref());
    tracing::info!(%address, "serving the API");

    let store = data.store.clone();
    let public_url = config.public_url_for(address);
    let accounts = services::account_service_at(config, data.store, data.vault, &public_url)?;
    let (stop_background, background_stopped) = tokio::sync::watch::channel(false);
    let refresher = tokio::spawn(accounts.tokens().clone().run_refresher(background_stopped));
    let outbox = services::outbox_service(&accounts);
    outbox.recover_abandoned().await?;
    let senders = outbox.spawn_workers(stop_background.subscribe());
    let webhooks = services::webhook_service(config, &accounts)?;
    let deliverers = webhooks.spawn_workers(stop_background.subscribe());
    let sync = services::sync_service(config, &accounts);
    let reconciler = tokio::spawn(reconcile_sync(sync.clone(), stop_background.subscribe()));
    let housekeeper = tokio::spawn(housekeeping::run(
        store.clone(),
        stop_background.subscribe(),
    ));
    let return_url = config
        .oauth
        .return_url
        .as_deref()
        .map(url::Url::parse)
        .transpose()
        .context("oauth.return_url is not a URL")?;
    let rate_limit = postern_api::rate_limit::RateLimit {
        per_second: config.api.rate_limit_per_second,
        burst: config.api.rate_limit_burst,
    };
    let state = AppState::new(store.clone(), accounts, outbox, webhooks, sync.clone())
        .with_callback_redirect(return_url)
        .with_rate_limit(rate_limit);
    let pruner = tokio::spawn(prune_rate_limits(
        state.limiter.clone(),
        stop_background.subscribe(),
    ));
    let timeout = Duration::from_secs(config.api.request_timeout_secs);
    let app = postern_api::router(state).layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        timeout,
    ));
    axum::serve(listener, app)
        .with_graceful_shutdown(stop_signals.received())
        .await
        .context("the API server failed")?;
    let _ = stop_background.send(true);
    let _ = pruner.await;
    senders.join().await;
    let _ = deliverers.await;
    let _ = reconciler.await;
    let _ = housekeeper.await;
    let stopped = sync.shutdown().await;
    tracing::info!(accounts = stopped, "IMAP supervisors stopped");
    if let Err(error) = refresher.await {
        tracing::warn!(%error, "the token refresher ended abnormally");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// What an operator needs on the first screen: where the data is, where the API is, and (once) the token.
fn print_banner(
    config: &Config,
    master_origin: &MasterKeyOrigin,
    address: std::net::SocketAddr,
    first_token: Option<&postern_api::ApiTokenSecret>,
) {
    let data_dir =
        std::fs::canonicalize(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    println!("Postern {} is running.", env!("CARGO_PKG_VERSION"));
    println!("  data dir:     {}", data_dir.display());
    println!("  database:     {}", config.store.url);
    match master_origin {
        MasterKeyOrigin::Environment => println!("  master key:   from POSTERN_MASTER_KEY"),
        MasterKeyOrigin::File(path) => println!("  master key:   {}", path.display()),
        MasterKeyOrigin::Created(path) => println!(
            "  master key:   {} (created now, mode 0600; back it up: without it the stored secrets cannot be read)",
            path.display()
        ),
    }
    println!("  API:          http://{address}/v1 (health: http://{address}/v1/health)");
    if let Some(token) = first_token {
        println!("  admin token:  {}", token.expose());
        println!("                (shown once, now; it is stored only as a hash)");
    }
    println!("  stop:         Ctrl-C or SIGTERM (requests in flight finish); logs go to stderr");
}

/// Starts every account's supervisor (staggered), then every 30 s starts those that appeared or
/// became ready since (accounts added with the CLI while the server runs), until shutdown.
async fn reconcile_sync(
    sync: postern_sync::SyncService,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match sync.start_all().await {
            Ok(started) if started > 0 => {
                tracing::info!(accounts = started, "IMAP supervisors started")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not start IMAP supervisors"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Drops the buckets of idle tokens once a minute, until shutdown.
async fn prune_rate_limits(
    limiter: postern_api::rate_limit::TokenLimiter,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => limiter.prune(),
            _ = stop.changed() => return,
        }
    }
}

/// SIGINT and SIGTERM, listened for from before the banner is printed: a signal sent the moment
/// the banner appears must already mean "finish and stop", not the default "die at once".
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn listen() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    /// Resolves at the first of the two.
    async fn received(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("SIGINT received; finishing in-flight requests"),
            _ = self.terminate.recv() => tracing::info!("SIGTERM received; finishing in-flight requests"),
        }
    }
}
