//! `outbox-bench`: Postern's outbox against a pooled lettre loop, both sending to the same Dovecot
//! submission service (password user, STARTTLS) that relays to an in-process SMTP sink.
//!
//! Figures (issue 5, "Benchmark": goal ≥ 0.8× the peer's throughput): the peer is one pooled
//! `AsyncSmtpTransport` driven by as many concurrent tasks as the outbox has workers; Postern is
//! `OutboxService::submit` for every message with the workers running, timed from the first
//! submit until the sink holds them all. The peer is timed the same way (until the sink holds
//! them all), so both figures end at the same event. Each is the median of `--runs`.
//!
//! Non-goal: OAuth2 sends, retries and Sent copies (turned off here: the peer makes none); the
//! outbox's integration tests cover those.
//!
//! Key decision: both sides start cold in every round (a fresh transport and pool for the peer,
//! a fresh store and connection pool for Postern) and alternate, so connection set-up and machine
//! noise hit them alike.

#![forbid(unsafe_code)]

mod lettre_peer;
mod postern_side;

use std::time::Duration;

use anyhow::{Context as _, bail};
use postern_bench::{exit_on_help, median};
use postern_testkit::dovecot::{Dovecot, DovecotConfig};
use postern_testkit::smtp_sink::SmtpSink;

const USAGE: &str = "usage: outbox-bench [--messages N] [--runs R] [--workers W] [--submitters S] [--drain] [--pool-max-idle P]";
const USER: &str = "bench@example.test";
const PASSWORD: &str = "outbox-bench-password";
const RECIPIENT: &str = "rcpt@example.test";
/// How long the sink may take to hold a round's messages before the round counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// The options.
struct Options {
    messages: usize,
    runs: usize,
    workers: usize,
    submitters: usize,
    drain: bool,
    pool_max_idle: usize,
}

/// What the two sides share in a round.
struct Target<'a> {
    dovecot: &'a Dovecot,
    sink: &'a SmtpSink,
    messages: usize,
    concurrency: usize,
    /// Tasks calling `submit` at once.
    submitters: usize,
    /// Queue everything before starting the workers and time only the sending.
    drain: bool,
    /// The outbox's `pool_max_idle` (idle SMTP sessions kept per account).
    pool_max_idle: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = parse_options(&args)?;
    let sink = SmtpSink::start().map_err(|error| anyhow::anyhow!("{error}"))?;
    let config = DovecotConfig::new("http://127.0.0.1:9/introspect").with_relay(sink.addr());
    let dovecot = Dovecot::start(config).map_err(|error| anyhow::anyhow!("{error}"))?;
    dovecot.add_password_user(USER, PASSWORD)?;
    println!(
        "Dovecot up in {:?}, submission on {}, relaying to the sink on {}; {} messages, {} workers, {} submitters, pool_max_idle {}{}",
        dovecot.started_in(),
        dovecot.submission_addr().context("no submission port")?,
        sink.addr(),
        options.messages,
        options.workers,
        options.submitters,
        options.pool_max_idle,
        if options.drain {
            ", Postern timed on a prefilled queue"
        } else {
            ""
        }
    );
    let target = Target {
        dovecot: &dovecot,
        sink: &sink,
        messages: options.messages,
        concurrency: options.workers,
        submitters: options.submitters,
        drain: options.drain,
        pool_max_idle: options.pool_max_idle,
    };
    let mut peer = Vec::new();
    let mut postern = Vec::new();
    for run in 1..=options.runs {
        let elapsed = lettre_peer::run(&target).await?;
        println!(
            "run {run}: lettre pool: {}",
            rate(options.messages, elapsed)
        );
        peer.push(elapsed);
        let timing = postern_side::run(&target).await?;
        println!(
            "run {run}: Postern outbox: {} (submitting took {:.3} s)",
            rate(options.messages, timing.delivered),
            timing.submitted.as_secs_f64()
        );
        postern.push(timing.delivered);
    }
    print_table(options.messages, &peer, &postern);
    Ok(())
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        messages: 1_000,
        runs: 3,
        workers: postern_outbox::OutboxConfig::default().workers,
        submitters: 1,
        drain: false,
        pool_max_idle: postern_outbox::OutboxConfig::default().pool_max_idle,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        exit_on_help(arg, USAGE);
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--messages" => options.messages = value()?.parse::<usize>()?.max(1),
            "--runs" => options.runs = value()?.parse::<usize>()?.max(1),
            "--workers" => options.workers = value()?.parse::<usize>()?.max(1),
            "--submitters" => options.submitters = value()?.parse::<usize>()?.max(1),
            "--drain" => options.drain = true,
            "--pool-max-idle" => options.pool_max_idle = value()?.parse()?,
            _ => bail!("unknown argument {arg}\n{USAGE}"),
        }
    }
    Ok(options)
}

/// Waits until the sink holds `count` messages; the caller cleared it before the round.
async fn wait_for_sink(sink: &SmtpSink, count: usize) -> anyhow::Result<()> {
    sink.wait_for(count, DELIVERY_TIMEOUT)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}

fn rate(messages: usize, elapsed: Duration) -> String {
    format!(
        "{:.3} s, {:.0} messages/s",
        elapsed.as_secs_f64(),
        per_second(messages, elapsed)
    )
}

fn per_second(messages: usize, elapsed: Duration) -> f64 {
    messages as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

fn print_table(messages: usize, peer: &[Duration], postern: &[Duration]) {
    let (peer, postern) = (median(peer), median(postern));
    let (peer_rate, postern_rate) = (per_second(messages, peer), per_second(messages, postern));
    println!();
    println!(
        "| {:<28} | time (s) | messages/s |",
        format!("{messages} messages (median)")
    );
    println!("|------------------------------|---------:|-----------:|");
    println!(
        "| lettre pooled loop (peer)    | {:>8.3} | {peer_rate:>10.0} |",
        peer.as_secs_f64()
    );
    println!(
        "| Postern outbox               | {:>8.3} | {postern_rate:>10.0} |",
        postern.as_secs_f64()
    );
    let ratio = postern_rate / peer_rate.max(f64::EPSILON);
    let verdict = if ratio >= 0.8 { "met" } else { "NOT met" };
    println!("ratio Postern/peer: {ratio:.2} (goal >= 0.80: {verdict})");
}
