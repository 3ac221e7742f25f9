//! The text of the commands message operations send, built from checked values only.
//!
//! Purpose: [`Flag`] (a system flag or a keyword atom, checked), [`SearchText`] (what a caller
//! searches for, checked), and the pure functions that put them, UIDs and mailbox names into
//! command text; tested without a server.
//! Non-goal: sending anything (`ops::wire` does).
//! Key decision: a caller's text never becomes IMAP syntax. Flags must be atoms (or one of the five
//! settable system flags), mailbox names and ASCII search text go as quoted strings, non-ASCII
//! search text as a LITERAL+ literal with `CHARSET UTF-8`; anything else is refused before a
//! connection is opened.

use std::fmt;

use crate::capabilities::Capabilities;
use crate::ops::error::{FlagError, OpsError, SearchTextError};

/// The longest keyword accepted; servers have limits of their own (Dovecot: 250 characters).
pub const MAX_FLAG_LEN: usize = 200;

/// The longest search text accepted.
pub const MAX_SEARCH_LEN: usize = 1000;

/// The system flags a client may set or clear (RFC 3501 section 2.3.2; `\Recent` is the server's).
const SYSTEM_FLAGS: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];

/// A flag a client may set or clear: one of the settable system flags, in its canonical spelling,
/// or a keyword that is an IMAP atom (`$Important`, `Work`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flag(String);

impl Flag {
    /// Checks a flag. System flags are matched case-insensitively (`\seen` is `\Seen`).
    ///
    /// # Errors
    ///
    /// [`FlagError`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Flag, FlagError> {
        if text.is_empty() {
            return Err(FlagError::Empty);
        }
        if text.starts_with('\\') {
            return SYSTEM_FLAGS
                .iter()
                .find(|known| known.eq_ignore_ascii_case(text))
                .map(|known| Flag((*known).to_owned()))
                .ok_or_else(|| FlagError::UnknownSystemFlag(text.to_owned()));
        }
        if text.len() > MAX_FLAG_LEN {
            return Err(FlagError::TooLong { max: MAX_FLAG_LEN });
        }
        match text.chars().find(|c| !is_atom_char(*c)) {
            Some(character) => Err(FlagError::InvalidCharacter {
                flag: text.to_owned(),
                character,
            }),
            None => Ok(Flag(text.to_owned())),
        }
    }

    /// `\Deleted`, which marks a message for expunging.
    pub fn deleted() -> Flag {
        Flag("\\Deleted".to_owned())
    }

    /// The flag as IMAP spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `ATOM-CHAR` of RFC 3501: printable ASCII except the atom-specials `( ) { SP % * " \ ]`.
fn is_atom_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '(' | ')' | '{' | '%' | '*' | '"' | '\\' | ']')
}

/// A text to search for on the server (`UID SEARCH TEXT`): not blank, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    /// Checks a search text.
    ///
    /// # Errors
    ///
    /// [`SearchTextError`] naming what is wrong.
    pub fn parse(text: &str) -> Result<SearchText, SearchTextError> {
        if text.trim().is_empty() {
            return Err(SearchTextError::Empty);
        }
        if text.len() > MAX_SEARCH_LEN {
            return Err(SearchTextError::TooLong {
                max: MAX_SEARCH_LEN,
            });
        }
        if text.chars().any(char::is_control) {
            return Err(SearchTextError::ControlCharacter);
        }
        Ok(SearchText(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `text` as an IMAP quoted string; `None` when a quoted string cannot carry it (CR, LF, NUL or
/// 8-bit bytes, which need a literal).
pub(crate) fn quoted(text: &str) -> Option<String> {
    if text
        .bytes()
        .any(|byte| byte == b'\r' || byte == b'\n' || byte == 0 || byte >= 0x80)
    {
        return None;
    }
    Some(format!(
        "\"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// A mailbox name as a command argument.
pub(crate) fn mailbox_argument(name: &str) -> Result<String, OpsError> {
    quoted(name).ok_or_else(|| OpsError::UnusableMailboxName(name.to_owned()))
}

/// The `UID SEARCH` criteria for messages whose header or body contains `text`: a quoted string
/// when it is ASCII, else a non-synchronizing literal in UTF-8 (which needs LITERAL+).
pub(crate) fn text_criteria(
    text: &SearchText,
    capabilities: &Capabilities,
) -> Result<String, OpsError> {
    if let Some(quoted) = quoted(text.as_str()) {
        return Ok(format!("TEXT {quoted}"));
    }
    if !capabilities.literal_plus() {
        return Err(OpsError::Unsupported {
            missing: "LITERAL+ (needed to search for non-ASCII text)",
        });
    }
    let bytes = text.as_str().len();
    Ok(format!(
        "CHARSET UTF-8 TEXT {{{bytes}+}}\r\n{}",
        text.as_str()
    ))
}

/// `UID STORE <uid> +FLAGS.SILENT (...)` (`add`) or `-FLAGS.SILENT`.
pub(crate) fn store_command(uid: u32, add: bool, flags: &[Flag]) -> String {
    let sign = if add { '+' } else { '-' };
    let list: Vec<&str> = flags.iter().map(Flag::as_str).collect();
    format!("UID STORE {uid} {sign}FLAGS.SILENT ({})", list.join(" "))
}

/// How a message leaves its mailbox for another one, given what the server offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MoveMethod {
    /// `UID MOVE` (RFC 6851): atomic.
    Move,
    /// `UID COPY`, `\Deleted`, then `UID EXPUNGE` of that UID alone (UIDPLUS).
    CopyThenExpunge,
}

impl MoveMethod {
    /// The method for a server; `None` when it has neither MOVE nor UIDPLUS (a plain EXPUNGE
    /// after a COPY would also remove other messages marked `\Deleted`).
    pub(crate) fn for_server(capabilities: &Capabilities) -> Option<MoveMethod> {
        if capabilities.move_command() {
            Some(MoveMethod::Move)
        } else if capabilities.uidplus() {
            Some(MoveMethod::CopyThenExpunge)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_flags_are_recognised_in_any_case_and_others_refused() {
        assert_eq!(Flag::parse("\\seen").unwrap().as_str(), "\\Seen");
        assert_eq!(Flag::parse("\\FLAGGED").unwrap().as_str(), "\\Flagged");
        assert_eq!(
            Flag::parse("\\Recent"),
            Err(FlagError::UnknownSystemFlag("\\Recent".into()))
        );
        assert_eq!(
            Flag::parse("\\Important"),
            Err(FlagError::UnknownSystemFlag("\\Important".into()))
        );
    }

    #[test]
    fn keywords_must_be_atoms() {
        assert_eq!(Flag::parse("$Important").unwrap().as_str(), "$Important");
        assert_eq!(Flag::parse("work-2026").unwrap().as_str(), "work-2026");
        assert_eq!(Flag::parse(""), Err(FlagError::Empty));
        for (text, bad) in [
            ("two words", ' '),
            ("a)b", ')'),
            ("x\r\nA1 DELETE INBOX", '\r'),
            ("caf\u{e9}", '\u{e9}'),
            ("star*", '*'),
            ("q\"", '"'),
            ("br]", ']'),
        ] {
            assert_eq!(
                Flag::parse(text),
                Err(FlagError::InvalidCharacter {
                    flag: text.into(),
                    character: bad
                }),
                "{text:?}"
            );
        }
        let long = "k".repeat(MAX_FLAG_LEN + 1);
        assert_eq!(
            Flag::parse(&long),
            Err(FlagError::TooLong { max: MAX_FLAG_LEN })
        );
    }

    #[test]
    fn store_commands_list_the_flags_silently() {
        let flags = [
            Flag::parse("\\Seen").unwrap(),
            Flag::parse("$Work").unwrap(),
        ];
        assert_eq!(
            store_command(42, true, &flags),
            "UID STORE 42 +FLAGS.SILENT (\\Seen $Work)"
        );
        assert_eq!(
            store_command(7, false, &flags[..1]),
            "UID STORE 7 -FLAGS.SILENT (\\Seen)"
        );
    }

    #[test]
    fn search_text_is_checked_and_never_becomes_syntax() {
        assert_eq!(SearchText::parse("  "), Err(SearchTextError::Empty));
        assert_eq!(
            SearchText::parse("a\r\nA1 LOGOUT"),
            Err(SearchTextError::ControlCharacter)
        );
        assert!(matches!(
            SearchText::parse(&"x".repeat(MAX_SEARCH_LEN + 1)),
            Err(SearchTextError::TooLong { .. })
        ));
        let plain = Capabilities::from_names(["IMAP4rev1"]);
        let tricky = SearchText::parse(r#"budget" OR ALL \"#).unwrap();
        assert_eq!(
            text_criteria(&tricky, &plain).unwrap(),
            r#"TEXT "budget\" OR ALL \\""#
        );
    }

    #[test]
    fn non_ascii_search_text_goes_as_a_literal_when_the_server_allows() {
        let text = SearchText::parse("caf\u{e9}").unwrap();
        let dovecot = Capabilities::from_names(["IMAP4rev1", "LITERAL+"]);
        assert_eq!(
            text_criteria(&text, &dovecot).unwrap(),
            "CHARSET UTF-8 TEXT {5+}\r\ncaf\u{e9}"
        );
        let plain = Capabilities::from_names(["IMAP4rev1"]);
        assert!(matches!(
            text_criteria(&text, &plain),
            Err(OpsError::Unsupported { .. })
        ));
    }

    #[test]
    fn moving_needs_move_or_uidplus() {
        let both = Capabilities::from_names(["MOVE", "UIDPLUS"]);
        assert_eq!(MoveMethod::for_server(&both), Some(MoveMethod::Move));
        let uidplus = Capabilities::from_names(["UIDPLUS"]);
        assert_eq!(
            MoveMethod::for_server(&uidplus),
            Some(MoveMethod::CopyThenExpunge)
        );
        assert_eq!(
            MoveMethod::for_server(&Capabilities::from_names(["IMAP4rev1"])),
            None
        );
        assert_eq!(
            mailbox_argument("Archive/2026").unwrap(),
            "\"Archive/2026\""
        );
        assert!(matches!(
            mailbox_argument("bad\r\nname"),
            Err(OpsError::UnusableMailboxName(_))
        ));
    }
}
