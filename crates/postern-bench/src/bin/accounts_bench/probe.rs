//! What the accounts bench reads about the running server from outside: its resident memory
//! (`/proc/<pid>/status`, `/proc/<pid>/smaps_rollup`), its established connections to the IMAPS
//! port (its socket inodes matched against `/proc/<pid>/net/tcp{,6}`), and the sessions Dovecot
//! itself counts (`doveadm who`).
//!
//! Non-goal: a profiler. The figures say how much memory there is, not where it is.
//!
//! Key decision: everything from `/proc`, read by the bench, so the server runs unmodified and the
//! figures are those of the binary a user runs.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::postern_server::status_kib;

/// One reading of the server's memory, in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// `VmRSS`: the resident set.
    pub rss: u64,
    /// `Anonymous` from `smaps_rollup`: the heap and stacks, without the mapped binary.
    pub anonymous: u64,
}

/// Reads the server's memory now.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    Ok(Memory {
        rss: status_kib(pid, "VmRSS")?,
        anonymous: smaps_rollup_kib(pid, "Anonymous")?,
    })
}

/// `samples` readings `gap` apart; the median of each figure.
pub async fn median_memory(pid: u32, samples: usize, gap: Duration) -> anyhow::Result<Memory> {
    let mut readings = Vec::new();
    for index in 0..samples.max(1) {
        if index > 0 {
            tokio::time::sleep(gap).await;
        }
        readings.push(memory(pid)?);
    }
    let median = |pick: fn(&Memory) -> u64| {
        let mut values: Vec<u64> = readings.iter().map(pick).collect();
        values.sort_unstable();
        values[values.len() / 2]
    };
    Ok(Memory {
        rss: median(|m| m.rss),
        anonymous: median(|m| m.anonymous),
    })
}

fn smaps_rollup_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/smaps_rollup"))
}

/// The server's threads (`Threads` in `/proc/<pid>/status`).
pub fn threads(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|rest| rest.trim().parse().ok())
        .context("no Threads in /proc/<pid>/status")
}

/// The server's TCP connections to `port` in state ESTABLISHED.
pub fn established_to(pid: u32, port: u16) -> anyhow::Result<usize> {
    let inodes = socket_inodes(pid)?;
    let mut count = 0;
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        count += text
            .lines()
            .skip(1)
            .filter(|line| is_established_to(line, port, &inodes))
            .count();
    }
    Ok(count)
}

/// The inodes of the process's open sockets (`/proc/<pid>/fd/N -> socket:[INODE]`).
fn socket_inodes(pid: u32) -> anyhow::Result<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(target) = std::fs::read_link(entry?.path()) else {
            continue;
        };
        let inode: Option<u64> = target
            .to_str()
            .and_then(|text| text.strip_prefix("socket:["))
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|number| number.parse().ok());
        inodes.extend(inode);
    }
    Ok(inodes)
}

/// A `/proc/net/tcp` line: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`, the
/// addresses as `HEXIP:HEXPORT`, state `01` for ESTABLISHED.
fn is_established_to(line: &str, port: u16, inodes: &HashSet<u64>) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (Some(remote), Some(state), Some(inode)) = (fields.get(2), fields.get(3), fields.get(9))
    else {
        return false;
    };
    let remote_port = remote
        .rsplit(':')
        .next()
        .and_then(|hex| u16::from_str_radix(hex, 16).ok());
    *state == "01"
        && remote_port == Some(port)
        && inode
            .parse()
            .is_ok_and(|inode: u64| inodes.contains(&inode))
}

/// The IMAP sessions Dovecot counts for users of `domain` (`doveadm who -1`, one line per
/// connection); `None` when doveadm cannot tell (not installed, no access to the anvil socket).
pub fn dovecot_sessions(config_file: &Path, domain: &str) -> Option<usize> {
    let output = std::process::Command::new("doveadm")
        .arg("-c")
        .arg(config_file)
        .args(["who", "-1"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Some(
        text.lines()
            .filter(|line| line.contains(domain) && line.contains("imap"))
            .count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tcp_line_counts_when_established_to_the_port_and_owned() {
        // 127.0.0.1:40000 -> 127.0.0.1:993 (0x03E1), ESTABLISHED, inode 4242.
        let line = "   7: 0100007F:9C40 0100007F:03E1 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1";
        let owned: HashSet<u64> = [4242].into();
        assert!(is_established_to(line, 993, &owned));
        assert!(!is_established_to(line, 994, &owned));
        assert!(!is_established_to(line, 993, &HashSet::new()));
        let listening = line.replace(" 01 ", " 0A ");
        assert!(!is_established_to(&listening, 993, &owned));
    }
}
