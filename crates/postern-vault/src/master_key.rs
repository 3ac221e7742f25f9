//! The master key: the one secret the operator keeps, which wraps every data key.
//!
//! Purpose: parse, generate and hex-encode the 256-bit master key without the key ever reaching a
//! log line, a Debug output or an unwiped buffer.
//! Non-goal: finding the key (environment or file); that is `key_file`.
//! Key decision: the master key never encrypts secrets directly, only data keys, so rotating it
//! re-wraps a handful of keys instead of re-encrypting every secret.

use std::fmt;

use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox, SecretString};

use crate::cipher::{self, KEY_LEN, KeyBytes};
use crate::error::{MalformedKeyProblem, VaultError};

/// Length of a master key written as hex.
const HEX_LEN: usize = KEY_LEN * 2;

/// The 256-bit master key. Its `Debug` prints `MasterKey(<redacted>)`.
pub struct MasterKey {
    bytes: SecretBox<KeyBytes>,
}

impl MasterKey {
    /// Parses 64 hex characters (either case; surrounding whitespace such as a trailing newline
    /// is ignored). The error never repeats the input.
    pub fn from_hex(hex: &str) -> Result<Self, VaultError> {
        Self::parse(hex, "the provided value")
    }

    /// A fresh random master key.
    pub fn generate() -> Self {
        Self {
            bytes: cipher::random_key(),
        }
    }

    /// The key as 64 lowercase hex characters, e.g. to show once after generating it.
    pub fn to_hex(&self) -> SecretString {
        SecretString::from(encode_hex(self.bytes()))
    }

    /// Like [`MasterKey::from_hex`], naming `origin` (an env var or a path) in the error.
    pub(crate) fn parse(hex: &str, origin: &str) -> Result<Self, VaultError> {
        let malformed = |problem| VaultError::MalformedMasterKey {
            origin: origin.to_owned(),
            problem,
        };
        let hex = hex.trim();
        if hex.len() != HEX_LEN {
            let found = hex.chars().count();
            return Err(malformed(MalformedKeyProblem::WrongLength { found }));
        }
        let mut bytes = SecretBox::new(Box::new([0u8; KEY_LEN]));
        hex::decode_to_slice(hex, bytes.expose_secret_mut()).map_err(|err| {
            malformed(match err {
                hex::FromHexError::InvalidHexCharacter { index, .. } => {
                    MalformedKeyProblem::NotHex { position: index }
                }
                _ => MalformedKeyProblem::WrongLength {
                    found: hex.chars().count(),
                },
            })
        })?;
        Ok(Self { bytes })
    }

    pub(crate) fn bytes(&self) -> &KeyBytes {
        self.bytes.expose_secret()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Lowercase hex into a `String` allocated once at its final size, so no copy of the key is
/// left behind by a reallocation; the caller moves it straight into a `SecretString`.
fn encode_hex(bytes: &KeyBytes) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(HEX_LEN);
    for byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn hex_round_trip_ignores_case_and_surrounding_whitespace() {
        let key = MasterKey::from_hex(&format!("  {}\n", HEX.to_uppercase())).unwrap();
        assert_eq!(key.to_hex().expose_secret(), HEX);
        assert_eq!(key.bytes()[1], 0x11);
    }

    #[test]
    fn wrong_length_is_refused_without_echoing_the_key() {
        let short = &HEX[..63];
        let err = MasterKey::from_hex(short).unwrap_err();
        assert!(matches!(
            err,
            VaultError::MalformedMasterKey {
                problem: MalformedKeyProblem::WrongLength { found: 63 },
                ..
            }
        ));
        let message = err.to_string();
        assert!(message.contains("64 hex characters"), "{message}");
        assert!(!message.contains(&short[..16]), "{message}");
        assert!(!format!("{err:?}").contains(&short[..16]));
    }

    #[test]
    fn non_hex_character_is_refused_without_echoing_the_key() {
        let bad = format!("{}g{}", &HEX[..10], &HEX[11..]);
        let err = MasterKey::from_hex(&bad).unwrap_err();
        assert!(matches!(
            err,
            VaultError::MalformedMasterKey {
                problem: MalformedKeyProblem::NotHex { position: 10 },
                ..
            }
        ));
        let message = err.to_string();
        assert!(!message.contains(&HEX[..10]), "{message}");
        assert!(!message.contains(&HEX[11..27]), "{message}");
    }

    #[test]
    fn generated_keys_differ_and_debug_is_redacted() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_ne!(a.to_hex().expose_secret(), b.to_hex().expose_secret());
        let debug = format!("{a:?}");
        assert_eq!(debug, "MasterKey(<redacted>)");
        assert!(!debug.contains(a.to_hex().expose_secret()));
    }
}
