//! UID lists and IMAP sequence sets (`1:4,7,9:12`), both ways.
//!
//! Purpose: write the compact UID set a command carries, and test UIDs against the ranges a
//! server reports (`VANISHED 1:500`).
//! Non-goal: `*`; the engine always names explicit UIDs, so a range never means "the last one".
//! Key decision: ranges are kept as ranges (never expanded), so `VANISHED (EARLIER) 1:4000000000`
//! costs nothing.

use std::ops::RangeInclusive;

/// The sequence set for `uids` (any order, duplicates allowed): consecutive UIDs become `a:b`.
/// Empty input gives an empty string; callers never send a command for no UID.
pub fn format_uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut iter = sorted.into_iter().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last.wrapping_add(1))) && last != u32::MAX {
            last += 1;
            iter.next();
        }
        if !out.is_empty() {
            out.push(',');
        }
        if first == last {
            out.push_str(&first.to_string());
        } else {
            out.push_str(&format!("{first}:{last}"));
        }
    }
    out
}

/// The set `first:last` (`first` when equal).
pub fn format_range(range: &RangeInclusive<u32>) -> String {
    if range.start() == range.end() {
        range.start().to_string()
    } else {
        format!("{}:{}", range.start(), range.end())
    }
}

/// The UIDs of `stored` that fall in any of `ranges` (a server's VANISHED report), in `stored`
/// order.
pub fn stored_in_ranges(stored: &[u32], ranges: &[RangeInclusive<u32>]) -> Vec<u32> {
    stored
        .iter()
        .copied()
        .filter(|uid| ranges.iter().any(|range| range.contains(uid)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_uids_collapse_into_ranges() {
        assert_eq!(format_uid_set(&[]), "");
        assert_eq!(format_uid_set(&[5]), "5");
        assert_eq!(format_uid_set(&[3, 1, 2, 7, 9, 8, 8, 12]), "1:3,7:9,12");
        assert_eq!(
            format_uid_set(&[u32::MAX, u32::MAX - 1]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn ranges_print_as_imap_sets() {
        assert_eq!(format_range(&(4..=4)), "4");
        assert_eq!(format_range(&(4..=9)), "4:9");
    }

    #[test]
    fn only_stored_uids_inside_the_ranges_are_kept() {
        let stored = [1, 2, 5, 9, 10, 400];
        assert_eq!(stored_in_ranges(&stored, &[2..=5, 10..=10]), [2, 5, 10]);
        assert_eq!(stored_in_ranges(&stored, &[1..=u32::MAX]), stored);
        assert!(stored_in_ranges(&stored, &[]).is_empty());
    }
}
