//! `accounts-bench`: resident memory per connected, IDLE-ing account in the real `postern serve`
//! (release build), with 1,000 password accounts on the test Dovecot, each its own user.
//!
//! Figures (issue 4, goal 4: ≤ 64 KB resident per IDLE-ing account; an IDLE connection in imapflow
//! costs ~70 KB): per run, the server's RSS with an empty store (the baseline), with the first
//! `--checkpoint` accounts idling, and with all `--accounts` idling, each the median of
//! `--samples` readings a few seconds apart; (all − baseline) / N is the goal's figure, and
//! (all − checkpoint) / (N − checkpoint) the marginal cost once one-time costs are paid. Also the
//! server's established IMAPS connections, the sessions Dovecot counts, threads, and how long
//! creating, reaching IDLE and stopping took. The summary is the median over `--runs`.
//!
//! Non-goal: new-mail latency or sync speed (`sync-bench`); accounts with mail in them.
//!
//! Key decision: the accounts are created through the HTTP API of the binary, as an operator would,
//! and each run starts a fresh server on a fresh data dir, so every run pays the same one-time
//! costs and the baseline is a server that has served nothing yet.

#![forbid(unsafe_code)]

mod fleet;
// Shared with http-bench, which uses every item of it; this bench needs fewer.
#[allow(dead_code)]
#[path = "../http_bench/postern_server.rs"]
mod postern_server;
mod probe;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use postern_bench::{default_work_dir, exit_on_help, median_of};
use postern_testkit::dovecot::{Dovecot, DovecotConfig};

use crate::postern_server::{PosternServer, postern_binary};
use crate::probe::Memory;

const USAGE: &str = "usage: accounts-bench [--accounts N] [--checkpoint K] [--runs R] [--samples S] \
                     [--sample-gap SECS] [--concurrency C] [--postern PATH] [--work-dir DIR]";
/// The goal, in KiB per account.
const GOAL_KIB: f64 = 64.0;
/// Users' domain, to pick the bench's sessions out of `doveadm who`.
const DOMAIN: &str = "accounts-bench.test";
/// Quiet time after the server starts and after the accounts idle, before memory is read.
const SETTLE: Duration = Duration::from_secs(2);

/// The options.
struct Options {
    accounts: usize,
    checkpoint: usize,
    runs: usize,
    samples: usize,
    sample_gap: Duration,
    concurrency: usize,
    postern: Option<PathBuf>,
    work_dir: PathBuf,
}

/// What one run measured.
struct Run {
    baseline: Memory,
    at_checkpoint: Memory,
    all: Memory,
    created_in: Duration,
    idle_after: Duration,
    connections: usize,
    dovecot_sessions: Option<usize>,
    threads: u64,
    stopped_in: Duration,
    /// The 1-minute load average when the run started.
    load_average: String,
}

impl Run {
    fn per_account(&self, accounts: usize) -> f64 {
        self.all.rss.saturating_sub(self.baseline.rss) as f64 / accounts as f64
    }

    fn marginal(&self, accounts: usize, checkpoint: usize) -> f64 {
        self.all.rss.saturating_sub(self.at_checkpoint.rss) as f64
            / (accounts - checkpoint).max(1) as f64
    }

    fn anonymous_per_account(&self, accounts: usize) -> f64 {
        self.all.anonymous.saturating_sub(self.baseline.anonymous) as f64 / accounts as f64
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = parse_options(&args)?;
    let binary = postern_binary(options.postern.as_deref())?;
    let dovecot = Dovecot::start(DovecotConfig::new("http://127.0.0.1:9/introspect"))
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let users = Instant::now();
    fleet::add_users(&dovecot, options.accounts)?;
    println!(
        "Dovecot up in {:?} ({}); {} users added in {:.2} s; postern: {}",
        dovecot.started_in(),
        dovecot.root_dir().display(),
        options.accounts,
        users.elapsed().as_secs_f64(),
        binary.display()
    );
    let mut runs = Vec::new();
    for run in 1..=options.runs {
        let work = tempfile::tempdir_in(&options.work_dir)?;
        let measured = measure(&binary, &dovecot, &options, &work.path().join("data")).await?;
        report_run(run, &options, &measured);
        runs.push(measured);
    }
    print_summary(&options, &runs);
    Ok(())
}

async fn measure(
    binary: &std::path::Path,
    dovecot: &Dovecot,
    options: &Options,
    data_dir: &std::path::Path,
) -> anyhow::Result<Run> {
    // Account creation is an API call per account: lift the per-token rate limit out of the way.
    let limit = "100000";
    let server = PosternServer::start(
        binary,
        data_dir,
        &[
            ("POSTERN_API_RATE_LIMIT_PER_SECOND", limit),
            ("POSTERN_API_RATE_LIMIT_BURST", limit),
        ],
    )
    .await?;
    let outcome = measure_on(&server, dovecot, options).await;
    let stopped = server.stop().await;
    let mut run = outcome?;
    run.stopped_in = stopped?;
    Ok(run)
}

async fn measure_on(
    server: &PosternServer,
    dovecot: &Dovecot,
    options: &Options,
) -> anyhow::Result<Run> {
    let pid = server.pid();
    let load_average = crate::postern_server::load_average();
    let (samples, gap) = (options.samples, options.sample_gap);
    tokio::time::sleep(SETTLE).await;
    let baseline = probe::median_memory(pid, samples, gap).await?;
    let first = Instant::now();
    let mut ids =
        fleet::create_accounts(server, dovecot, 0..options.checkpoint, options.concurrency).await?;
    let mut created_in = first.elapsed();
    fleet::wait_all_idling(server, &ids, options.concurrency).await?;
    tokio::time::sleep(SETTLE).await;
    let at_checkpoint = probe::median_memory(pid, samples, gap).await?;
    let resumed = Instant::now();
    let rest = options.checkpoint..options.accounts;
    ids.extend(fleet::create_accounts(server, dovecot, rest, options.concurrency).await?);
    created_in += resumed.elapsed();
    fleet::wait_all_idling(server, &ids, options.concurrency).await?;
    let idle_after = resumed.elapsed();
    tokio::time::sleep(SETTLE).await;
    let all = probe::median_memory(pid, samples, gap).await?;
    Ok(Run {
        baseline,
        at_checkpoint,
        all,
        created_in,
        idle_after,
        connections: probe::established_to(pid, dovecot.imaps_addr().port())?,
        dovecot_sessions: probe::dovecot_sessions(&dovecot.root_dir().join("dovecot.conf"), DOMAIN),
        threads: probe::threads(pid)?,
        stopped_in: Duration::ZERO,
        load_average,
    })
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        accounts: 1_000,
        checkpoint: 0,
        runs: 3,
        samples: 3,
        sample_gap: Duration::from_secs(3),
        concurrency: 32,
        postern: None,
        work_dir: default_work_dir(),
    };
    let mut checkpoint = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        exit_on_help(arg, USAGE);
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--accounts" => options.accounts = value()?.parse::<usize>()?.max(2),
            "--checkpoint" => checkpoint = Some(value()?.parse::<usize>()?),
            "--runs" => options.runs = value()?.parse::<usize>()?.max(1),
            "--samples" => options.samples = value()?.parse::<usize>()?.max(1),
            "--sample-gap" => {
                options.sample_gap = Duration::from_secs_f64(value()?.parse::<f64>()?.max(0.0));
            }
            "--concurrency" => options.concurrency = value()?.parse::<usize>()?.max(1),
            "--postern" => options.postern = Some(PathBuf::from(value()?)),
            "--work-dir" => options.work_dir = PathBuf::from(value()?),
            _ => bail!("unknown argument {arg}\n{USAGE}"),
        }
    }
    options.checkpoint = checkpoint
        .unwrap_or(options.accounts / 10)
        .clamp(1, options.accounts - 1);
    Ok(options)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn report_run(run: usize, options: &Options, measured: &Run) {
    let (n, k) = (options.accounts, options.checkpoint);
    println!(
        "run {run}: {n} accounts created in {:.1} s, all idling {:.1} s after the second batch began; \
         RSS {:.1} MiB empty -> {:.1} MiB at {k} -> {:.1} MiB at {n}: {:.1} KiB/account \
         (marginal {k}->{n}: {:.1} KiB, anonymous memory {:.1} KiB/account); \
         {} IMAPS connections, Dovecot counts {} sessions; {} threads; stop took {:.2} s; load average at the start {}",
        measured.created_in.as_secs_f64(),
        measured.idle_after.as_secs_f64(),
        mib(measured.baseline.rss),
        mib(measured.at_checkpoint.rss),
        mib(measured.all.rss),
        measured.per_account(n),
        measured.marginal(n, k),
        measured.anonymous_per_account(n),
        measured.connections,
        measured
            .dovecot_sessions
            .map_or_else(|| "n/a".to_owned(), |count| count.to_string()),
        measured.threads,
        measured.stopped_in.as_secs_f64(),
        measured.load_average,
    );
}

fn print_summary(options: &Options, runs: &[Run]) {
    let (n, k) = (options.accounts, options.checkpoint);
    let figure = |pick: &dyn Fn(&Run) -> f64| median_of(runs.iter().map(pick).collect());
    let per_account = figure(&|r| r.per_account(n));
    println!();
    println!(
        "== {n} password accounts connected and IDLE-ing, medians of {} run(s) ({} readings {:?} apart each) ==",
        runs.len(),
        options.samples,
        options.sample_gap
    );
    let rows: [(&str, String); 8] = [
        (
            "RSS, empty store",
            format!("{:.1} MiB", figure(&|r| mib(r.baseline.rss))),
        ),
        (
            "RSS, all accounts idling",
            format!("{:.1} MiB", figure(&|r| mib(r.all.rss))),
        ),
        ("(all - empty) / N", format!("{per_account:.1} KiB")),
        (
            "marginal, checkpoint -> N",
            format!("{:.1} KiB", figure(&|r| r.marginal(n, k))),
        ),
        (
            "anonymous (heap), per account",
            format!("{:.1} KiB", figure(&|r| r.anonymous_per_account(n))),
        ),
        (
            "IMAPS connections (server)",
            format!("{:.0}", figure(&|r| r.connections as f64)),
        ),
        (
            "create all accounts",
            format!("{:.1} s", figure(&|r| r.created_in.as_secs_f64())),
        ),
        (
            "stop (SIGTERM -> exit)",
            format!("{:.2} s", figure(&|r| r.stopped_in.as_secs_f64())),
        ),
    ];
    for (name, value) in rows {
        println!("{name:<32} {value:>12}");
    }
    let verdict = if per_account <= GOAL_KIB {
        "met"
    } else {
        "MISSED"
    };
    println!("{per_account:.1} KB per account (goal ≤ {GOAL_KIB:.0} KB): {verdict}");
}
