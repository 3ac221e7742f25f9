//! `sync-bench`: Postern's initial and incremental sync measured against its peers in one run, on a
//! Dovecot of its own (mailbox on tmpfs, as the test harness sets it up).
//!
//! Figures (see issue 4, "Benchmark"): the MULTIAPPEND fill; the raw `UID FETCH 1:* (... BODY.PEEK[])`
//! over one IMAPS connection (the floor); Postern's full initial sync into a fresh SQLite store, its
//! ratio to the floor and its peak RSS (in a child process); `mbsync` pulling the same INBOX into a
//! maildir with fsync off; a no-change incremental pass. Each is the median of `--runs`.
//!
//! Non-goal: IDLE latency, many-account memory and HTTP latency (goals 3–5 of the issue); the
//! supervisor tests and other tools cover those.
//!
//! Key decision: every peer runs against the same server and mailbox in the same process run, in
//! turn (raw, Postern, mbsync, then again), so machine noise hits them alike.

#![forbid(unsafe_code)]

mod mbsync;
mod peer_fetch;
mod postern_pass;
mod report;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use postern_testkit::dovecot::{Dovecot, DovecotConfig};
use postern_testkit::mailgen::{ImapAppender, MailGen};

use crate::postern_pass::{PASSWORD_ENV, PassArgs, RESULT_PREFIX};
use postern_bench::{default_work_dir, exit_on_help, median};

use crate::report::{Figures, PosternRun};

const USAGE: &str = "usage: sync-bench [--messages N] [--runs R] [--work-dir DIR] [--no-mbsync]\n\
                     \x20      sync-bench postern-pass DB PORT CA_FILE USER NO_CHANGE_RUNS  (child; password in $SYNC_BENCH_PASSWORD)";
const USER: &str = "bench@example.test";
const PASSWORD: &str = "sync-bench-password";
/// Messages generated and appended per MULTIAPPEND round, so the fill never holds 100k in memory.
const FILL_CHUNK: usize = 10_000;
const NO_CHANGE_RUNS: usize = 5;
const MAILGEN_SEED: u64 = 4;

/// The parent's options.
struct Options {
    messages: usize,
    runs: usize,
    work_dir: PathBuf,
    mbsync: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("postern-pass") {
        return postern_pass::run(pass_args(&args[1..])?).await;
    }
    bench(parse_options(&args)?).await
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        messages: 100_000,
        runs: 3,
        work_dir: default_work_dir(),
        mbsync: true,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        exit_on_help(arg, USAGE);
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--messages" => options.messages = value()?.parse()?,
            "--runs" => options.runs = value()?.parse::<usize>()?.max(1),
            "--work-dir" => options.work_dir = PathBuf::from(value()?),
            "--no-mbsync" => options.mbsync = false,
            _ => bail!("unknown argument {arg}\n{USAGE}"),
        }
    }
    Ok(options)
}

fn pass_args(args: &[String]) -> anyhow::Result<PassArgs> {
    let [db, port, ca_file, user, runs] = args else {
        bail!("{USAGE}");
    };
    Ok(PassArgs {
        db: PathBuf::from(db),
        port: port.parse()?,
        ca_file: PathBuf::from(ca_file),
        user: user.clone(),
        no_change_runs: runs.parse()?,
    })
}

async fn bench(options: Options) -> anyhow::Result<()> {
    let dovecot = Dovecot::start(DovecotConfig::new("http://127.0.0.1:9/introspect"))
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    dovecot.add_password_user(USER, PASSWORD)?;
    println!(
        "Dovecot up in {:?} (instance dir {}); work dir {}",
        dovecot.started_in(),
        dovecot.root_dir().display(),
        options.work_dir.display()
    );
    let mut figures = Figures::new(options.messages);
    (figures.fill, figures.fill_bytes) = fill(dovecot.imap_addr(), options.messages).await?;
    println!(
        "fill: {} messages, avg {} B, {:.2} s ({:.0}/s)",
        options.messages,
        figures.fill_bytes / options.messages.max(1) as u64,
        figures.fill.as_secs_f64(),
        options.messages as f64 / figures.fill.as_secs_f64()
    );
    let mbsync = options.mbsync && mbsync::available();
    if options.mbsync && !mbsync {
        println!("mbsync not found: skipping it (bench/sync installs isync)");
    }
    for run in 1..=options.runs {
        measure_round(&dovecot, &options, mbsync, run, &mut figures).await?;
    }
    figures.print();
    Ok(())
}

async fn measure_round(
    dovecot: &Dovecot,
    options: &Options,
    mbsync: bool,
    run: usize,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let raw = peer_fetch::raw_fetch(dovecot.imaps_addr(), dovecot.ca_pem(), USER, PASSWORD).await?;
    check_count("raw FETCH", raw.messages, options.messages)?;
    println!(
        "run {run}: raw UID FETCH: {:.3} s ({} messages, {} MB of bodies)",
        raw.elapsed.as_secs_f64(),
        raw.messages,
        raw.body_bytes / 1_000_000
    );
    figures.raw.push(raw.elapsed);
    for _ in 0..NO_CHANGE_RUNS {
        let status =
            peer_fetch::raw_status(dovecot.imaps_addr(), dovecot.ca_pem(), USER, PASSWORD).await?;
        figures.raw_status.push(status);
    }
    println!(
        "run {run}: raw connect+login+ENABLE QRESYNC+LIST-STATUS: {:.1} ms",
        median(&figures.raw_status).as_secs_f64() * 1000.0
    );

    let postern = postern_child(dovecot, &options.work_dir).await?;
    check_count("Postern", postern.stored as usize, options.messages)?;
    println!(
        "run {run}: Postern initial sync: {:.3} s ({:.1} s CPU), peak RSS {} MB (before the sync {} MB), store {} MB, {} commands; \
         no-change pass {:.1} ms, {} commands (with connect+login {:.1} ms, {} commands)",
        postern.initial.as_secs_f64(),
        postern.initial_cpu_ms as f64 / 1000.0,
        postern.hwm_kb / 1024,
        postern.hwm_before_kb / 1024,
        postern.db_bytes / 1_000_000,
        postern.initial_commands,
        median(&postern.no_change).as_secs_f64() * 1000.0,
        postern.no_change_commands,
        median(&postern.no_change_login).as_secs_f64() * 1000.0,
        postern.no_change_login_commands,
    );
    figures.postern.push(postern);

    if mbsync {
        let args = mbsync::MbsyncArgs {
            port: dovecot.imaps_addr().port(),
            ca_file: dovecot.ca_file(),
            user: USER,
            password: PASSWORD,
        };
        let pulled = mbsync::pull(&args, &options.work_dir)?;
        check_count("mbsync", pulled.messages, options.messages)?;
        println!(
            "run {run}: mbsync (fsync off): {:.3} s",
            pulled.elapsed.as_secs_f64()
        );
        figures.mbsync.push(pulled.elapsed);
    }
    Ok(())
}

/// Appends `count` generated messages to INBOX with MULTIAPPEND; returns the time and the bytes.
async fn fill(addr: SocketAddr, count: usize) -> anyhow::Result<(Duration, u64)> {
    let mut generator = MailGen::new(MAILGEN_SEED, USER).with_attachment_ratio(0.0);
    let started = Instant::now();
    let mut appender = ImapAppender::login(addr, USER, PASSWORD).await?;
    let mut bytes = 0;
    let mut left = count;
    while left > 0 {
        let chunk = generator.raw_messages(left.min(FILL_CHUNK));
        bytes += chunk.iter().map(|m| m.len() as u64).sum::<u64>();
        appender.append_all("INBOX", &[], &chunk).await?;
        left -= chunk.len();
    }
    appender.logout().await?;
    Ok((started.elapsed(), bytes))
}

/// Runs Postern's passes in a child process (so VmHWM is the sync's own) on a fresh store.
async fn postern_child(dovecot: &Dovecot, work_dir: &Path) -> anyhow::Result<PosternRun> {
    let dir = tempfile::tempdir_in(work_dir)?;
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .arg("postern-pass")
        .arg(dir.path().join("postern.db"))
        .arg(dovecot.imaps_addr().port().to_string())
        .arg(dovecot.ca_file())
        .arg(USER)
        .arg(NO_CHANGE_RUNS.to_string())
        .env(PASSWORD_ENV, PASSWORD)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "the Postern child failed ({}): {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let line = stdout
        .lines()
        .find(|line| line.starts_with(RESULT_PREFIX))
        .with_context(|| format!("no result line from the child: {stdout}"))?;
    PosternRun::parse(line)
}

fn check_count(who: &str, got: usize, expected: usize) -> anyhow::Result<()> {
    if got != expected {
        bail!("{who} saw {got} messages, expected {expected}");
    }
    Ok(())
}
