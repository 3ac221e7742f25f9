//! `postern account add`: from flags to a verified, connected account.
//!
//! Non-goal: choosing mail servers. The service takes them from the app's provider preset when
//! `--imap` / `--smtp` are not given.
//!
//! Key decision: how the account logs in is fixed before anything is stored. The password is read,
//! the app is found, and the loopback listener is bound (its address goes into the link). A
//! mistake in the flags then stores nothing.

use super::authorize::{self, BrowserReturn};
use super::secret_input::SecretSource;
use super::servers::ServerArgs;
use super::{MechanismArg, ProviderArg};
use crate::config::Config;
use crate::{data_dir, services};
use anyhow::{Context, anyhow, bail};
use clap::Args;
use postern_accounts::{AccountService, AuthInput, NewAccountInput};
use postern_store::{Account, AppId, OAuthApp, SaslMechanism, Store};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// `postern account add`.
#[derive(Args)]
pub struct AddArgs {
    /// The mailbox address.
    #[arg(long)]
    email: String,
    /// A display name.
    #[arg(long)]
    name: Option<String>,
    /// The OAuth app (OAuth2 accounts).
    #[arg(long, value_name = "ID", conflicts_with = "provider")]
    app: Option<String>,
    /// Use the one OAuth app of this provider (OAuth2 accounts).
    #[arg(long, value_enum)]
    provider: Option<ProviderArg>,
    /// Authorize with the device flow (RFC 8628): a code entered on any device, no browser here.
    #[arg(long, conflicts_with = "app_only")]
    device: bool,
    /// App-only access with the app's own credentials (client credentials), no user consent.
    #[arg(long)]
    app_only: bool,
    /// How the access token is sent [default: xoauth2].
    #[arg(long, value_enum)]
    mechanism: Option<MechanismArg>,
    #[command(flatten)]
    password: PasswordArgs,
    /// The login name of a password account, when it is not the email address.
    #[arg(long, requires = "password")]
    username: Option<String>,
    #[command(flatten)]
    servers: ServerArgs,
    /// Seconds to wait for the browser or the device approval.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    timeout: u64,
}

/// Where a password account's password is (exactly one).
#[derive(Args)]
#[group(id = "password", multiple = false,
        conflicts_with_all = ["app", "provider", "device", "app_only", "mechanism"])]
struct PasswordArgs {
    /// A file holding the password (a password account).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// An environment variable holding the password (a password account).
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// Read the password from standard input (a password account).
    #[arg(long)]
    password_stdin: bool,
}

/// How the new account gets its credentials, once it is stored.
enum Next {
    /// The service verified the login already (password, app-only).
    Verified,
    /// The device flow.
    Device,
    /// The browser flow, the return taken here or by the server.
    Browser(BrowserReturn),
}

/// How the account logs in, settled before anything is stored.
struct Login {
    auth: AuthInput,
    next: Next,
    /// The public URL the service's links use (the loopback listener's, when it stands in for
    /// the server's callback).
    public_url: String,
}

/// Adds the account and brings it to `connected`, or removes it again and says why.
pub async fn add(config: &Config, args: AddArgs) -> anyhow::Result<()> {
    let data = data_dir::open(config).await?;
    let login = login(config, &data.store, &args).await?;
    let service = services::account_service_at(config, data.store, data.vault, &login.public_url)?;
    let input = NewAccountInput {
        email: args.email.clone(),
        name: args.name.clone(),
        imap: args.servers.imap()?,
        smtp: args.servers.smtp()?,
        auth: login.auth,
    };
    let created = service
        .create_account(input)
        .await
        .with_context(|| format!("account {} was not added", args.email))?;
    let limit = Duration::from_secs(args.timeout);
    let account = match login.next {
        Next::Verified => created.account,
        Next::Device => {
            let waited = authorize::by_device(&service, &created.account);
            all_or_nothing(&service, &created.account, authorize::within(limit, waited)).await?
        }
        Next::Browser(browser_return) => {
            let link = created
                .authorization
                .context("the account service gave no authorization link")?;
            let waited = authorize::in_browser(&service, &created.account, link, browser_return);
            all_or_nothing(&service, &created.account, authorize::within(limit, waited)).await?
        }
    };
    println!("account {} {} connected", account.id, account.email);
    Ok(())
}

/// Reads the password, or finds the app and, for the browser flow, binds the return's listener.
async fn login(config: &Config, store: &Store, args: &AddArgs) -> anyhow::Result<Login> {
    let password = &args.password;
    let source = SecretSource::from_flags(
        password.password_file.clone(),
        password.password_env.clone(),
        password.password_stdin,
    );
    let mut public_url = config.public_url_for(config.listen);
    if let Some(source) = source {
        let password = source.read_required("the password")?;
        let username = args.username.clone();
        let auth = AuthInput::Password { username, password };
        let next = Next::Verified;
        return Ok(Login {
            auth,
            next,
            public_url,
        });
    }
    let app = find_app(store, args).await?;
    let app_id = app.id.to_string();
    let mechanism = args.mechanism.map(SaslMechanism::from);
    let (auth, next) = if args.app_only {
        (AuthInput::OAuth2App { app_id, mechanism }, Next::Verified)
    } else if args.device {
        (AuthInput::OAuth2 { app_id, mechanism }, Next::Device)
    } else {
        let (browser_return, url) = BrowserReturn::choose(config, &app).await?;
        public_url = url;
        let auth = AuthInput::OAuth2 { app_id, mechanism };
        (auth, Next::Browser(browser_return))
    };
    Ok(Login {
        auth,
        next,
        public_url,
    })
}

/// The authorization's result, or the account removed (its grant revoked) and the reason.
async fn all_or_nothing(
    service: &AccountService,
    account: &Account,
    authorized: impl Future<Output = anyhow::Result<Account>>,
) -> anyhow::Result<Account> {
    let error = match authorized.await {
        Ok(account) => return Ok(account),
        Err(error) => error,
    };
    let removed = service.remove_account(account.id.as_str()).await;
    let fate = match removed {
        Ok(()) => "it was removed again; run the command again to retry".to_owned(),
        Err(removal) => format!(
            "removing it failed too ({removal}); remove it with `postern account remove {}`",
            account.id
        ),
    };
    Err(error.context(format!(
        "account {} was not connected ({fate})",
        account.email
    )))
}

/// The app named by `--app`, or the one app of `--provider`.
async fn find_app(store: &Store, args: &AddArgs) -> anyhow::Result<OAuthApp> {
    if let Some(id) = &args.app {
        let not_found = || anyhow!("no OAuth app with id {id} (see `postern app list`)");
        let app_id = AppId::from_str(id).map_err(|_| not_found())?;
        return store.oauth_apps().get(&app_id).await?.ok_or_else(not_found);
    }
    let Some(provider) = args.provider else {
        bail!(
            "say how {} logs in: --app ID or --provider NAME for OAuth2, or --password-file, \
             --password-env or --password-stdin for a password",
            args.email
        );
    };
    let provider = provider.as_str();
    let mut apps: Vec<OAuthApp> = store
        .oauth_apps()
        .list()
        .await?
        .into_iter()
        .filter(|app| app.provider == provider)
        .collect();
    match apps.len() {
        0 => bail!(
            "no OAuth app of provider {provider} is registered; add one with \
             `postern app add --provider {provider} ...`"
        ),
        1 => Ok(apps.remove(0)),
        _ => {
            let names: Vec<String> = apps
                .iter()
                .map(|app| format!("{} ({})", app.id, app.name))
                .collect();
            bail!(
                "{} OAuth apps of provider {provider}: {}; choose one with --app",
                apps.len(),
                names.join(", ")
            )
        }
    }
}
