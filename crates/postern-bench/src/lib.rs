//! What the benchmark programs share: where they put their files and how they take a median.
//!
//! Purpose: one definition each for the helpers every `bench/` program needs, so their figures
//! are reduced the same way.
//! Non-goal: measuring anything; each program (`src/main.rs`, `src/bin/*`) measures its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

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
