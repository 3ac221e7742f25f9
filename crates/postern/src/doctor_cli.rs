//! `postern doctor`: diagnose an account, or a pair of servers before any account exists.
//!
//! Prints the report as text (or JSON with `--json`) and exits non-zero when any step failed, so
//! scripts can gate on it. The report never contains a token, password or client secret.
//!
//! Non-goal: fixing anything; the report says what to fix.

use crate::config::Config;
use crate::{data_dir, services};
use anyhow::{Context, bail};
use postern_doctor::{DoctorDeps, DoctorOptions, HostPort, Protocol, Report};
use std::path::PathBuf;

/// What `postern doctor` was asked.
#[derive(clap::Args)]
pub struct DoctorArgs {
    /// The account (id or email) to diagnose.
    account: Option<String>,
    /// An IMAP server to check without an account: HOST:PORT (993 TLS, 143 STARTTLS).
    #[arg(long, conflicts_with = "account")]
    imap: Option<String>,
    /// An SMTP server to check without an account: HOST:PORT (465 TLS, 587 STARTTLS).
    #[arg(long, conflicts_with = "account")]
    smtp: Option<String>,
    /// The address to check the send path for (with --smtp).
    #[arg(long, conflicts_with = "account")]
    email: Option<String>,
    /// A PEM file of CA certificates to trust (self-hosted servers).
    #[arg(long, conflicts_with = "account")]
    ca_file: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the doctor; `Ok(true)` when some step failed.
pub async fn run(args: DoctorArgs, config: &Config) -> anyhow::Result<bool> {
    let report = match &args.account {
        Some(account) => diagnose_account(account, config).await?,
        None => diagnose_endpoints(&args).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(report.has_failures())
}

async fn diagnose_account(wanted: &str, config: &Config) -> anyhow::Result<Report> {
    let data = data_dir::open(config).await?;
    let service = services::account_service(config, data.store, data.vault)?;
    let accounts = service.accounts().await?;
    let account = accounts
        .into_iter()
        .find(|account| account.id.as_str() == wanted || account.email.eq_ignore_ascii_case(wanted))
        .with_context(|| {
            format!("no account with id or email {wanted:?} (see `postern account list`)")
        })?;
    let deps =
        DoctorDeps::new(service.flows().context().clone()).with_tokens(service.tokens().clone());
    Ok(postern_doctor::diagnose_account(&account, &deps).await)
}

async fn diagnose_endpoints(args: &DoctorArgs) -> anyhow::Result<Report> {
    if args.imap.is_none() && args.smtp.is_none() {
        bail!("name an account, or servers with --imap HOST:PORT and/or --smtp HOST:PORT");
    }
    let imap = args
        .imap
        .as_deref()
        .map(|text| HostPort::parse(text, Protocol::Imap))
        .transpose()?;
    let smtp = args
        .smtp
        .as_deref()
        .map(|text| HostPort::parse(text, Protocol::Smtp))
        .transpose()?;
    Ok(postern_doctor::diagnose_endpoints(
        imap,
        smtp,
        args.email.as_deref(),
        args.ca_file.as_deref(),
        &DoctorOptions::default(),
    )
    .await)
}
