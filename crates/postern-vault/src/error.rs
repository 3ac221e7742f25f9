//! The one error type of the vault.
//!
//! Purpose: tell the operator what to fix (a malformed or exposed master key, the wrong master key)
//! apart from data problems (a corrupt or tampered blob) and caller bugs (an unknown key id).
//! Non-goal: retry classification; nothing in the vault is transient.
//! Key decision: no variant carries key material or plaintext, and the malformed-key variant
//! describes the problem (length, position of the first bad character) without echoing the input.

use std::fmt;
use std::path::PathBuf;

use crate::KeyId;

/// Everything that can go wrong in `postern-vault`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// Occurs when a master key (from the environment, the key file or [`crate::MasterKey::from_hex`])
    /// is not exactly 64 hexadecimal characters.
    #[error(
        "the master key from {origin} is malformed: {problem}; expected 64 hex characters \
         (32 bytes), e.g. the output of `openssl rand -hex 32`"
    )]
    MalformedMasterKey {
        /// Where the key came from: the environment variable's name or the key file's path.
        origin: String,
        /// What is wrong with it.
        problem: MalformedKeyProblem,
    },

    /// Occurs when the master key file (or its folder) cannot be read, created or written.
    #[error("cannot use the master key file {}", path.display())]
    KeyFileIo {
        /// The file or folder the operation was about.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Occurs when the master key file grants any permission beyond read/write for its owner,
    /// so other users may already have read the key.
    #[error(
        "the master key file {} has permissions {mode:04o}; it must be readable by its owner only: \
         run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (e.g. `0o644`).
        mode: u32,
    },

    /// Occurs when no stored data key decrypts under the master key: the data dir was set up
    /// with another master key.
    #[error("cannot decrypt: master key does not match this data dir")]
    MasterKeyMismatch,

    /// Occurs when one stored data key is unreadable (truncated, unknown format, or failing
    /// authentication) while others decrypt fine under the same master key.
    #[error(
        "stored data key {0} is corrupt: it does not decrypt under the master key that opens \
         the other data keys"
    )]
    CorruptWrappedKey(KeyId),

    /// Occurs when a sealed secret names a data key the vault does not hold, or when asked to
    /// activate such a key.
    #[error("data key {0} is not loaded in the vault")]
    UnknownKey(KeyId),

    /// Occurs when removing the data key new secrets are sealed with; activate another key first.
    #[error("data key {0} is the active key and cannot be removed")]
    ActiveKeyInUse(KeyId),

    /// Occurs when bytes are not a sealed secret: too short or an unknown format version.
    #[error("sealed secret is malformed (too short or unknown format version)")]
    Malformed,

    /// Occurs when a sealed secret fails authentication with a known key: it was copied from
    /// another record (wrong context) or its bytes were edited.
    #[error("sealed secret failed authentication: it belongs to another record or was modified")]
    Tampered,

    /// Occurs when [`crate::Vault::open_str`] decrypts a secret that is not UTF-8 text.
    #[error("decrypted secret is not valid UTF-8 text")]
    NotUtf8,
}

/// What is wrong with a malformed master key; never contains the key itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedKeyProblem {
    /// The key has `found` characters instead of 64 (surrounding whitespace ignored).
    WrongLength {
        /// How many characters were found.
        found: usize,
    },
    /// The character at zero-based `position` is not a hexadecimal digit.
    NotHex {
        /// Zero-based byte offset of the first offending character.
        position: usize,
    },
}

impl fmt::Display for MalformedKeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongLength { found } => write!(f, "it has {found} characters"),
            Self::NotHex { position } => {
                write!(f, "the character at position {position} is not a hex digit")
            }
        }
    }
}
