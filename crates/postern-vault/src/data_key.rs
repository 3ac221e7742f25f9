//! Data keys: the random keys that actually encrypt secrets, and their wrapped (stored) form.
//!
//! Purpose: generate data keys and wrap / unwrap them with the master key.
//! Non-goal: persistence; the store keeps [`WrappedKey`]s and hands them back at start-up.
//! Key decision: a wrapped key is `version (1) | nonce (24) | encrypted key (32) | tag (16)`, and
//! its authenticated data is the version and the key id, so a wrapped key copied to another id
//! does not unwrap.

use std::fmt;

use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};

use crate::cipher::{self, AuthFailed, KEY_LEN, KeyBytes, NONCE_LEN, TAG_LEN};
use crate::master_key::MasterKey;

/// Format version of a wrapped data key.
const WRAP_VERSION: u8 = 1;

/// Numeric id of a data key; sealed secrets name the key that opens them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An unwrapped 256-bit data key, wiped on drop. Its `Debug` prints `DataKey(<redacted>)`.
pub struct DataKey(SecretBox<KeyBytes>);

impl DataKey {
    pub(crate) fn generate() -> Self {
        Self(cipher::random_key())
    }

    pub(crate) fn bytes(&self) -> &KeyBytes {
        self.0.expose_secret()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A data key encrypted with the master key: what the store persists.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The data key's id.
    pub id: KeyId,
    /// The encrypted key (opaque; 73 bytes in format version 1).
    pub bytes: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("id", &self.id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Why a wrapped key could not be unwrapped.
#[derive(Debug)]
pub(crate) enum UnwrapError {
    /// Wrong length or unknown version.
    Malformed,
    /// The tag did not verify: another master key, or edited bytes.
    Auth,
}

impl From<AuthFailed> for UnwrapError {
    fn from(_: AuthFailed) -> Self {
        Self::Auth
    }
}

/// Encrypts `key` under `master`, bound to `id`.
pub(crate) fn wrap(master: &MasterKey, id: KeyId, key: &DataKey) -> WrappedKey {
    let nonce = cipher::random_nonce();
    let mut encrypted = *key.bytes();
    let tag = cipher::encrypt_in_place(master.bytes(), &nonce, &aad(id), &mut encrypted);
    let mut bytes = Vec::with_capacity(1 + NONCE_LEN + KEY_LEN + TAG_LEN);
    bytes.push(WRAP_VERSION);
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&encrypted);
    bytes.extend_from_slice(&tag);
    WrappedKey { id, bytes }
}

/// Decrypts a wrapped key directly into its wiped-on-drop home.
pub(crate) fn unwrap(master: &MasterKey, wrapped: &WrappedKey) -> Result<DataKey, UnwrapError> {
    let (version, rest) = wrapped.bytes.split_first().ok_or(UnwrapError::Malformed)?;
    let (nonce, rest) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(UnwrapError::Malformed)?;
    let (encrypted, tag) = rest
        .split_first_chunk::<KEY_LEN>()
        .ok_or(UnwrapError::Malformed)?;
    let tag = <&[u8; TAG_LEN]>::try_from(tag).map_err(|_| UnwrapError::Malformed)?;
    if *version != WRAP_VERSION {
        return Err(UnwrapError::Malformed);
    }
    let mut key = SecretBox::new(Box::new(*encrypted));
    let aad = aad(wrapped.id);
    cipher::decrypt_in_place(master.bytes(), nonce, &aad, key.expose_secret_mut(), tag)?;
    Ok(DataKey(key))
}

fn aad(id: KeyId) -> [u8; 5] {
    let [a, b, c, d] = id.0.to_be_bytes();
    [WRAP_VERSION, a, b, c, d]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_round_trip() {
        let master = MasterKey::generate();
        let key = DataKey::generate();
        let wrapped = wrap(&master, KeyId(3), &key);
        assert_eq!(wrapped.bytes.len(), 73);
        assert_eq!(unwrap(&master, &wrapped).unwrap().bytes(), key.bytes());
    }

    #[test]
    fn a_wrapped_key_moved_to_another_id_does_not_unwrap() {
        let master = MasterKey::generate();
        let mut wrapped = wrap(&master, KeyId(3), &DataKey::generate());
        wrapped.id = KeyId(4);
        assert!(matches!(unwrap(&master, &wrapped), Err(UnwrapError::Auth)));
    }

    #[test]
    fn truncated_or_unknown_version_is_malformed() {
        let master = MasterKey::generate();
        let wrapped = wrap(&master, KeyId(1), &DataKey::generate());
        let mut short = wrapped.clone();
        short.bytes.pop();
        assert!(matches!(
            unwrap(&master, &short),
            Err(UnwrapError::Malformed)
        ));
        let mut future = wrapped;
        future.bytes[0] = 2;
        assert!(matches!(
            unwrap(&master, &future),
            Err(UnwrapError::Malformed)
        ));
    }
}
