//! Which mailboxes an account syncs: every one, or those named by a list of names and patterns.
//!
//! Purpose: [`MailboxSelection`] and its matching rule, pure, so "does `Projects/2026` sync under
//! `Projects/%`?" is a unit test.
//! Non-goal: asking the server. A pattern is matched against the names the server's `LIST "" "*"`
//! returned; it is never sent as a `LIST` argument, so every server behaves the same.
//! Key decision: patterns use IMAP's own `LIST` wildcards (RFC 3501 section 6.3.8), which mail
//! people already know: `*` matches any run of characters, `%` any run that does not cross the
//! mailbox's hierarchy delimiter. An entry without a wildcard is a plain name. `INBOX` is
//! case-insensitive, in names and patterns alike.

use crate::engine::same_mailbox;

/// Which mailboxes an account syncs. `\Noselect` and non-existent ones never are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MailboxSelection {
    /// Every selectable mailbox.
    #[default]
    All,
    /// Only these names (as the server spells them; `INBOX` in any case) and `LIST` patterns
    /// (an entry holding `*` or `%`).
    Only(Vec<String>),
}

impl MailboxSelection {
    /// Whether a mailbox of this name is synced, with `%` matching like `*` (no hierarchy known).
    pub fn includes(&self, name: &str) -> bool {
        self.includes_within(name, None)
    }

    /// Whether a mailbox of this name, in a hierarchy split by `delimiter`, is synced.
    pub fn includes_within(&self, name: &str, delimiter: Option<&str>) -> bool {
        match self {
            MailboxSelection::All => true,
            MailboxSelection::Only(entries) => entries
                .iter()
                .any(|entry| entry_matches(entry, name, delimiter)),
        }
    }
}

/// Whether `entry` (a name or a pattern) selects the mailbox `name`.
fn entry_matches(entry: &str, name: &str, delimiter: Option<&str>) -> bool {
    if !is_pattern(entry) {
        return same_mailbox(entry, name);
    }
    let delimiter = delimiter.and_then(|text| text.chars().next());
    // INBOX is case-insensitive (RFC 3501 section 5.1), so `inbox*` selects it too.
    let fold_case = name.eq_ignore_ascii_case("INBOX");
    pattern_matches(entry, name, delimiter, fold_case)
}

/// Whether an entry is a `LIST` pattern rather than a name.
pub fn is_pattern(entry: &str) -> bool {
    entry.contains(['*', '%'])
}

/// `LIST` wildcard matching: `*` any run, `%` any run without `delimiter`. Dynamic programming
/// over (pattern position, name position), so no pattern can make it exponential.
fn pattern_matches(pattern: &str, name: &str, delimiter: Option<char>, fold_case: bool) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let same = |a: char, b: char| a == b || (fold_case && a.eq_ignore_ascii_case(&b));
    // `rest[j]`: the pattern from position `i` on matches the name from position `j` on;
    // computed for `i` from the end of the pattern down to 0.
    let mut rest: Vec<bool> = (0..=name.len()).map(|j| j == name.len()).collect();
    for &wanted in pattern.iter().rev() {
        let mut current = vec![false; name.len() + 1];
        for j in (0..=name.len()).rev() {
            let next = name.get(j).copied();
            current[j] = match wanted {
                '*' => rest[j] || (next.is_some() && current[j + 1]),
                '%' => rest[j] || (next.is_some_and(|c| Some(c) != delimiter) && current[j + 1]),
                literal => next.is_some_and(|c| same(literal, c)) && rest[j + 1],
            };
        }
        rest = current;
    }
    rest[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(entries: &[&str]) -> MailboxSelection {
        MailboxSelection::Only(entries.iter().map(|entry| (*entry).to_owned()).collect())
    }

    #[test]
    fn names_match_exactly_except_inbox() {
        let selection = only(&["inbox", "Work"]);
        assert!(selection.includes("INBOX"));
        assert!(selection.includes("Work"));
        assert!(!selection.includes("work"));
        assert!(!selection.includes("Work/Old"));
        assert!(MailboxSelection::All.includes("anything"));
    }

    #[test]
    fn star_crosses_levels_and_percent_stays_within_one() {
        let star = only(&["Projects/*"]);
        let percent = only(&["Projects/%"]);
        for (name, by_star, by_percent) in [
            ("Projects/2026", true, true),
            ("Projects/2026/Q1", true, false),
            ("Projects/", true, true),
            ("Projects", false, false),
            ("Archive/Projects/2026", false, false),
        ] {
            assert_eq!(star.includes_within(name, Some("/")), by_star, "* {name}");
            assert_eq!(
                percent.includes_within(name, Some("/")),
                by_percent,
                "% {name}"
            );
        }
        let dotted = only(&["Projects.%"]);
        assert!(dotted.includes_within("Projects.2026", Some(".")));
        assert!(!dotted.includes_within("Projects.2026.Q1", Some(".")));
    }

    #[test]
    fn without_a_known_delimiter_percent_matches_like_star() {
        assert!(only(&["Projects/%"]).includes("Projects/2026/Q1"));
        assert!(only(&["%"]).includes_within("Top", None));
    }

    #[test]
    fn wildcards_in_the_middle_and_several_of_them() {
        let selection = only(&["*/Sent*", "Lists/%/Important"]);
        assert!(selection.includes_within("Work/Sent Items", Some("/")));
        assert!(selection.includes_within("A/B/Sent", Some("/")));
        assert!(!selection.includes_within("Sent", Some("/")));
        assert!(selection.includes_within("Lists/rust/Important", Some("/")));
        assert!(!selection.includes_within("Lists/rust/x/Important", Some("/")));
        assert!(only(&["*"]).includes_within("", Some("/")));
        assert!(
            !only(&["?"]).includes_within("x", Some("/")),
            "? is a literal"
        );
    }

    #[test]
    fn inbox_is_case_insensitive_in_patterns_too() {
        assert!(only(&["inbox*"]).includes_within("INBOX", Some("/")));
        assert!(only(&["IN%"]).includes_within("inbox", Some("/")));
        assert!(!only(&["inbox*"]).includes_within("INBOX/Receipts", Some("/")));
        assert!(only(&["INBOX/*"]).includes_within("INBOX/Receipts", Some("/")));
    }

    #[test]
    fn a_long_name_and_many_stars_stay_fast() {
        let name = "a".repeat(200);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!only(&[pattern.as_str()]).includes(&name));
    }
}
