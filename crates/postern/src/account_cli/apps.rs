//! `postern app add|list|remove`: OAuth clients registered on the data dir.
//!
//! Non-goal: editing an app in place; the account service has no such operation (remove and add).
//!
//! Key decision: the client secret never comes from an argument. `--client-secret-file` and
//! `--client-secret-env` name where it is. Without them, a redirected standard input is read, and
//! an empty one means a public client (PKCE and device flow, no secret).

use super::ProviderArg;
use super::secret_input::SecretSource;
use crate::config::Config;
use crate::{data_dir, services};
use anyhow::Context;
use clap::Args;
use postern_accounts::{AccountService, NewAppInput};
use std::path::PathBuf;

/// `postern app add`.
#[derive(Args)]
pub struct AddArgs {
    /// The provider preset: endpoints, least-privilege scopes and mail servers.
    #[arg(long, value_enum)]
    provider: ProviderArg,
    /// A name for people.
    #[arg(long)]
    name: String,
    /// The client id the provider issued.
    #[arg(long)]
    client_id: String,
    /// A file holding the client secret.
    #[arg(long, value_name = "FILE", conflicts_with = "client_secret_env")]
    client_secret_file: Option<PathBuf>,
    /// An environment variable holding the client secret.
    #[arg(long, value_name = "VAR")]
    client_secret_env: Option<String>,
    /// Microsoft's tenant (`common`, `organizations`, or a tenant id).
    #[arg(long)]
    tenant: Option<String>,
    /// The redirect URI registered with the provider [default: the server's /oauth/callback].
    /// A loopback URL (http://127.0.0.1:PORT/PATH) lets `account add` take the browser's return
    /// itself.
    #[arg(long, value_name = "URL")]
    redirect_uri: Option<String>,
    /// A scope to request (repeat for several) [default: the preset's IMAP and SMTP scopes].
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// The authorization endpoint (required for `generic`).
    #[arg(long, value_name = "URL")]
    authorize_url: Option<String>,
    /// The token endpoint (required for `generic`).
    #[arg(long, value_name = "URL")]
    token_url: Option<String>,
    /// The RFC 8628 device authorization endpoint (for `account add --device`).
    #[arg(long, value_name = "URL")]
    device_url: Option<String>,
    /// The token revocation endpoint (used when an account is removed).
    #[arg(long, value_name = "URL")]
    revoke_url: Option<String>,
}

/// Registers the app; prints `app <id> <name> registered`, and the resolver's warnings on stderr.
pub async fn add(config: &Config, args: AddArgs) -> anyhow::Result<()> {
    let source = SecretSource::from_flags(args.client_secret_file, args.client_secret_env, false)
        .or_else(SecretSource::stdin_if_redirected);
    let client_secret = match source {
        Some(source) => source.read("the client secret")?,
        None => None,
    };
    let input = NewAppInput {
        name: args.name,
        provider: args.provider.as_str().to_owned(),
        client_id: args.client_id,
        client_secret,
        redirect_uri: args.redirect_uri,
        scopes: (!args.scopes.is_empty()).then_some(args.scopes),
        tenant: args.tenant,
        authorize_url: args.authorize_url,
        token_url: args.token_url,
        revoke_url: args.revoke_url,
        device_authorization_url: args.device_url,
        extra_params: None,
        secret_expires_at: None,
    };
    let registered = service(config)
        .await?
        .register_app(input)
        .await
        .context("the app was not registered")?;
    for warning in &registered.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "app {} {} registered",
        registered.app.id, registered.app.name
    );
    Ok(())
}

/// One line per app: id, provider, name, client id, redirect URI, status.
pub async fn list(config: &Config) -> anyhow::Result<()> {
    for app in service(config).await?.apps().await? {
        let problem = app
            .last_error
            .map(|error| format!(": {error}"))
            .unwrap_or_default();
        println!(
            "{}  {}  {}  client_id={}  redirect_uri={}  {}{problem}",
            app.id,
            app.provider,
            app.name,
            app.client_id,
            app.redirect_uri.as_deref().unwrap_or("(server callback)"),
            app.status.as_str(),
        );
    }
    Ok(())
}

/// Removes the app.
pub async fn remove(config: &Config, id: &str) -> anyhow::Result<()> {
    service(config).await?.remove_app(id).await?;
    println!("app {id} removed");
    Ok(())
}

async fn service(config: &Config) -> anyhow::Result<AccountService> {
    let data = data_dir::open(config).await?;
    services::account_service(config, data.store, data.vault)
}
