//! `postern account list|show|remove`: what the data dir knows about its accounts.
//!
//! Non-goal: machine-readable output; the API serves JSON. These lines are for people (and `awk`:
//! the id is always the first field of `list`).
//!
//! Key decision: nothing secret is ever printed, because nothing secret is ever loaded. `show`
//! reads the account and its grant metadata (expiry, scope), never the sealed tokens or password.

use crate::config::Config;
use crate::{data_dir, services};
use chrono::{DateTime, Utc};
use postern_accounts::AccountService;
use postern_store::{Account, AccountAuth, Endpoint, Grant};

/// The longest error `list` shows; `show` has the whole of it.
const SHORT_ERROR: usize = 72;

/// One line per account: id, email, state and the start of the latest error.
pub async fn list(config: &Config) -> anyhow::Result<()> {
    for account in service(config).await?.accounts().await? {
        let error = account.last_error.as_deref().map(short).unwrap_or_default();
        println!(
            "{}  {}  {}  {error}",
            account.id, account.email, account.state
        );
    }
    Ok(())
}

/// Every field of one account and of its grant.
pub async fn show(config: &Config, id: &str) -> anyhow::Result<()> {
    let service = service(config).await?;
    let account = service.account(id).await?;
    let grant = service.grant(&account).await?;
    print!("{}", describe(&account, grant.as_ref(), Utc::now()));
    Ok(())
}

/// Removes the account; the service revokes its grant at the provider first.
pub async fn remove(config: &Config, id: &str) -> anyhow::Result<()> {
    service(config).await?.remove_account(id).await?;
    println!("account {id} removed");
    Ok(())
}

async fn service(config: &Config) -> anyhow::Result<AccountService> {
    let data = data_dir::open(config).await?;
    services::account_service(config, data.store, data.vault)
}

fn describe(account: &Account, grant: Option<&Grant>, now: DateTime<Utc>) -> String {
    let mut lines = vec![
        ("id", account.id.to_string()),
        ("email", account.email.clone()),
        ("name", or_dash(account.name.as_deref())),
        ("state", account.state.to_string()),
        ("last error", or_dash(account.last_error.as_deref())),
        ("auth", auth(&account.auth)),
        ("imap", endpoint(&account.imap)),
        ("smtp", endpoint(&account.smtp)),
        ("created", account.created_at.to_rfc3339()),
        ("updated", account.updated_at.to_rfc3339()),
    ];
    if let Some(grant) = grant {
        let expiry = grant.access_expires_at.map_or_else(
            || "unknown".to_owned(),
            |at| format!("{} ({})", at.to_rfc3339(), relative(at, now)),
        );
        lines.extend([
            ("token expires", expiry),
            ("token scope", or_dash(grant.scope.as_deref())),
            ("authorized", at_or_never(grant.consented_at)),
            ("refreshed", at_or_never(grant.last_refreshed_at)),
            ("refresh failures", grant.refresh_failures.to_string()),
        ]);
    }
    lines
        .into_iter()
        .map(|(label, value)| format!("{:<17} {value}\n", format!("{label}:")))
        .collect()
}

fn auth(auth: &AccountAuth) -> String {
    match auth {
        AccountAuth::OAuth2 { app_id, mechanism } => {
            format!("oauth2 (app {app_id}, {mechanism})")
        }
        AccountAuth::OAuth2App { app_id, mechanism } => {
            format!("oauth2_app (app {app_id}, {mechanism})")
        }
        AccountAuth::Password { username } => match username {
            Some(username) => format!("password (user {username})"),
            None => "password (user: the email address)".to_owned(),
        },
    }
}

fn endpoint(endpoint: &Endpoint) -> String {
    let ca = endpoint
        .ca_file
        .as_deref()
        .map(|file| format!(", CA file {file}"))
        .unwrap_or_default();
    format!(
        "{}:{} ({}{ca})",
        endpoint.host, endpoint.port, endpoint.security
    )
}

fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (at - now).num_minutes();
    match minutes {
        0.. => format!("in {minutes} min"),
        _ => format!("{} min ago", -minutes),
    }
}

fn at_or_never(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "never".to_owned(), |at| at.to_rfc3339())
}

fn or_dash(text: Option<&str>) -> String {
    text.unwrap_or("-").to_owned()
}

/// The first line of `text`, cut at a character boundary.
fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(SHORT_ERROR) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_to_their_first_line_and_a_length() {
        assert_eq!(short("refused\nmore"), "refused");
        let long = "é".repeat(100);
        assert_eq!(short(&long), format!("{}...", "é".repeat(SHORT_ERROR)));
    }

    #[test]
    fn expiry_is_told_relative_to_now() {
        let now = Utc::now();
        assert_eq!(
            relative(now + chrono::TimeDelta::minutes(59), now),
            "in 59 min"
        );
        assert_eq!(
            relative(now - chrono::TimeDelta::minutes(3), now),
            "3 min ago"
        );
    }
}
