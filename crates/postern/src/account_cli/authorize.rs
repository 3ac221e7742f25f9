//! Getting a user's grant from the command line: the browser flow (authorization code) and the
//! device flow, each waiting under a time limit and telling the user what to do.
//!
//! Non-goal: the flows themselves. The account service runs them; this module only decides where
//! the browser comes back and waits for the result.
//!
//! Key decision: the browser comes back to the app's redirect URI, because the provider accepts no
//! other. If that URI is a free loopback address, this command listens there itself. Otherwise it
//! is the Postern server's callback, and the command watches the account in the store until the
//! server has finished.

use super::loopback::{Bound, Loopback};
use crate::config::{Config, OAuthConfig};
use anyhow::{Context, bail};
use postern_accounts::AccountService;
use postern_auth::flows::AuthorizationLink;
use postern_store::{Account, AccountState, OAuthApp};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use url::Url;

/// How often the store is read while the server finishes an authorization.
const SERVER_POLL: Duration = Duration::from_millis(500);

/// Who takes the browser's return.
pub enum BrowserReturn {
    /// This command, on its loopback listener.
    Here(Loopback),
    /// The Postern server at this callback URI. `busy` is set when that URI is a loopback address
    /// someone else already listens on.
    Server {
        /// The redirect URI.
        uri: Url,
        /// The loopback address that was in use.
        busy: Option<SocketAddr>,
    },
}

impl BrowserReturn {
    /// Where the browser comes back for `app`, and the public URL the account service must use so
    /// that its links carry that redirect URI.
    pub async fn choose(config: &Config, app: &OAuthApp) -> anyhow::Result<(Self, String)> {
        let server_url = config.public_url_for(config.listen);
        let uri = match &app.redirect_uri {
            Some(uri) => uri.clone(),
            None => OAuthConfig::callback_url(&server_url),
        };
        let uri = Url::parse(&uri).with_context(|| format!("the redirect URI {uri} is invalid"))?;
        Ok(match Loopback::bind(&uri).await? {
            Bound::Listening(loopback) => {
                // The server's default callback on port 0 became a real port: links must name it.
                let public_url = match app.redirect_uri {
                    Some(_) => server_url,
                    None => config.public_url_for(loopback.local_addr()?),
                };
                (BrowserReturn::Here(loopback), public_url)
            }
            Bound::Busy(address) => (
                BrowserReturn::Server {
                    uri,
                    busy: Some(address),
                },
                server_url,
            ),
            Bound::NotLoopback => (BrowserReturn::Server { uri, busy: None }, server_url),
        })
    }
}

/// Sends the user to the provider and waits for the browser's return.
pub async fn in_browser(
    service: &AccountService,
    account: &Account,
    link: AuthorizationLink,
    browser_return: BrowserReturn,
) -> anyhow::Result<Account> {
    println!(
        "To let Postern reach {}, open this link in a browser (valid until {}):",
        account.email,
        link.expires_at.format("%H:%M UTC")
    );
    println!("  {}", link.url);
    open_browser(&link.url);
    match browser_return {
        BrowserReturn::Here(loopback) => {
            println!(
                "Waiting for the browser to come back to {} (Ctrl-C to give up)...",
                loopback.url()?
            );
            loopback.receive(service.clone()).await
        }
        BrowserReturn::Server { uri, busy } => {
            if let Some(address) = busy {
                println!(
                    "{address} is in use (a running Postern server?); it will take the return."
                );
            }
            println!(
                "The browser will come back to {uri}; waiting for the Postern server there to finish \
                 (Ctrl-C to give up)..."
            );
            finished_by_server(service, account).await
        }
    }
}

/// The device flow (RFC 8628): shows the page and the code, then waits while the service polls.
pub async fn by_device(service: &AccountService, account: &Account) -> anyhow::Result<Account> {
    let id = account.id.as_str();
    let device = service.start_device(id).await?;
    println!(
        "To let Postern reach {}, open this page on any device and enter the code:",
        account.email
    );
    println!("  page: {}", device.verification_uri);
    println!("  code: {}", device.user_code);
    if let Some(complete) = &device.verification_uri_complete {
        println!("  (or open {complete}, which has the code filled in)");
    }
    println!("Waiting for the approval (Ctrl-C to give up)...");
    Ok(service.complete_device(id, &device).await?)
}

/// Runs `work` for at most `limit`, and not past a Ctrl-C.
pub async fn within<T>(
    limit: Duration,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        result = work => result,
        () = tokio::time::sleep(limit) => {
            bail!("no answer within {} seconds (see --timeout)", limit.as_secs())
        }
        Ok(()) = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

/// Watches the account until the server has verified it, or recorded why not.
async fn finished_by_server(
    service: &AccountService,
    account: &Account,
) -> anyhow::Result<Account> {
    loop {
        let account = service.account(account.id.as_str()).await?;
        match account.state {
            AccountState::Connected | AccountState::Syncing => return Ok(account),
            // A decline leaves the account pending, with the reason as its last error.
            AccountState::PendingAuthorization | AccountState::Connecting
                if account.last_error.is_none() => {}
            state => bail!(
                "{}",
                account
                    .last_error
                    .unwrap_or_else(|| format!("the account is {state}"))
            ),
        }
        tokio::time::sleep(SERVER_POLL).await;
    }
}

/// Opens the link in the desktop's browser when there is a desktop; quietly does nothing otherwise
/// (the link is printed anyway).
fn open_browser(url: &Url) {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        return;
    }
    let spawned = Command::new("xdg-open")
        .arg(url.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Ok(mut child) = spawned {
        // Reaped on a thread, so no zombie is left while this command waits.
        std::thread::spawn(move || child.wait());
    }
}
