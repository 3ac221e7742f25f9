//! `postern account …` and `postern app …`: OAuth apps and mail accounts managed on the data dir
//! directly, whether the server runs or not (SQLite in WAL mode lets both write).
//!
//! The command line does what the API does, through the same account service. It adds what a
//! terminal needs: secrets read from files, variables or standard input (never from arguments), a
//! loopback listener for the browser's return, and one line that says what happened.
//!
//! Non-goal: another implementation of any rule. Checks, flows, verification and revocation are
//! the account service's.
//!
//! Key decision: `account add` is all or nothing. An OAuth2 account that does not end up
//! connected (time limit, declined consent, refused login) is removed again, with its grant
//! revoked. A password account that fails verification is never kept by the service. Either way
//! the operator runs the same command again, and nothing half-made is left behind.

mod accounts;
mod apps;
mod authorize;
mod loopback;
mod progress;
mod secret_input;
mod servers;
mod show;

use crate::config::Config;
use clap::{Subcommand, ValueEnum};
use postern_store::{SaslMechanism, Security};

pub use accounts::AddArgs as AccountAddArgs;
pub use apps::AddArgs as AppAddArgs;

/// `postern account …`.
#[derive(Subcommand)]
pub enum AccountCommand {
    /// Add a mailbox: OAuth2 (browser or device flow, or app-only access) or a password, and
    /// verify its IMAP login. Prints `account <id> <email> connected`.
    Add(Box<AccountAddArgs>),
    /// List the accounts: id, email, state and the latest error.
    List,
    /// Show everything about one account (never its secrets).
    Show {
        /// The account id.
        id: String,
    },
    /// Remove an account, revoking its OAuth2 grant at the provider first.
    Remove {
        /// The account id.
        id: String,
    },
    /// How far the account's sync got: stored / on the server, per mailbox and in total.
    Progress {
        /// The account id.
        id: String,
        /// Follow it with progress bars until every mailbox's initial sync is done.
        #[arg(long)]
        watch: bool,
    },
}

/// `postern app …`.
#[derive(Subcommand)]
pub enum AppCommand {
    /// Register an OAuth app (a client issued by Google, Microsoft, Yahoo or any OAuth2 server).
    /// The client secret is read from a file, a variable or standard input, never an argument.
    Add(Box<AppAddArgs>),
    /// List the OAuth apps.
    List,
    /// Remove an OAuth app (refused while accounts use it).
    Remove {
        /// The app id.
        id: String,
    },
}

/// Runs an account command.
pub async fn account(config: &Config, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Add(args) => accounts::add(config, *args).await,
        AccountCommand::List => show::list(config).await,
        AccountCommand::Show { id } => show::show(config, &id).await,
        AccountCommand::Remove { id } => show::remove(config, &id).await,
        AccountCommand::Progress { id, watch } => progress::progress(config, &id, watch).await,
    }
}

/// Runs an app command.
pub async fn app(config: &Config, command: AppCommand) -> anyhow::Result<()> {
    match command {
        AppCommand::Add(args) => apps::add(config, *args).await,
        AppCommand::List => apps::list(config).await,
        AppCommand::Remove { id } => apps::remove(config, &id).await,
    }
}

/// An OAuth provider preset.
#[derive(Clone, Copy, ValueEnum)]
pub enum ProviderArg {
    /// Gmail and Google Workspace.
    Google,
    /// Outlook.com and Microsoft 365.
    Microsoft,
    /// Yahoo Mail.
    Yahoo,
    /// Any OAuth2 server (give its endpoints).
    Generic,
}

impl ProviderArg {
    fn as_str(self) -> &'static str {
        match self {
            ProviderArg::Google => "google",
            ProviderArg::Microsoft => "microsoft",
            ProviderArg::Yahoo => "yahoo",
            ProviderArg::Generic => "generic",
        }
    }
}

/// How a mail server connection is secured.
#[derive(Clone, Copy, ValueEnum)]
pub enum SecurityArg {
    /// TLS from the first byte.
    Tls,
    /// A plain connection upgraded with STARTTLS.
    Starttls,
    /// No encryption (loopback hosts only).
    None,
}

impl From<SecurityArg> for Security {
    fn from(security: SecurityArg) -> Self {
        match security {
            SecurityArg::Tls => Security::Tls,
            SecurityArg::Starttls => Security::StartTls,
            SecurityArg::None => Security::None,
        }
    }
}

/// The SASL mechanism that carries the access token.
#[derive(Clone, Copy, ValueEnum)]
pub enum MechanismArg {
    /// XOAUTH2 (Google, Microsoft).
    Xoauth2,
    /// OAUTHBEARER, RFC 7628.
    Oauthbearer,
}

impl From<MechanismArg> for SaslMechanism {
    fn from(mechanism: MechanismArg) -> Self {
        match mechanism {
            MechanismArg::Xoauth2 => SaslMechanism::XOAuth2,
            MechanismArg::Oauthbearer => SaslMechanism::OAuthBearer,
        }
    }
}
