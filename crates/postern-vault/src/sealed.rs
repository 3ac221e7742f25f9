//! Sealed secrets: the self-describing byte blobs the store keeps instead of plaintext.
//!
//! Purpose: the blob layout, `version (1) | key id (4, big-endian) | nonce (24) | ciphertext | tag (16)`,
//! and sealing / opening one with a given data key.
//! Non-goal: choosing the key; `Vault` does that.
//! Key decision: the caller's context (e.g. `account:42:refresh_token`) is authenticated but not
//! stored, together with the header, so a blob copied to another row or relabelled with another
//! key id fails to open instead of yielding someone else's secret.

use std::fmt;

use secrecy::{ExposeSecretMut, SecretBox};

use crate::cipher::{self, NONCE_LEN, TAG_LEN};
use crate::data_key::{DataKey, KeyId};
use crate::error::VaultError;

/// Format version of a sealed secret.
const SEAL_VERSION: u8 = 1;
/// Version byte plus key id.
const HEADER_LEN: usize = 5;

/// An encrypted secret. Its `Debug` shows only the key id and the length.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    bytes: Vec<u8>,
    key_id: KeyId,
}

/// A validated view of a sealed blob.
struct Parts<'a> {
    header: &'a [u8; HEADER_LEN],
    key_id: KeyId,
    nonce: &'a [u8; NONCE_LEN],
    ciphertext: &'a [u8],
    tag: &'a [u8; TAG_LEN],
}

impl Sealed {
    /// Accepts bytes read back from storage; refuses anything too short or of an unknown version.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, VaultError> {
        let key_id = split(&bytes).ok_or(VaultError::Malformed)?.key_id;
        Ok(Self { bytes, key_id })
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Consumes the blob, returning the bytes to store.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The id of the data key that opens this secret.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Encrypts `plaintext` under `key` (whose id is `key_id`), bound to `context`.
    pub(crate) fn seal(key_id: KeyId, key: &DataKey, context: &[u8], plaintext: &[u8]) -> Self {
        let header = header(key_id);
        let nonce = cipher::random_nonce();
        let body_start = HEADER_LEN + NONCE_LEN;
        // Sized up front: the plaintext copied in below is encrypted in place and never moved.
        let mut bytes = Vec::with_capacity(body_start + plaintext.len() + TAG_LEN);
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(plaintext);
        let aad = aad(&header, context);
        let tag = cipher::encrypt_in_place(key.bytes(), &nonce, &aad, &mut bytes[body_start..]);
        bytes.extend_from_slice(&tag);
        Self { bytes, key_id }
    }

    /// Decrypts with `key`, which must be the key named by [`Sealed::key_id`].
    pub(crate) fn open(
        &self,
        key: &DataKey,
        context: &[u8],
    ) -> Result<SecretBox<Vec<u8>>, VaultError> {
        let parts = split(&self.bytes).ok_or(VaultError::Malformed)?;
        let aad = aad(parts.header, context);
        let mut plaintext = SecretBox::new(Box::new(parts.ciphertext.to_vec()));
        cipher::decrypt_in_place(
            key.bytes(),
            parts.nonce,
            &aad,
            plaintext.expose_secret_mut(),
            parts.tag,
        )
        .map_err(|_| VaultError::Tampered)?;
        Ok(plaintext)
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

fn split(bytes: &[u8]) -> Option<Parts<'_>> {
    let (header, rest) = bytes.split_first_chunk::<HEADER_LEN>()?;
    let (nonce, rest) = rest.split_first_chunk::<NONCE_LEN>()?;
    let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>()?;
    let [version, id @ ..] = *header;
    if version != SEAL_VERSION {
        return None;
    }
    Some(Parts {
        header,
        key_id: KeyId(u32::from_be_bytes(id)),
        nonce,
        ciphertext,
        tag,
    })
}

fn header(key_id: KeyId) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = key_id.0.to_be_bytes();
    [SEAL_VERSION, a, b, c, d]
}

/// The header is fixed-length, so `header || context` is unambiguous.
fn aad(header: &[u8; HEADER_LEN], context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + context.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(context);
    aad
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn layout_is_version_key_id_nonce_ciphertext_tag() {
        let sealed = Sealed::seal(KeyId(0x0102_0304), &DataKey::generate(), b"ctx", b"hello");
        let bytes = sealed.as_bytes();
        assert_eq!(bytes.len(), 1 + 4 + 24 + 5 + 16);
        assert_eq!(&bytes[..5], &[1, 1, 2, 3, 4]);
        assert_eq!(sealed.key_id(), KeyId(0x0102_0304));
        assert!(!bytes.windows(5).any(|w| w == b"hello"));
    }

    #[test]
    fn from_bytes_round_trips_and_refuses_short_or_unknown_versions() {
        let key = DataKey::generate();
        let sealed = Sealed::seal(KeyId(9), &key, b"ctx", b"");
        let reread = Sealed::from_bytes(sealed.as_bytes().to_vec()).unwrap();
        assert_eq!(reread, sealed);
        assert_eq!(reread.open(&key, b"ctx").unwrap().expose_secret(), b"");

        let mut short = sealed.as_bytes().to_vec();
        short.pop();
        assert!(matches!(
            Sealed::from_bytes(short),
            Err(VaultError::Malformed)
        ));
        assert!(matches!(
            Sealed::from_bytes(Vec::new()),
            Err(VaultError::Malformed)
        ));
        let mut future = sealed.into_bytes();
        future[0] = 2;
        assert!(matches!(
            Sealed::from_bytes(future),
            Err(VaultError::Malformed)
        ));
    }
}
