//! The figures of a bench run, their medians, and the final table with each figure's peer ratio and
//! the goal.
//!
//! Non-goal: judging. The table says whether a goal was met; the exit status does not, so a slow
//! run still prints everything it measured.
//!
//! Key decision: medians, not means, since one run of several caught by a noisy neighbour on a
//! 2-core machine should not move the figure.

use std::time::Duration;

use anyhow::Context as _;
use postern_bench::median;

/// One Postern child's result line, parsed.
pub struct PosternRun {
    pub initial: Duration,
    pub stored: u64,
    pub hwm_before_kb: u64,
    pub hwm_kb: u64,
    pub db_bytes: u64,
    pub initial_cpu_ms: u64,
    pub initial_commands: u64,
    pub no_change_commands: u64,
    pub no_change_login_commands: u64,
    pub no_change: Vec<Duration>,
    pub no_change_login: Vec<Duration>,
}

impl PosternRun {
    /// Parses `POSTERN initial_ms=... stored=... ...`.
    pub fn parse(line: &str) -> anyhow::Result<PosternRun> {
        let field = |name: &str| -> anyhow::Result<&str> {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
                .with_context(|| format!("no {name} in {line}"))
        };
        let number = |name: &str| -> anyhow::Result<u64> { Ok(field(name)?.parse()?) };
        let durations = |name: &str| -> anyhow::Result<Vec<Duration>> {
            field(name)?
                .split(',')
                .filter(|part| !part.is_empty())
                .map(|ms| Ok(Duration::from_secs_f64(ms.parse::<f64>()? / 1000.0)))
                .collect()
        };
        Ok(PosternRun {
            initial: Duration::from_millis(number("initial_ms")?),
            stored: number("stored")?,
            hwm_before_kb: number("hwm_before_kb")?,
            hwm_kb: number("hwm_kb")?,
            db_bytes: number("db_bytes")?,
            initial_cpu_ms: number("initial_cpu_ms")?,
            initial_commands: number("initial_commands")?,
            no_change_commands: number("nochange_commands")?,
            no_change_login_commands: number("nochange_login_commands")?,
            no_change: durations("nochange_ms")?,
            no_change_login: durations("nochange_login_ms")?,
        })
    }
}

/// Everything one bench run measured.
pub struct Figures {
    pub messages: usize,
    pub fill: Duration,
    pub fill_bytes: u64,
    pub raw: Vec<Duration>,
    pub postern: Vec<PosternRun>,
    pub mbsync: Vec<Duration>,
    pub raw_status: Vec<Duration>,
}

impl Figures {
    pub fn new(messages: usize) -> Figures {
        Figures {
            messages,
            fill: Duration::ZERO,
            fill_bytes: 0,
            raw: Vec::new(),
            postern: Vec::new(),
            mbsync: Vec::new(),
            raw_status: Vec::new(),
        }
    }

    /// Prints the final table.
    pub fn print(&self) {
        let raw = median(&self.raw);
        let initial = median(&self.postern.iter().map(|p| p.initial).collect::<Vec<_>>());
        let peak_mb = self.postern.iter().map(|p| p.hwm_kb).max().unwrap_or(0) as f64 / 1024.0;
        let no_change: Vec<Duration> = self
            .postern
            .iter()
            .flat_map(|p| p.no_change.clone())
            .collect();
        let no_change_login: Vec<Duration> = self
            .postern
            .iter()
            .flat_map(|p| p.no_change_login.clone())
            .collect();
        let ratio = initial.as_secs_f64() / raw.as_secs_f64();
        println!();
        println!(
            "== {} messages (avg {} B), medians of {} run(s) ==",
            self.messages,
            self.fill_bytes / self.messages.max(1) as u64,
            self.raw.len()
        );
        println!("{:<44} {:>12} {:>14}", "figure", "value", "goal");
        row("fill (MULTIAPPEND, tmpfs)", secs(self.fill), "-".into());
        row("peer: raw UID FETCH 1:* BODY.PEEK[]", secs(raw), "-".into());
        row(
            "Postern initial sync (full bodies)",
            secs(initial),
            "-".into(),
        );
        row(
            "  ratio to raw FETCH",
            format!("{ratio:.2}x"),
            verdict(ratio <= 1.5, "<= 1.5x"),
        );
        if !self.mbsync.is_empty() {
            let mbsync = median(&self.mbsync);
            let ratio = initial.as_secs_f64() / mbsync.as_secs_f64();
            row("peer: mbsync (fsync off)", secs(mbsync), "-".into());
            row(
                "  Postern / mbsync",
                format!("{ratio:.2}x"),
                verdict(ratio < 1.0, "< 1.0x"),
            );
        }
        row(
            "Postern peak RSS (VmHWM, max of runs)",
            format!("{peak_mb:.1} MB"),
            verdict(peak_mb <= 100.0, "<= 100 MB"),
        );
        let pass = median(&no_change).as_secs_f64() * 1000.0;
        row(
            "no-change pass (open session)",
            format!("{pass:.1} ms"),
            verdict(pass <= 50.0, "<= 50 ms"),
        );
        let with_login = median(&no_change_login).as_secs_f64() * 1000.0;
        row(
            "no-change pass incl. connect+TLS+login",
            format!("{with_login:.1} ms"),
            "-".into(),
        );
        let status = median(&self.raw_status).as_secs_f64() * 1000.0;
        row(
            "peer: connect+login+ENABLE+LIST-STATUS",
            format!("{status:.1} ms"),
            "-".into(),
        );
    }
}

fn row(name: &str, value: String, goal: String) {
    println!("{name:<44} {value:>12} {goal:>14}");
}

fn secs(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

fn verdict(met: bool, goal: &str) -> String {
    format!("{goal} {}", if met { "ok" } else { "MISSED" })
}
