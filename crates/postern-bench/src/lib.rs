//! What the benchmark programs share: where they put their files, how they take a median, and
//! the account the sync benchmarks sync.
//!
//! Purpose: one definition each for the helpers several `bench/` programs need, so their figures
//! are reduced the same way.
//! Non-goal: measuring anything; each program (`src/main.rs`, `src/bin/*`) measures its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_store::{AccountAuth, AccountId, AccountState, Endpoint, NewAccount, Security};

/// tmpfs when there is one, as the Dovecot harness does: the store then pays no disk.
pub fn default_work_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// The median (the upper one of an even count); zero for no samples.
pub fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// The median of `values` (the upper one of an even count); zero for none.
pub fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// A password account on an implicit-TLS server (IMAP and SMTP alike), as the sync benchmarks
/// create it before their first pass.
pub fn password_account(
    id: AccountId,
    email: &str,
    port: u16,
    ca_file: Option<String>,
) -> NewAccount {
    let server = Endpoint {
        host: "localhost".to_owned(),
        port,
        security: Security::Tls,
        ca_file,
    };
    NewAccount {
        id,
        email: email.to_owned(),
        name: None,
        imap: server.clone(),
        smtp: server,
        auth: AccountAuth::Password { username: None },
        state: AccountState::Connecting,
    }
}

/// Prints `usage` and ends the program when `arg` asks for help (`--help` or `-h`): every
/// benchmark program calls it on each argument before matching its own.
pub fn exit_on_help(arg: &str, usage: &str) {
    if arg == "--help" || arg == "-h" {
        println!("{usage}");
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upper_median_of_an_even_count_and_zero_for_none() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(median(&[ms(4), ms(1), ms(3), ms(2)]), ms(3));
        assert_eq!(median(&[]), Duration::ZERO);
        assert_eq!(median_of(vec![2.0, 9.0, 1.0, 5.0]), 5.0);
        assert_eq!(median_of(Vec::new()), 0.0);
    }
}
