//! `stage-bench`: what each stage of a full initial sync costs a message, one stage at a time on
//! one thread, with no server and no other stage competing for the CPU.
//!
//! Stages, in the order a message goes through them: `wire` (imap-proto reads the FETCH
//! response and the body is copied out of the buffer), `parse` (mail-parser: envelope, snippet,
//! MIME summary, text for the index), `prepare` (the store's encoding before the transaction) and
//! `store` (the SQLite transaction: rows, bodies, full-text index, events, commit). The messages
//! are the ones `sync-bench` appends to Dovecot (same generator, same seed).
//!
//! Non-goal: the end-to-end figure; `sync-bench` measures that against its peers. This program
//! says where that figure's CPU goes, steadily enough to compare two builds: on a shared 2-core
//! machine the end-to-end run varies by ±15 %, a single stage on an idle core by a few percent.
//!
//! Key decision: every stage runs the production function (`fetched_message`, `new_message`,
//! `SyncBatch::prepare`, `Messages::apply_prepared`), batch by batch as the sync engine feeds
//! them (500 messages), so a change to any of them shows here.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_imap::imap_proto::Response;
use postern_bench::{default_work_dir, exit_on_help, median, password_account};
use postern_store::{
    AccountId, MailboxId, NewMailbox, SearchQuery, SearchText, Store, SyncBatch, SyncState,
};
use postern_sync::engine::interpret::{fetched_message, new_message};
use postern_testkit::mailgen::MailGen;

const USAGE: &str = "usage: stage-bench [--messages N] [--runs R] [--batch B] [--hops H] \
                     [--work-dir DIR] [--keep FILE]";
/// The sync engine's batch size for an initial sync (`--batch` to try another).
const BATCH: usize = 500;
/// The seed and owner `sync-bench` fills its mailbox with.
const MAILGEN_SEED: u64 = 4;
const OWNER: &str = "bench@example.test";
/// Searches timed on the last run's index: common and rare words, two words, an address.
const SEARCH_QUERIES: [&str; 5] = [
    "project",
    "budget review",
    "García",
    "noahgarca@corp.example",
    "nosuchword",
];
const SEARCH_REPEATS: usize = 21;

struct Options {
    messages: usize,
    runs: usize,
    batch: usize,
    /// `Received` fields put before each message's header, with a DKIM signature and list
    /// fields: what a message that crossed the Internet carries and the generator leaves out.
    hops: usize,
    work_dir: PathBuf,
    /// Where to copy the last run's database (to inspect it or time queries on it).
    keep: Option<PathBuf>,
}

/// Time spent in each stage during one run.
#[derive(Default, Clone, Copy)]
struct StageTimes {
    wire: Duration,
    parse: Duration,
    prepare: Duration,
    store: Duration,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let raw = MailGen::new(MAILGEN_SEED, OWNER)
        .with_attachment_ratio(0.0)
        .raw_messages(options.messages);
    let raw: Vec<Vec<u8>> = raw
        .into_iter()
        .map(|message| with_transit_headers(message, options.hops))
        .collect();
    let wire: Vec<Vec<u8>> = raw
        .iter()
        .enumerate()
        .map(|(index, message)| fetch_response(index, message))
        .collect();
    let bytes: usize = raw.iter().map(Vec::len).sum();
    println!(
        "{} messages, {} MB; batches of {}; {} run(s)",
        raw.len(),
        bytes / 1_000_000,
        options.batch,
        options.runs
    );
    let mut runs = Vec::new();
    for run in 1..=options.runs {
        let last = run == options.runs;
        let times = one_run(&wire, &options, last).await?;
        print_times(&format!("run {run}"), times, wire.len());
        runs.push(times);
    }
    let pick =
        |stage: fn(&StageTimes) -> Duration| median(&runs.iter().map(stage).collect::<Vec<_>>());
    let medians = StageTimes {
        wire: pick(|t| t.wire),
        parse: pick(|t| t.parse),
        prepare: pick(|t| t.prepare),
        store: pick(|t| t.store),
    };
    print_times("median", medians, wire.len());
    Ok(())
}

/// `message` as it would arrive after `hops` relays: a `Received` field from each, newest first,
/// then the signature and list fields a mailing list adds; unchanged for 0.
fn with_transit_headers(message: Vec<u8>, hops: usize) -> Vec<u8> {
    if hops == 0 {
        return message;
    }
    let mut header = String::new();
    for hop in (0..hops).rev() {
        header.push_str(&format!(
            "Received: from mx{hop}.example.net (mx{hop}.example.net [192.0.2.{hop}])\r\n\
             \tby mail.example.test (Postfix) with ESMTPS id 4Xk{hop}Lq2Zz\r\n\
             \tfor <{OWNER}>; Sat, 21 Nov 2026 10:{hop:02}:00 +0000 (UTC)\r\n"
        ));
    }
    header.push_str(
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=s1;\r\n\
         \th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\
         \tb=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR\r\n\
         List-Id: Project updates <updates.example.net>\r\n\
         List-Unsubscribe: <mailto:unsubscribe@example.net>, <https://example.net/u/1>\r\n",
    );
    let mut raw = header.into_bytes();
    raw.extend_from_slice(&message);
    raw
}

/// One untagged FETCH response as Dovecot sends it for the initial sync's items.
fn fetch_response(index: usize, message: &[u8]) -> Vec<u8> {
    let uid = index + 1;
    let mut response = format!(
        "* {uid} FETCH (UID {uid} MODSEQ (2) FLAGS (\\Seen) INTERNALDATE \"21-Nov-2026 10:00:00 +0000\" \
         RFC822.SIZE {len} BODY[] {{{len}}}\r\n",
        len = message.len()
    )
    .into_bytes();
    response.extend_from_slice(message);
    response.extend_from_slice(b")\r\n");
    response
}

async fn one_run(wire: &[Vec<u8>], options: &Options, last: bool) -> anyhow::Result<StageTimes> {
    let dir = tempfile::tempdir_in(&options.work_dir)?;
    let store = Store::open_sqlite(&dir.path().join("postern.db")).await?;
    let mailbox = create_mailbox(&store).await?;
    let mut times = StageTimes::default();
    let total = u32::try_from(wire.len()).context("too many messages")?;
    // Newest first, as the engine's initial sync: each batch moves the cursor down to its first UID.
    for (number, chunk) in wire.chunks(options.batch).enumerate().rev() {
        let started = Instant::now();
        let fetched = chunk
            .iter()
            .map(|bytes| match Response::parse(bytes) {
                Ok((_, Response::Fetch(_, attributes))) => {
                    fetched_message(&attributes).context("a FETCH response without a UID")
                }
                _ => bail!("not a FETCH response"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        times.wire += started.elapsed();

        let started = Instant::now();
        let new_messages = fetched.into_iter().filter_map(new_message).collect();
        times.parse += started.elapsed();

        let lowest = u32::try_from(number * options.batch + 1).context("too many messages")?;
        let mut batch = SyncBatch::cursor_only(mailbox, cursor(total, lowest));
        batch.initial = true;
        batch.new_messages = new_messages;
        let started = Instant::now();
        let prepared = batch.prepare();
        times.prepare += started.elapsed();

        let started = Instant::now();
        store.messages().apply_prepared(prepared).await?;
        times.store += started.elapsed();
    }
    if last {
        print_search_latency(&store).await?;
    }
    store.close().await;
    if last && let Some(keep) = &options.keep {
        std::fs::copy(dir.path().join("postern.db"), keep)
            .with_context(|| format!("copying the database to {}", keep.display()))?;
    }
    Ok(times)
}

fn cursor(total: u32, lowest_uid: u32) -> SyncState {
    SyncState {
        uidvalidity: 1,
        uidnext: total + 1,
        highest_modseq: Some(2),
        lowest_uid,
        initial_done: false,
        exists: total,
        unseen: None,
    }
}

async fn create_mailbox(store: &Store) -> anyhow::Result<MailboxId> {
    let account_id = AccountId::generate();
    let account = password_account(account_id.clone(), OWNER, 993, None);
    store.accounts().create(account, None).await?;
    let mailbox = store
        .mailboxes()
        .create(NewMailbox {
            account_id,
            name: "INBOX".to_owned(),
            delimiter: Some("/".to_owned()),
            role: None,
        })
        .await?;
    Ok(mailbox.id)
}

/// Searches over the index the run built, as `GET /v1/search` runs them (50 results); each
/// query's median time over [`SEARCH_REPEATS`].
async fn print_search_latency(store: &Store) -> anyhow::Result<()> {
    let mut figures = Vec::new();
    for text in SEARCH_QUERIES {
        let query = SearchQuery {
            text: SearchText::parse(text)?,
            account_ids: None,
            limit: 50,
        };
        let mut times = Vec::with_capacity(SEARCH_REPEATS);
        let mut hits = 0;
        for _ in 0..SEARCH_REPEATS {
            let started = Instant::now();
            hits = store.search().search(query.clone()).await?.len();
            times.push(started.elapsed());
        }
        let millis = median(&times).as_secs_f64() * 1e3;
        figures.push(format!("{text:?} {millis:.2} ms ({hits} hits)"));
    }
    println!(" search: {}", figures.join(", "));
    Ok(())
}

fn print_times(label: &str, times: StageTimes, messages: usize) {
    let per_message = |stage: Duration| stage.as_secs_f64() * 1e6 / messages as f64;
    let total = times.wire + times.parse + times.prepare + times.store;
    println!(
        "{label:>7}: wire {:5.2} µs  parse {:5.2} µs  prepare {:5.2} µs  store {:5.2} µs  \
         = {:5.2} µs a message ({:.3} s)",
        per_message(times.wire),
        per_message(times.parse),
        per_message(times.prepare),
        per_message(times.store),
        per_message(total),
        total.as_secs_f64()
    );
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        messages: 100_000,
        runs: 3,
        batch: BATCH,
        hops: 0,
        work_dir: default_work_dir(),
        keep: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        exit_on_help(&arg, USAGE);
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--messages" => options.messages = value()?.parse()?,
            "--runs" => options.runs = value()?.parse()?,
            "--batch" => options.batch = value()?.parse()?,
            "--hops" => options.hops = value()?.parse()?,
            "--work-dir" => options.work_dir = PathBuf::from(value()?),
            "--keep" => options.keep = Some(PathBuf::from(value()?)),
            _ => bail!("unknown argument {arg}\n{USAGE}"),
        }
    }
    if options.messages == 0 || options.runs == 0 || options.batch == 0 {
        bail!("--messages, --runs and --batch must be at least 1\n{USAGE}");
    }
    Ok(options)
}
