//! The vault's data keys, stored wrapped (encrypted under the master key), and key rotation.
//!
//! Purpose: persist the wrapped data keys and rotate them together with every secret sealed
//! under them.
//! Non-goal: wrapping, unwrapping or sealing anything; `postern-vault` does that through the
//! `reseal` callback, so the store never holds a plaintext key.
//! Key decision: a rotation is one database transaction (new key in, every secret resealed, old
//! keys out): a crash or a failing secret leaves the old, working state, never a half-rotated one.

use async_trait::async_trait;
use postern_vault::{KeyId, Sealed, VaultError, WrappedKey};

use crate::{SecretRef, StoreError};

/// One stored data key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// The key's id (also inside `wrapped`).
    pub id: KeyId,
    /// The key, wrapped under the master key.
    pub wrapped: WrappedKey,
    /// True for the one key new secrets are sealed with.
    pub active: bool,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// The key that is now the only one.
    pub new_key: KeyId,
    /// How many secrets were re-encrypted.
    pub resealed: u64,
    /// The keys that were deleted.
    pub retired: Vec<KeyId>,
}

/// Re-encrypts one secret under the new key: opens `sealed` (with `secret.context()` as associated
/// data) and seals the plaintext again. Called once per secret inside the rotation transaction.
pub type Reseal<'a> = dyn Fn(&SecretRef, &Sealed) -> Result<Sealed, VaultError> + Send + Sync + 'a;

/// The vault-key repository.
#[async_trait]
pub trait VaultKeys: Send + Sync {
    /// Every stored key, lowest id first.
    async fn list(&self) -> Result<Vec<StoredKey>, StoreError>;

    /// Stores the first key as the active one. Fails with [`StoreError::KeyConflict`] if any key
    /// exists already: later keys arrive through [`VaultKeys::rotate`].
    async fn insert_active(&self, key: WrappedKey) -> Result<(), StoreError>;

    /// In one transaction: stores `new` as the only active key, re-encrypts every secret through
    /// `reseal`, and deletes all other keys. On any error nothing changes.
    async fn rotate(
        &self,
        new: WrappedKey,
        reseal: &Reseal<'_>,
    ) -> Result<RotationReport, StoreError>;

    /// Replaces the wrapped bytes of existing keys (after a master-key change), all or nothing.
    /// Fails with [`StoreError::UnknownKey`] if one of them is not stored.
    async fn rewrap(&self, keys: Vec<WrappedKey>) -> Result<(), StoreError>;

    /// An id no stored key has ever had: one more than the highest stored id (1 for the first).
    async fn next_key_id(&self) -> Result<KeyId, StoreError>;
}
