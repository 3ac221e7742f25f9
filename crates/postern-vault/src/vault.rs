//! The unlocked vault: the data keys in memory and the operations the rest of Postern uses.
//!
//! Purpose: seal, open and reseal secrets; unlock, add, activate and remove data keys; re-wrap
//! them for a master key rotation.
//! Non-goal: persistence. The store keeps the wrapped keys and which one is active; the vault
//! only tells it what to write (`new_data_key`, `rewrap_all`).
//! Key decision: exactly one data key is active and always loaded (`unlock`, `set_active` and
//! `remove_key` keep that true), so sealing cannot fail; older keys stay loaded so existing
//! secrets keep opening until `rotate-key` has resealed them and the old key is removed.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::data_key::{self, DataKey, KeyId, UnwrapError, WrappedKey};
use crate::error::VaultError;
use crate::master_key::MasterKey;
use crate::sealed::Sealed;

/// The unwrapped data keys (wiped on drop) and the id of the active one.
pub struct Vault {
    keys: BTreeMap<KeyId, DataKey>,
    active: KeyId,
}

impl Vault {
    /// Unwraps every stored data key and makes `active` the key new secrets are sealed with.
    ///
    /// Fails with [`VaultError::MasterKeyMismatch`] when no key unwraps (the master key belongs
    /// to another data dir), [`VaultError::CorruptWrappedKey`] when only some do, and
    /// [`VaultError::UnknownKey`] when `active` is not among `wrapped`.
    pub fn unlock(
        master: &MasterKey,
        wrapped: &[WrappedKey],
        active: KeyId,
    ) -> Result<Vault, VaultError> {
        let mut keys = BTreeMap::new();
        let mut first_failure = None;
        for stored in wrapped {
            match data_key::unwrap(master, stored) {
                Ok(key) => {
                    keys.insert(stored.id, key);
                }
                Err(UnwrapError::Malformed) => {
                    return Err(VaultError::CorruptWrappedKey(stored.id));
                }
                Err(UnwrapError::Auth) => {
                    first_failure.get_or_insert(stored.id);
                }
            }
        }
        if let Some(id) = first_failure {
            return Err(if keys.is_empty() {
                VaultError::MasterKeyMismatch
            } else {
                VaultError::CorruptWrappedKey(id)
            });
        }
        if !keys.contains_key(&active) {
            return Err(VaultError::UnknownKey(active));
        }
        Ok(Vault { keys, active })
    }

    /// A fresh data key, wrapped for storage; the caller persists it, then calls
    /// [`Vault::unlock`] or [`Vault::add_key`].
    pub fn new_data_key(master: &MasterKey, id: KeyId) -> (WrappedKey, DataKey) {
        let key = DataKey::generate();
        (data_key::wrap(master, id, &key), key)
    }

    /// Loads `key` under `id`, replacing any key already loaded with that id (secrets sealed with
    /// the replaced key will no longer open). Does not change the active key.
    pub fn add_key(&mut self, id: KeyId, key: DataKey) {
        self.keys.insert(id, key);
    }

    /// Makes `id` the key new secrets are sealed with; it must be loaded.
    pub fn set_active(&mut self, id: KeyId) -> Result<(), VaultError> {
        if !self.keys.contains_key(&id) {
            return Err(VaultError::UnknownKey(id));
        }
        self.active = id;
        Ok(())
    }

    /// Unloads key `id` once nothing is sealed with it any more; the active key cannot be removed.
    pub fn remove_key(&mut self, id: KeyId) -> Result<(), VaultError> {
        if id == self.active {
            return Err(VaultError::ActiveKeyInUse(id));
        }
        self.keys
            .remove(&id)
            .map(drop)
            .ok_or(VaultError::UnknownKey(id))
    }

    /// The key new secrets are sealed with.
    pub fn active_key(&self) -> KeyId {
        self.active
    }

    /// The ids of all loaded keys, in ascending order.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.keys().copied()
    }

    /// Encrypts `plaintext` with the active key. `context` (e.g. `b"account:42:refresh_token"`)
    /// must be given again to open it; it is authenticated, not stored.
    ///
    /// # Panics
    /// Only if the operating system's random number generator fails.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Sealed {
        Sealed::seal(self.active, self.active_data_key(), context, plaintext)
    }

    /// [`Vault::seal`] for a text secret.
    pub fn seal_str(&self, context: &[u8], secret: &SecretString) -> Sealed {
        self.seal(context, secret.expose_secret().as_bytes())
    }

    /// Decrypts a secret sealed under the same `context` with any loaded key.
    pub fn open(&self, context: &[u8], sealed: &Sealed) -> Result<SecretBox<Vec<u8>>, VaultError> {
        let key = self
            .keys
            .get(&sealed.key_id())
            .ok_or(VaultError::UnknownKey(sealed.key_id()))?;
        sealed.open(key, context)
    }

    /// [`Vault::open`] for a text secret; fails with [`VaultError::NotUtf8`] on binary content.
    pub fn open_str(&self, context: &[u8], sealed: &Sealed) -> Result<SecretString, VaultError> {
        let bytes = self.open(context, sealed)?;
        let text = std::str::from_utf8(bytes.expose_secret()).map_err(|_| VaultError::NotUtf8)?;
        // A copy of exactly the right size; `bytes` is wiped when it drops.
        Ok(SecretString::from(text))
    }

    /// Re-encrypts a secret under the active key (for `postern vault rotate-key`); always draws
    /// a fresh nonce, even when the secret already uses the active key.
    pub fn reseal(&self, context: &[u8], sealed: &Sealed) -> Result<Sealed, VaultError> {
        let plaintext = self.open(context, sealed)?;
        Ok(self.seal(context, plaintext.expose_secret()))
    }

    /// Re-wraps every loaded data key under `new_master` (for a master key rotation). The
    /// caller replaces all stored wrapped keys with the result in one transaction.
    pub fn rewrap_all(&self, new_master: &MasterKey) -> Vec<WrappedKey> {
        self.keys
            .iter()
            .map(|(id, key)| data_key::wrap(new_master, *id, key))
            .collect()
    }

    fn active_data_key(&self) -> &DataKey {
        match self.keys.get(&self.active) {
            Some(key) => key,
            None => unreachable!("the active key is always loaded"),
        }
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("active", &self.active)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests;
