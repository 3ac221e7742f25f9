//! What a server's EHLO reply advertises (RFC 5321 section 4.1.1.1), as typed fields.
//!
//! Purpose: read the keywords the client acts on (STARTTLS, AUTH, SIZE, PIPELINING, 8BITMIME,
//! SMTPUTF8) out of the reply's lines, without I/O.
//! Non-goal: every registered extension; unknown keywords are ignored.
//! Key decision: keywords are matched case-insensitively and the old `AUTH=PLAIN` spelling some
//! servers still send is read like `AUTH PLAIN`; `SIZE` without a number, or `SIZE 0`, means the
//! server declares no fixed limit (RFC 1870).

use super::reply::Reply;

/// The extensions of one EHLO reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// `STARTTLS`: the session can be upgraded to TLS.
    pub starttls: bool,
    /// `PIPELINING`: MAIL and RCPT commands may be sent without waiting for each reply.
    pub pipelining: bool,
    /// `8BITMIME`: `BODY=8BITMIME` is understood.
    pub eight_bit_mime: bool,
    /// `SMTPUTF8`: UTF-8 addresses are allowed.
    pub smtputf8: bool,
    /// `SIZE n`: the largest message the server accepts, when it declares one.
    pub size_limit: Option<u64>,
    /// Whether `SIZE` was advertised at all (then `MAIL FROM` may carry `SIZE=`).
    pub size: bool,
    /// The SASL mechanisms of `AUTH`, upper-cased, in the server's order.
    pub auth: Vec<String>,
}

impl Extensions {
    /// Reads the extensions from an EHLO reply; the first line (the server's name) is skipped.
    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut extensions = Extensions::default();
        for line in reply.lines().iter().skip(1) {
            extensions.read_line(line);
        }
        extensions
    }

    /// True when `mechanism` (e.g. `"XOAUTH2"`) is advertised.
    pub fn offers_auth(&self, mechanism: &str) -> bool {
        self.auth
            .iter()
            .any(|offered| offered.eq_ignore_ascii_case(mechanism))
    }

    fn read_line(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let Some(keyword) = words.next() else {
            return;
        };
        let keyword = keyword.to_ascii_uppercase();
        if let Some(old_style) = keyword.strip_prefix("AUTH=") {
            self.add_auth(std::iter::once(old_style).chain(words));
            return;
        }
        match keyword.as_str() {
            "STARTTLS" => self.starttls = true,
            "PIPELINING" => self.pipelining = true,
            "8BITMIME" => self.eight_bit_mime = true,
            "SMTPUTF8" => self.smtputf8 = true,
            "SIZE" => {
                self.size = true;
                self.size_limit = words
                    .next()
                    .and_then(|limit| limit.parse().ok())
                    .filter(|limit| *limit > 0);
            }
            "AUTH" => self.add_auth(words),
            _ => {}
        }
    }

    fn add_auth<'a>(&mut self, mechanisms: impl Iterator<Item = &'a str>) {
        for mechanism in mechanisms {
            let mechanism = mechanism.to_ascii_uppercase();
            if !self.auth.contains(&mechanism) {
                self.auth.push(mechanism);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ehlo(lines: &[&str]) -> Extensions {
        let lines = lines.iter().map(|line| (*line).to_owned()).collect();
        Extensions::from_ehlo(&Reply::new(250, lines))
    }

    #[test]
    fn dovecot_submission_before_and_after_tls() {
        let before = ehlo(&[
            "localhost",
            "8BITMIME",
            "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER",
            "BURL imap",
            "CHUNKING",
            "ENHANCEDSTATUSCODES",
            "SIZE",
            "STARTTLS",
            "PIPELINING",
        ]);
        assert!(before.starttls && before.pipelining && before.eight_bit_mime && before.size);
        assert_eq!(before.size_limit, None);
        assert!(before.offers_auth("xoauth2"));
        assert!(before.offers_auth("OAUTHBEARER"));
        assert!(!before.offers_auth("CRAM-MD5"));
    }

    #[test]
    fn size_limits_and_old_style_auth() {
        let gmail = ehlo(&[
            "smtp.gmail.com at your service",
            "SIZE 35882577",
            "AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
            "auth=login plain",
            "SMTPUTF8",
        ]);
        assert_eq!(gmail.size_limit, Some(35_882_577));
        assert!(gmail.smtputf8);
        assert_eq!(
            gmail.auth,
            [
                "LOGIN",
                "PLAIN",
                "XOAUTH2",
                "PLAIN-CLIENTTOKEN",
                "OAUTHBEARER",
                "XOAUTH"
            ]
        );
        assert_eq!(ehlo(&["x", "SIZE 0"]).size_limit, None);
        assert!(
            !ehlo(&["STARTTLS"]).starttls,
            "the first line is the server name"
        );
    }
}
