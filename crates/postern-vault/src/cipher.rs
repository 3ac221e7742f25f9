//! The AEAD primitive shared by key wrapping and secret sealing: XChaCha20-Poly1305 in place.
//!
//! Purpose: one place that touches `chacha20poly1305` and the OS random number generator, so the
//! wrapping and sealing modules only deal with byte layouts.
//! Non-goal: any framing; callers decide where nonce, ciphertext and tag live.
//! Key decision: encryption and decryption work in place on buffers the caller sized exactly, so
//! plaintext is never left behind in a reallocated (and unwiped) buffer. Nonces are 192-bit and
//! drawn at random, which XChaCha makes safe without a counter.

use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305};
use secrecy::SecretBox;

/// Length of master and data keys: 256 bits.
pub(crate) const KEY_LEN: usize = 32;
/// Length of an XChaCha20 nonce: 192 bits.
pub(crate) const NONCE_LEN: usize = 24;
/// Length of a Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;

/// Raw key material; only ever stored inside a [`SecretBox`].
pub(crate) type KeyBytes = [u8; KEY_LEN];

/// The authentication tag did not verify: wrong key, wrong associated data, or edited bytes.
#[derive(Debug)]
pub(crate) struct AuthFailed;

/// Fills `buf` from the operating system's random number generator.
///
/// # Panics
/// If the OS generator fails. There is no safe fallback for key or nonce material, and this
/// only happens on a badly broken system (no `getrandom` syscall and no `/dev/urandom`).
pub(crate) fn fill_random(buf: &mut [u8]) {
    if let Err(err) = getrandom::fill(buf) {
        panic!("the operating system's random number generator failed: {err}");
    }
}

/// A fresh random 256-bit key, generated directly on the heap inside its `SecretBox`.
pub(crate) fn random_key() -> SecretBox<KeyBytes> {
    SecretBox::init_with_mut(|key: &mut KeyBytes| fill_random(key))
}

/// A fresh random nonce.
pub(crate) fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    nonce
}

/// Encrypts `buf` in place and returns the tag.
///
/// # Panics
/// If `buf` exceeds XChaCha20's 256 GiB limit, far beyond any secret this crate stores.
pub(crate) fn encrypt_in_place(
    key: &KeyBytes,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> [u8; TAG_LEN] {
    let cipher = XChaCha20Poly1305::new(key.into());
    match cipher.encrypt_inout_detached(nonce.into(), aad, buf.into()) {
        Ok(tag) => tag.into(),
        Err(_) => panic!("a secret of {} bytes is too long to encrypt", buf.len()),
    }
}

/// Verifies `tag` and, only if it matches, decrypts `buf` in place.
pub(crate) fn decrypt_in_place(
    key: &KeyBytes,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), AuthFailed> {
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_inout_detached(nonce.into(), aad, buf.into(), tag.into())
        .map_err(|_| AuthFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_place_round_trip_and_wrong_aad_fails() {
        let key = [7u8; KEY_LEN];
        let nonce = random_nonce();
        let mut buf = *b"secret";
        let tag = encrypt_in_place(&key, &nonce, b"aad", &mut buf);
        assert_ne!(&buf, b"secret");
        let ciphertext = buf;
        assert!(decrypt_in_place(&key, &nonce, b"other", &mut buf, &tag).is_err());
        assert_eq!(buf, ciphertext, "a failed open must not touch the buffer");
        assert!(decrypt_in_place(&key, &nonce, b"aad", &mut buf, &tag).is_ok());
        assert_eq!(&buf, b"secret");
    }

    #[test]
    fn random_nonces_differ() {
        assert_ne!(random_nonce(), random_nonce());
    }
}
