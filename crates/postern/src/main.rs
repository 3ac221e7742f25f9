//! The `postern` binary: command line, configuration, wiring. No business logic lives here.
//!
//! Each subcommand resolves the configuration, opens what it needs and calls into the library
//! crates. Errors reach this edge as `anyhow` chains and are printed whole (`{:#}`), so the operator
//! sees the cause ("cannot decrypt: master key does not match this data dir"), not just "failed".
#![forbid(unsafe_code)]

mod account_cli;
mod config;
mod data_dir;
mod doctor_cli;
mod housekeeping;
mod logging;
mod serve;
mod services;
mod token;
mod vault;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{Config, Overrides};
use postern_api::Scope;
use std::path::PathBuf;
use std::process::ExitCode;

/// Postern: reach your users' mailboxes (Gmail, Microsoft 365, any IMAP/SMTP server) over one REST API.
#[derive(Parser)]
#[command(name = "postern", version, about)]
struct Cli {
    /// Configuration file [default: ./postern.toml when it exists]
    #[arg(long, global = true, env = "POSTERN_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (database, generated master key) [default: ./data]
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// API listen address [default: 127.0.0.1:7080]
    #[arg(long, global = true)]
    listen: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage API tokens on the data dir (works while the server runs).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage mail accounts on the data dir (works while the server runs).
    Account {
        #[command(subcommand)]
        command: account_cli::AccountCommand,
    },
    /// Manage OAuth apps on the data dir (works while the server runs).
    App {
        #[command(subcommand)]
        command: account_cli::AppCommand,
    },
    /// Diagnose an account (or servers before an account exists), step by step, with fixes.
    Doctor(doctor_cli::DoctorArgs),
    /// Manage the encryption keys of the data dir.
    Vault {
        #[command(subcommand)]
        command: VaultCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Show,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once.
    Create {
        /// A name that says who uses the token.
        #[arg(long)]
        name: String,
        /// A scope the token holds (repeat for several): admin, accounts:read, accounts:write,
        /// messages:read, messages:write, send, webhooks, metrics.
        #[arg(long = "scope", required = true)]
        scopes: Vec<Scope>,
        /// Days until the token expires [default: never].
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List the tokens that are not revoked.
    List,
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Generate a new data key and re-encrypt every stored secret under it (stop the server first).
    RotateKey,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        config_file: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        listen: cli.listen.clone(),
    };
    let config = match Config::load(&overrides) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("postern: {errors}");
            return ExitCode::from(2);
        }
    };
    logging::init(&config.log, config.log_format);
    match run(cli.command, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<ReportedFailure>() => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("postern: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A failure the command already reported in its own output (the doctor's failed steps): the
/// exit code says it, nothing more is printed.
#[derive(Debug)]
struct ReportedFailure;

impl std::fmt::Display for ReportedFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the report above has failed steps")
    }
}

impl std::error::Error for ReportedFailure {}

fn run(command: Command, config: &Config) -> anyhow::Result<()> {
    if let Command::Config {
        command: ConfigCommand::Show,
    } = command
    {
        if let Some(path) = &config.source_file {
            println!("# read from {}", path.display());
        }
        print!("{}", config.to_redacted_toml());
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(run_async(command, config))
}

async fn run_async(command: Command, config: &Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve::run(config).await,
        Command::Doctor(args) => {
            if doctor_cli::run(args, config).await? {
                return Err(anyhow::Error::new(ReportedFailure));
            }
            Ok(())
        }
        Command::Config { .. } => Ok(()),
        Command::Token { command } => {
            let data = data_dir::open(config).await?;
            match command {
                TokenCommand::Create {
                    name,
                    scopes,
                    expires_in_days,
                } => {
                    let expires_at = expires_in_days
                        .map(|days| chrono::Utc::now() + chrono::TimeDelta::days(i64::from(days)));
                    let secret = token::create(&data.store, &name, &scopes, expires_at).await?;
                    println!("{}", secret.expose());
                    eprintln!("token {name:?} created; it is shown only this once");
                    Ok(())
                }
                TokenCommand::List => token::list(&data.store).await,
            }
        }
        Command::Account { command } => account_cli::account(config, command).await,
        Command::App { command } => account_cli::app(config, command).await,
        Command::Vault {
            command: VaultCommand::RotateKey,
        } => vault::rotate_key(data_dir::open(config).await?).await,
    }
}
