//! Sealed secrets of every aggregate (OAuth client secrets, refresh tokens, IMAP passwords…).
//!
//! Purpose: one table, addressed by (owner kind, owner id, name), holding vault-sealed blobs, so
//! key rotation has exactly one place to re-encrypt.
//! Non-goal: encrypting or decrypting; the store only ever sees [`Sealed`] ciphertext.
//! Key decision: the associated data bound into each ciphertext is derived from the address
//! ([`SecretRef::context`]), so a sealed blob copied to another row no longer opens.

use async_trait::async_trait;
use postern_vault::Sealed;

use crate::StoreError;

/// The address of one secret: which aggregate owns it, which instance, and which of its secrets.
///
/// `owner_kind` and `name` are identifiers chosen in code (e.g. `"account"`, `"refresh_token"`)
/// and should not contain `:`, which separates the parts in [`SecretRef::context`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    /// The kind of owner, e.g. `"account"` or `"oauth_app"`.
    pub owner_kind: String,
    /// The owner's id.
    pub owner_id: String,
    /// Which secret of that owner, e.g. `"refresh_token"`.
    pub name: String,
}

impl SecretRef {
    /// Builds a reference from its three parts.
    pub fn new(
        owner_kind: impl Into<String>,
        owner_id: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        SecretRef {
            owner_kind: owner_kind.into(),
            owner_id: owner_id.into(),
            name: name.into(),
        }
    }

    /// The associated data to seal and open this secret with: `owner_kind:owner_id:name`.
    pub fn context(&self) -> Vec<u8> {
        format!("{}:{}:{}", self.owner_kind, self.owner_id, self.name).into_bytes()
    }
}

/// The secrets repository.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// Stores `sealed` at `secret`, replacing what was there. Fails with
    /// [`StoreError::UnknownKey`] if the blob's key is not in the store.
    async fn put(&self, secret: &SecretRef, sealed: &Sealed) -> Result<(), StoreError>;

    /// The sealed blob at `secret`, if any.
    async fn get(&self, secret: &SecretRef) -> Result<Option<Sealed>, StoreError>;

    /// Deletes every secret of one owner (when the owner is deleted); returns how many.
    async fn delete_owner(&self, owner_kind: &str, owner_id: &str) -> Result<u64, StoreError>;

    /// How many secrets are stored.
    async fn count(&self) -> Result<u64, StoreError>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use super::*;

    #[test]
    fn context_joins_the_three_parts_with_colons() {
        let secret = SecretRef::new("account", "acc-1", "refresh_token");
        assert_eq!(secret.context(), b"account:acc-1:refresh_token".to_vec());
    }
}
