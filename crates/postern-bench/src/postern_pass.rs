//! Postern's side, run in a child process of its own so its peak RSS (VmHWM) is the sync's alone:
//! a fresh SQLite store, one password account, a full initial sync (`BodiesMode::Full`) via
//! [`sync_account`], then no-change passes over the synced mailbox.
//!
//! Non-goal: the supervisor. It would add IDLE and scheduling around the same `sync_account` call;
//! what is measured here is the engine and the store.
//!
//! Key decision: the child prints one `key=value` line the parent parses, rather than sharing types
//! through a file, so the child stays a plain `sync-bench postern-pass ...` command one can run by hand.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use postern_bench::password_account;
use postern_store::{AccountId, Store};
use postern_sync::{
    BodiesMode, ImapEndpoint, ImapSession, Login, NoObserver, SyncOptions, Timeouts, authenticate,
    connect, sync_account,
};
use secrecy::SecretString;

/// The environment variable carrying the account's password to the child.
pub const PASSWORD_ENV: &str = "SYNC_BENCH_PASSWORD";
/// The first word of the child's result line.
pub const RESULT_PREFIX: &str = "POSTERN";

/// Where and who the child syncs.
pub struct PassArgs {
    pub db: PathBuf,
    pub port: u16,
    pub ca_file: PathBuf,
    pub user: String,
    pub no_change_runs: usize,
}

/// Runs the child's passes and prints its result line.
pub async fn run(args: PassArgs) -> anyhow::Result<()> {
    let password = std::env::var(PASSWORD_ENV).context("no password in the environment")?;
    let store = Store::open_sqlite(&args.db).await?;
    let account_id = create_account(&store, &args).await?;
    let options = SyncOptions {
        bodies: BodiesMode::Full,
        ..SyncOptions::default()
    };
    let login = Login::Password {
        user: args.user.clone(),
        password: SecretString::from(password),
    };
    let endpoint = ImapEndpoint::new("localhost", args.port, postern_sync::Security::Tls)
        .with_ca_file(&args.ca_file);
    let hwm_before = vm_hwm_kb();

    let started = Instant::now();
    let mut session = open(&endpoint, &login).await?;
    let initial_report =
        sync_account(&mut session, &store, &account_id, &options, &NoObserver).await?;
    let initial = started.elapsed();
    let initial_cpu = cpu_time_ms();
    let hwm_after = vm_hwm_kb();
    let stored = stored_messages(&store, &account_id).await?;

    // Same session: the pass alone. A new session each time: what a periodic resync costs.
    let mut warm = Vec::new();
    let mut no_change_commands = 0;
    for _ in 0..args.no_change_runs {
        let started = Instant::now();
        let report = sync_account(&mut session, &store, &account_id, &options, &NoObserver).await?;
        warm.push(started.elapsed());
        no_change_commands = report.commands;
    }
    let _ = session.logout().await;
    let mut cold = Vec::new();
    let mut cold_commands = 0;
    for _ in 0..args.no_change_runs {
        let started = Instant::now();
        let mut session = open(&endpoint, &login).await?;
        let report = sync_account(&mut session, &store, &account_id, &options, &NoObserver).await?;
        cold.push(started.elapsed());
        cold_commands = report.commands;
        let _ = session.logout().await;
    }
    println!(
        "{RESULT_PREFIX} initial_ms={} stored={stored} hwm_before_kb={hwm_before} hwm_kb={hwm_after} \
         nochange_ms={} nochange_login_ms={} db_bytes={} initial_cpu_ms={initial_cpu} initial_commands={} nochange_commands={no_change_commands} nochange_login_commands={cold_commands}",
        initial.as_millis(),
        millis_list(&warm),
        millis_list(&cold),
        db_size(&args.db),
        initial_report.commands,
    );
    Ok(())
}

async fn open(endpoint: &ImapEndpoint, login: &Login) -> anyhow::Result<ImapSession> {
    let timeouts = Timeouts {
        connect: Duration::from_secs(10),
        handshake: Duration::from_secs(10),
        command: Duration::from_secs(120),
    };
    let client = connect(endpoint, &timeouts).await?;
    Ok(authenticate(client, login).await?)
}

async fn create_account(store: &Store, args: &PassArgs) -> anyhow::Result<AccountId> {
    let account_id = AccountId::generate();
    let ca_file = Some(args.ca_file.display().to_string());
    let account = password_account(account_id.clone(), &args.user, args.port, ca_file);
    store.accounts().create(account, None).await?;
    Ok(account_id)
}

async fn stored_messages(store: &Store, account_id: &AccountId) -> anyhow::Result<u64> {
    let mut total = 0;
    for mailbox in store.mailboxes().list(account_id).await? {
        total += store.messages().count(mailbox.id).await?;
    }
    Ok(total)
}

/// This process's peak resident set (VmHWM), in KB; 0 when /proc is unreadable.
fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) this process used so far, in ms, from `/proc/self/stat` (clock ticks of
/// 10 ms, the Linux default); 0 when unreadable.
fn cpu_time_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces; the fields counted here come after its closing parenthesis.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks =
        |index: usize| -> u64 { fields.get(index).and_then(|f| f.parse().ok()).unwrap_or(0) };
    // utime and stime are fields 14 and 15 of proc_pid_stat(5); after the name, field 3 is index 0.
    (ticks(11) + ticks(12)) * 10
}

/// The store's size on disk, WAL included.
fn db_size(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|meta| meta.len())
        .sum()
}

fn millis_list(durations: &[Duration]) -> String {
    durations
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
        .collect::<Vec<_>>()
        .join(",")
}
