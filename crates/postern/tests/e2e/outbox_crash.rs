//! Issue #5 acceptance: the durable outbox survives `kill -9`.
//!
//! Purpose: 1,000 messages are queued through the API, then the real binary is SIGKILLed at random
//! moments 20 times and restarted on the same data dir. Afterwards every message must have reached
//! the SMTP sink (through Dovecot's submission), none may be `failed`, and the only duplicates
//! allowed are those of a crash between the server's acceptance and the local commit: at most one
//! per sending worker per kill, each carrying the Message-ID the API returned.
//! Non-goal: crashes during queueing (a client that loses its answer retries with an idempotency
//! key; that is covered by the send tests), and failures of the next hop.
//! Key decision: what arrived is mapped back to what was queued by a number in the subject, so a
//! duplicate is told from a lost message without trusting the outbox's own records. The random
//! delays come from a printed seed (`OUTBOX_CRASH_SEED` replays one).

use crate::support::{Postern, create_account, password_account_body, unique_email};
use postern_testkit::smtp_sink::{ReceivedMessage, SmtpSink};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MESSAGES: usize = 1_000;
const KILLS: usize = 20;
const QUEUEING_CONCURRENCY: usize = 16;
/// Random wait before each kill, counted from the moment the restarted server has delivered at
/// least one more message: so every kill lands while its workers are sending (the copies counted
/// at each kill show the queue still draining), however fast the outbox drains.
const KILL_DELAY_MS: std::ops::Range<u64> = 0..40;
/// How long a restarted server may take to deliver its first message before the test fails.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the last server gets to empty the queue.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
const SUBJECT_PREFIX: &str = "outbox crash #";
/// Quiet: nobody reads the server's stderr pipe until `stop`; a chatty server would block on it.
/// The API's rate limit is raised so queueing measures the outbox, not the limiter.
const ENV: &[(&str, &str)] = &[
    ("POSTERN_LOG", "warn"),
    ("POSTERN_API_RATE_LIMIT_PER_SECOND", "1000000"),
    ("POSTERN_API_RATE_LIMIT_BURST", "1000000"),
];

/// What the API answered for one queued message.
#[derive(Debug, Clone)]
struct Queued {
    id: String,
    message_id: String,
}

/// One copy the sink received, read back from its headers.
#[derive(Debug)]
struct Arrival {
    number: usize,
    message_id: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_kill_9_twenty_times_loses_nothing_and_duplicates_only_with_the_same_message_id() {
    let started = Instant::now();
    let mut random = Xorshift::from_env_or_clock();
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), ENV).await;
    let admin = server.admin_token.clone().unwrap();
    let sender = unique_email("crash-sender");
    let account =
        create_account(&server, &admin, &password_account_body(&sender, "crash-pw")).await;
    let rcpt = unique_email("crash-rcpt");

    let queued = queue_all(&server, &admin, &account, &rcpt).await;
    let queued_in = started.elapsed();

    let kills_started = Instant::now();
    let (server, arrived_at_kills) = kill_and_restart(server, dir.path(), &rcpt, &mut random).await;
    let kills_took = kills_started.elapsed();

    let settle_started = Instant::now();
    let statuses = settle(&server, &admin, &account).await;
    let arrivals = arrivals_for(&rcpt, &queued).await;
    let settled_in = settle_started.elapsed();

    let report = Report::of(&queued, &statuses, &arrivals);
    eprintln!(
        "outbox crash: seed {seed}; queued {MESSAGES} in {queued_in:?}; {KILLS} kills in \
         {kills_took:?}, copies at the sink at each kill {arrived_at_kills:?}; settled in \
         {settled_in:?}; total {total:?}; sink rate {rate}; statuses {status_counts:?}; \
         delivered {delivered}/{MESSAGES}, {copies} copies, {duplicates} duplicates",
        seed = random.seed,
        total = started.elapsed(),
        rate = arrival_rate(&rcpt),
        status_counts = report.status_counts,
        delivered = report.delivered,
        copies = arrivals.len(),
        duplicates = report.duplicates,
    );
    let problems = report.problems(&queued, &statuses);
    let log = server.stop().await;
    assert!(
        problems.is_empty(),
        "{}\n--- last server's log (warn) ---\n{log}",
        problems.join("\n")
    );
}

/// `KILLS` times: wait for sending to make progress, a random short wait, SIGKILL, a restart on
/// the same data dir. The server running at the end, and how many copies the sink held at each
/// kill (whether work was left to cut).
async fn kill_and_restart(
    mut server: Postern,
    data_dir: &Path,
    rcpt: &str,
    random: &mut Xorshift,
) -> (Postern, Vec<usize>) {
    let mut arrived_at_kills = Vec::with_capacity(KILLS);
    for _ in 0..KILLS {
        let before = arrived_at_kills.last().copied().unwrap_or(0);
        let deadline = Instant::now() + PROGRESS_TIMEOUT;
        while sink_messages_to(rcpt).len() <= before {
            assert!(
                Instant::now() < deadline,
                "no message went out after a restart"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(random.in_range(KILL_DELAY_MS))).await;
        server.kill_hard().await;
        arrived_at_kills.push(sink_messages_to(rcpt).len());
        server = Postern::start(data_dir, ENV).await;
    }
    (server, arrived_at_kills)
}

/// Queues every message, `QUEUEING_CONCURRENCY` requests at a time; the API's answer per number.
async fn queue_all(server: &Postern, admin: &str, account: &str, rcpt: &str) -> Vec<Queued> {
    let next = Arc::new(AtomicUsize::new(0));
    let url = server.url(&format!("/v1/accounts/{account}/send"));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..QUEUEING_CONCURRENCY {
        let (client, url, admin) = (server.client.clone(), url.clone(), admin.to_owned());
        let (next, rcpt) = (Arc::clone(&next), rcpt.to_owned());
        tasks.spawn(async move {
            let mut answers = Vec::new();
            loop {
                let number = next.fetch_add(1, Ordering::Relaxed);
                if number >= MESSAGES {
                    return answers;
                }
                let body = json!({
                    "to": [rcpt],
                    "subject": format!("{SUBJECT_PREFIX}{number:04}"),
                    "text": format!("Message {number} of the crash test."),
                });
                let response = client.post(&url).bearer_auth(&admin).json(&body).send();
                let response = response.await.unwrap();
                let status = response.status();
                let answer: Value = response.json().await.unwrap_or_default();
                assert_eq!(status, 202, "queueing message {number}: {answer}");
                let queued = Queued {
                    id: answer["id"].as_str().unwrap().to_owned(),
                    message_id: answer["message_id"].as_str().unwrap().to_owned(),
                };
                answers.push((number, queued));
            }
        });
    }
    let mut by_number = BTreeMap::new();
    while let Some(answers) = tasks.join_next().await {
        by_number.extend(answers.unwrap());
    }
    assert_eq!(by_number.len(), MESSAGES);
    by_number.into_values().collect()
}

/// Polls the account's outbox until nothing is `queued` or `sending` (or `SETTLE_TIMEOUT`);
/// the last status of every item, by outbox id.
async fn settle(server: &Postern, admin: &str, account: &str) -> BTreeMap<String, Value> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let items = outbox_items(server, admin, account).await;
        let open = items
            .values()
            .any(|item| item["status"] == "queued" || item["status"] == "sending");
        if !open || Instant::now() > deadline {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every outbox item of `account`, page by page (the API lists newest first, 500 at most).
async fn outbox_items(server: &Postern, admin: &str, account: &str) -> BTreeMap<String, Value> {
    let mut items = BTreeMap::new();
    let mut before: Option<String> = None;
    loop {
        let mut path = format!("/v1/outbox?account={account}&limit=500");
        if let Some(before) = &before {
            path.push_str(&format!("&before={before}"));
        }
        let response = server.get(&path, Some(admin)).await;
        assert_eq!(response.status(), 200, "listing the outbox");
        let page: Value = response.json().await.unwrap();
        let page = page["items"].as_array().unwrap().clone();
        before = page
            .last()
            .map(|item| item["id"].as_str().unwrap().to_owned());
        let full = page.len() == 500;
        for item in page {
            items.insert(item["id"].as_str().unwrap().to_owned(), item);
        }
        if !full {
            return items;
        }
    }
}

/// What the sink holds for `rcpt`, once every number has arrived or at most a few seconds after
/// the outbox settled (relaying is synchronous, so `sent` means the sink has it already).
async fn arrivals_for(rcpt: &str, queued: &[Queued]) -> Vec<Arrival> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let arrivals: Vec<Arrival> = sink_messages_to(rcpt).iter().map(arrival).collect();
        let mut seen = vec![false; queued.len()];
        arrivals.iter().for_each(|a| seen[a.number] = true);
        if seen.iter().all(|&seen| seen) || Instant::now() > deadline {
            return arrivals;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the shared sink received for `rcpt` (and so for this test alone), oldest first.
fn sink_messages_to(rcpt: &str) -> Vec<ReceivedMessage> {
    let mut messages = SmtpSink::shared().unwrap().messages();
    messages.retain(|message| message.rcpt_to.iter().any(|to| to == rcpt));
    messages
}

/// Copies per second from the first arrival to the last, kills and restarts included.
fn arrival_rate(rcpt: &str) -> String {
    let messages = sink_messages_to(rcpt);
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return "n/a".to_owned();
    };
    let span = (last.received_at - first.received_at).as_seconds_f64();
    let rate = messages.len() as f64 / span.max(0.001);
    format!("{rate:.0}/s ({} copies in {span:.1} s)", messages.len())
}

fn arrival(message: &ReceivedMessage) -> Arrival {
    let subject = header(&message.data, "Subject").expect("a relayed message has a Subject");
    let number = subject
        .strip_prefix(SUBJECT_PREFIX)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a stranger in the test's mailbox: {subject:?}"));
    let message_id = header(&message.data, "Message-ID").expect("a relayed message has an id");
    Arrival {
        number,
        message_id: message_id.trim_matches(|c| c == '<' || c == '>').to_owned(),
    }
}

/// The unfolded value of the first header called `name`.
fn header(data: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next()?;
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field
            .trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// The figures of one run.
struct Report {
    status_counts: BTreeMap<String, usize>,
    /// Copies received per number.
    copies: Vec<Vec<String>>,
    delivered: usize,
    duplicates: usize,
}

impl Report {
    fn of(queued: &[Queued], statuses: &BTreeMap<String, Value>, arrivals: &[Arrival]) -> Report {
        let mut status_counts = BTreeMap::new();
        for item in statuses.values() {
            *status_counts
                .entry(item["status"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        let mut copies = vec![Vec::new(); queued.len()];
        for arrival in arrivals {
            copies[arrival.number].push(arrival.message_id.clone());
        }
        let delivered = copies.iter().filter(|c| !c.is_empty()).count();
        Report {
            status_counts,
            delivered,
            duplicates: arrivals.len() - delivered,
            copies,
        }
    }

    /// Every way the run broke the issue's promise, one line each.
    fn problems(&self, queued: &[Queued], statuses: &BTreeMap<String, Value>) -> Vec<String> {
        let mut problems = Vec::new();
        let lost: Vec<usize> = (0..queued.len())
            .filter(|&n| self.copies[n].is_empty())
            .collect();
        if !lost.is_empty() {
            problems.push(format!(
                "{} of {MESSAGES} never arrived, e.g. {:?}",
                lost.len(),
                &lost[..lost.len().min(10)]
            ));
        }
        // Items not `sent` when the wait ended, by status: (with a copy at the sink, without).
        let mut unsettled: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let mut examples = Vec::new();
        for (number, queued) in queued.iter().enumerate() {
            let item = statuses.get(&queued.id);
            let status = item
                .and_then(|item| item["status"].as_str())
                .unwrap_or("missing");
            if status != "sent" {
                let counts = unsettled.entry(status).or_default();
                if self.copies[number].is_empty() {
                    counts.1 += 1;
                } else {
                    counts.0 += 1;
                }
                if examples.len() < 3 {
                    let item = item.map_or_else(String::new, Value::to_string);
                    examples.push(format!("  e.g. message {number}: {item}"));
                }
            }
            if let Some(other) = self.copies[number]
                .iter()
                .find(|id| **id != queued.message_id)
            {
                problems.push(format!(
                    "message {number} arrived with Message-ID {other}, the API said {}",
                    queued.message_id
                ));
            }
        }
        for (status, (at_sink, not_at_sink)) in &unsettled {
            problems.push(format!(
                "{} items still `{status}` {SETTLE_TIMEOUT:?} after the last restart: \
                 {at_sink} of them already at the sink, {not_at_sink} not",
                at_sink + not_at_sink
            ));
        }
        problems.extend(examples);
        // A duplicate needs a crash after the server accepted the message and before the worker
        // committed `sent`: the lease then expires and the item is sent again. Each worker sends
        // one item at a time, so one kill can leave at most one such item per worker.
        // The binary runs the outbox with its default configuration.
        let workers = postern_outbox::OutboxConfig::default().workers;
        if self.duplicates > KILLS * workers {
            problems.push(format!(
                "{} duplicates, more than {KILLS} kills x {workers} workers",
                self.duplicates
            ));
        }
        problems
    }
}

/// A small seeded generator: the test crate has no `rand`, and a printed seed replays a run.
struct Xorshift {
    seed: u64,
    state: u64,
}

impl Xorshift {
    fn from_env_or_clock() -> Xorshift {
        let seed = std::env::var("OUTBOX_CRASH_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos();
                (nanos as u64) | 1
            });
        Xorshift {
            seed,
            state: seed.max(1),
        }
    }

    fn in_range(&mut self, range: std::ops::Range<u64>) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        range.start + self.state % (range.end - range.start)
    }
}
