//! SMTP replies (RFC 5321 section 4.2): parsing lines into a [`Reply`], and what a code means.
//!
//! Purpose: turn `250-first\r\n250 last\r\n` into one [`Reply`] with its code, its enhanced status
//! code (RFC 3463, `5.7.1`) and its text, without any I/O, so every server quirk is a byte-string
//! test.
//! Non-goal: deciding what to do about a reply; `classify` does that.
//! Key decision: input is bounded: a line longer than [`MAX_LINE`] or a reply of more than
//! [`MAX_LINES`] lines is a protocol error, so a hostile server cannot make the client buffer
//! without end.

use std::fmt;

/// The longest reply line accepted, CRLF included (RFC 5321 allows 512; servers send longer).
pub const MAX_LINE: usize = 4096;
/// The most lines one reply may have (an EHLO reply has one per extension).
pub const MAX_LINES: usize = 128;

/// A complete SMTP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    lines: Vec<String>,
}

/// What kind of answer a reply is, by its first digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// 2xx: done.
    Positive,
    /// 3xx: go on (`334` during AUTH, `354` after DATA).
    Intermediate,
    /// 4xx: refused for now; the same command may succeed later.
    Transient,
    /// 5xx (and anything unknown): refused for good.
    Permanent,
}

impl Reply {
    /// A reply of `code` with these text lines (for tests and synthesized replies).
    pub fn new(code: u16, lines: Vec<String>) -> Self {
        Reply { code, lines }
    }

    /// The three-digit code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The text of each line, after the code and its separator.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The kind of answer, by the first digit.
    pub fn kind(&self) -> ReplyKind {
        match self.code / 100 {
            2 => ReplyKind::Positive,
            3 => ReplyKind::Intermediate,
            4 => ReplyKind::Transient,
            _ => ReplyKind::Permanent,
        }
    }

    /// True for 2xx.
    pub fn is_positive(&self) -> bool {
        self.kind() == ReplyKind::Positive
    }

    /// The enhanced status code (RFC 3463) at the start of the first line, e.g. `"5.7.1"`.
    pub fn enhanced_code(&self) -> Option<&str> {
        let first = self.lines.first()?;
        let candidate = first.split_whitespace().next()?;
        is_enhanced_code(candidate).then_some(candidate)
    }

    /// The text of every line joined by spaces: the server's words, for people and logs.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }
}

impl fmt::Display for Reply {
    /// `550 5.7.1 Rejected`: the code and the text, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        if text.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {text}", self.code)
        }
    }
}

/// `class.subject.detail`, class 2, 4 or 5, each part one to three digits.
fn is_enhanced_code(text: &str) -> bool {
    let mut parts = text.split('.');
    let class_ok = matches!(parts.next(), Some("2" | "4" | "5"));
    let rest: Vec<&str> = parts.collect();
    class_ok
        && rest.len() == 2
        && rest
            .iter()
            .all(|part| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()))
}

/// Why bytes from the server are not an SMTP reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// Occurs when a line does not start with three digits followed by a space, a hyphen or its end.
    #[error("malformed reply line {line:?}")]
    Malformed {
        /// The line, shortened to 80 characters.
        line: String,
    },
    /// Occurs when the lines of one multi-line reply carry different codes.
    #[error("reply lines disagree on the code: {first} then {then}")]
    MixedCodes {
        /// The first line's code.
        first: u16,
        /// The disagreeing code.
        then: u16,
    },
    /// Occurs when a reply has more than [`MAX_LINES`] lines or a line exceeds [`MAX_LINE`].
    #[error("reply too long")]
    TooLong,
}

/// Collects the lines of one reply until its last line arrives.
#[derive(Debug, Default)]
pub struct ReplyBuilder {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyBuilder {
    /// Adds one line (with or without its CRLF); returns the reply once its last line is in.
    ///
    /// # Errors
    ///
    /// [`ReplyError`] when the line is not part of a well-formed reply.
    pub fn push(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        if line.len() > MAX_LINE || self.lines.len() >= MAX_LINES {
            return Err(ReplyError::TooLong);
        }
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\r', '\n']);
        let (code, last, text) = split_line(line)?;
        match self.code {
            Some(first) if first != code => {
                return Err(ReplyError::MixedCodes { first, then: code });
            }
            _ => self.code = Some(code),
        }
        self.lines.push(text.to_owned());
        if !last {
            return Ok(None);
        }
        let lines = std::mem::take(&mut self.lines);
        self.code = None;
        Ok(Some(Reply { code, lines }))
    }
}

/// `250-text` → (250, false, "text"); `250 text` and `250` → (250, true, …).
fn split_line(line: &str) -> Result<(u16, bool, &str), ReplyError> {
    let malformed = || ReplyError::Malformed {
        line: line.chars().take(80).collect(),
    };
    let digits = line.get(..3).ok_or_else(malformed)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return Err(malformed());
    }
    let code: u16 = digits.parse().map_err(|_| malformed())?;
    match line.as_bytes().get(3) {
        None => Ok((code, true, "")),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(malformed()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Result<Vec<Reply>, ReplyError> {
        let mut builder = ReplyBuilder::default();
        let mut replies = Vec::new();
        for line in lines {
            if let Some(reply) = builder.push(line.as_bytes())? {
                replies.push(reply);
            }
        }
        Ok(replies)
    }

    #[test]
    fn single_and_multi_line_replies() {
        let replies = parse(&[
            "220 localhost ESMTP ready\r\n",
            "250-localhost\r\n",
            "250-PIPELINING\r\n",
            "250 SIZE 1000\r\n",
        ])
        .unwrap();
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0].code(), 220);
        assert_eq!(replies[0].text(), "localhost ESMTP ready");
        assert_eq!(replies[1].lines(), ["localhost", "PIPELINING", "SIZE 1000"]);
        assert_eq!(replies[1].kind(), ReplyKind::Positive);
    }

    #[test]
    fn enhanced_codes_and_display() {
        let reply = parse(&["550 5.7.1 Rejected (test sink PermFail)"]).unwrap()[0].clone();
        assert_eq!(reply.enhanced_code(), Some("5.7.1"));
        assert_eq!(reply.kind(), ReplyKind::Permanent);
        assert_eq!(reply.to_string(), "550 5.7.1 Rejected (test sink PermFail)");
        let plain = parse(&["250 OK"]).unwrap()[0].clone();
        assert_eq!(plain.enhanced_code(), None);
        assert_eq!(parse(&["354"]).unwrap()[0].to_string(), "354");
        assert_eq!(
            parse(&["451 4.3.0 later"]).unwrap()[0].kind(),
            ReplyKind::Transient
        );
        assert_eq!(parse(&["334 "]).unwrap()[0].kind(), ReplyKind::Intermediate);
    }

    #[test]
    fn malformed_lines_are_refused() {
        for line in ["", "25", "abc hello", "250_x", "099 zero", "2500 x"] {
            assert!(
                matches!(parse(&[line]), Err(ReplyError::Malformed { .. })),
                "{line:?}"
            );
        }
        assert_eq!(
            parse(&["250-a", "251 b"]),
            Err(ReplyError::MixedCodes {
                first: 250,
                then: 251
            })
        );
    }

    #[test]
    fn input_is_bounded() {
        let long = format!("250 {}", "x".repeat(MAX_LINE));
        assert_eq!(parse(&[&long]), Err(ReplyError::TooLong));
        let many: Vec<&str> = std::iter::repeat_n("250-x", MAX_LINES + 1).collect();
        assert_eq!(parse(&many), Err(ReplyError::TooLong));
    }
}
