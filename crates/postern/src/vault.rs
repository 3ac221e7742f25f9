//! `postern vault rotate-key`: a new data key, every secret re-encrypted under it, old keys erased.
//!
//! The store does the re-encryption in one transaction, so a crash leaves either the old keys and
//! ciphertexts or the new ones, never a mix that cannot be read. Run it with the server stopped: a
//! running server keeps the old keys in memory until it restarts.

use crate::data_dir::DataDir;
use postern_vault::Vault;

/// Rotates the data key and reports how many secrets moved.
pub async fn rotate_key(mut data: DataDir) -> anyhow::Result<()> {
    let new_id = data.store.vault_keys().next_key_id().await?;
    let (wrapped, key) = Vault::new_data_key(&data.master, new_id);
    data.vault.add_key(new_id, key);
    data.vault.set_active(new_id)?;
    let vault = &data.vault;
    let report = data
        .store
        .vault_keys()
        .rotate(wrapped, &|secret, sealed| {
            vault.reseal(&secret.context(), sealed)
        })
        .await?;
    println!(
        "vault key rotated: {} secret(s) re-encrypted under key {}; old keys removed",
        report.resealed, new_id.0
    );
    Ok(())
}
