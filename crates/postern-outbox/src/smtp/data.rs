//! The bytes of the DATA phase: CRLF line endings, dot-stuffing and the terminating line.
//!
//! Purpose: turn a stored message into exactly what goes on the wire after `354` (RFC 5321
//! section 4.5.2), and say whether it needs `BODY=8BITMIME`.
//! Non-goal: MIME encoding; the message is already built.
//! Key decision: a bare LF or CR is sent as CRLF (RFC 5321 forbids bare ones and servers answer
//! them differently), so what the receiver stores is the message with canonical line endings.

/// `message` with every line ending made CRLF and a final CRLF added when it lacks one: the
/// message as the receiver stores it.
pub fn with_crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 2);
    let mut bytes = message.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\r' => {
                if bytes.peek() == Some(&b'\n') {
                    bytes.next();
                }
                out.extend_from_slice(b"\r\n");
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            _ => out.push(byte),
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The message as sent after `354`: [`with_crlf`], a `.` doubled at the start of every line
/// that begins with one, and the `.` CRLF terminator.
pub fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let canonical = with_crlf(message);
    let mut out = Vec::with_capacity(canonical.len() + canonical.len() / 64 + 3);
    for line in canonical.split_inclusive(|byte| *byte == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// True when the message holds a byte above 127 (it then needs `BODY=8BITMIME`).
pub fn is_eight_bit(message: &[u8]) -> bool {
    !message.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_dots_are_doubled_and_the_end_is_marked() {
        let sent = dot_stuffed(b"Subject: x\r\n\r\n.hidden\r\n..two\r\nmid.dot\r\n.\r\n");
        assert_eq!(
            sent,
            b"Subject: x\r\n\r\n..hidden\r\n...two\r\nmid.dot\r\n..\r\n.\r\n".as_slice()
        );
    }

    #[test]
    fn bare_line_endings_become_crlf() {
        assert_eq!(
            dot_stuffed(b"a\nb\rc\r\n"),
            b"a\r\nb\r\nc\r\n.\r\n".as_slice()
        );
        assert_eq!(dot_stuffed(b"no end"), b"no end\r\n.\r\n".as_slice());
        assert_eq!(dot_stuffed(b"\n.x"), b"\r\n..x\r\n.\r\n".as_slice());
        assert_eq!(dot_stuffed(b""), b".\r\n".as_slice());
    }

    #[test]
    fn with_crlf_keeps_dots_and_fixes_endings() {
        assert_eq!(with_crlf(b".a\n..b\nc"), b".a\r\n..b\r\nc\r\n".as_slice());
        assert_eq!(with_crlf(b"x\r\n"), b"x\r\n".as_slice());
    }

    #[test]
    fn eight_bit_detection() {
        assert!(!is_eight_bit(b"plain ascii\r\n"));
        assert!(is_eight_bit("Grüße".as_bytes()));
    }
}
