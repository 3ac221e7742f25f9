//! SASL for IMAP `AUTHENTICATE` and SMTP `AUTH`, without I/O.
//!
//! Purpose: build the client's messages for XOAUTH2, OAUTHBEARER (RFC 7628), PLAIN (RFC 4616) and LOGIN,
//! understand the JSON error challenge an OAuth server sends when it rejects a token, and say what to
//! answer so the server finishes the exchange (tagged `NO` / `535`) instead of waiting forever.
//!
//! - [`initial`]: the client's first message of each client-first mechanism, as raw bytes.
//! - [`challenge`]: decoding and classifying the OAuth error challenge, and the reply it needs.
//! - [`exchange`]: [`SaslExchange`], the state machine IMAP and SMTP code feed challenges into.
//! - [`imap`]: the adapter to `async_imap::Authenticator`.
//!
//! Non-goal: base64 and line framing. Every byte string here is raw; the caller encodes it as its
//! protocol wants (async-imap does it itself, SMTP sends `AUTH XOAUTH2 <base64>`). Server-side SASL is out
//! of scope too.
//!
//! Key decision: the exchange is a plain state machine (`challenge in, step out`), so the same code serves
//! IMAP and SMTP and every test is a byte string. Secret output stays in `SecretBox<Vec<u8>>`.

pub mod challenge;
pub mod exchange;
pub mod imap;
pub mod initial;

use std::fmt;
use std::str::FromStr;

use crate::error::SaslError;

pub use challenge::{
    ChallengeVerdict, OAuthErrorChallenge, decode_oauth_error, error_challenge_reply,
};
pub use exchange::{Credentials, SaslExchange, Step};
pub use imap::{ImapAuthenticator, SaslReport, SaslResponse};
pub use initial::{oauthbearer, plain, xoauth2};

/// A SASL mechanism Postern can use as a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// Google's and Microsoft's bearer-token mechanism; the only OAuth one Microsoft accepts.
    XOAuth2,
    /// RFC 7628 bearer-token mechanism (Google, Yahoo, Dovecot, Stalwart).
    OAuthBearer,
    /// RFC 4616 user name and password in one message.
    Plain,
    /// The non-standard LOGIN mechanism: the server prompts for user name, then password.
    Login,
}

impl Mechanism {
    /// Every mechanism, in the order Postern prefers them when a server offers several.
    pub const ALL: [Mechanism; 4] = [
        Mechanism::XOAuth2,
        Mechanism::OAuthBearer,
        Mechanism::Plain,
        Mechanism::Login,
    ];

    /// The name as written in IMAP `AUTHENTICATE`, SMTP `AUTH` and capability lists.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    /// Whether the mechanism carries an OAuth bearer token (and so may answer with an error challenge).
    pub const fn is_oauth(self) -> bool {
        matches!(self, Mechanism::XOAuth2 | Mechanism::OAuthBearer)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mechanism {
    type Err = SaslError;

    /// Parses a mechanism name case-insensitively, as SASL names are compared (RFC 4422 section 3.1).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Mechanism::ALL
            .into_iter()
            .find(|mechanism| mechanism.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| SaslError::UnknownMechanism {
                name: name.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parsing() {
        for mechanism in Mechanism::ALL {
            assert_eq!(mechanism.as_str().parse::<Mechanism>().unwrap(), mechanism);
            assert_eq!(mechanism.to_string(), mechanism.as_str());
        }
    }

    #[test]
    fn protocol_names_are_the_wire_names() {
        let names: Vec<&str> = Mechanism::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["XOAUTH2", "OAUTHBEARER", "PLAIN", "LOGIN"]);
    }

    #[test]
    fn parsing_ignores_case() {
        assert_eq!(
            "oauthBearer".parse::<Mechanism>().unwrap(),
            Mechanism::OAuthBearer
        );
        assert_eq!("xoauth2".parse::<Mechanism>().unwrap(), Mechanism::XOAuth2);
    }

    #[test]
    fn unknown_names_are_an_error_naming_them() {
        let err = "CRAM-MD5".parse::<Mechanism>().unwrap_err();
        assert!(matches!(&err, SaslError::UnknownMechanism { name } if name == "CRAM-MD5"));
        assert!("XOAUTH".parse::<Mechanism>().is_err());
        assert!("".parse::<Mechanism>().is_err());
    }

    #[test]
    fn only_bearer_mechanisms_are_oauth() {
        assert!(Mechanism::XOAuth2.is_oauth());
        assert!(Mechanism::OAuthBearer.is_oauth());
        assert!(!Mechanism::Plain.is_oauth());
        assert!(!Mechanism::Login.is_oauth());
    }
}
