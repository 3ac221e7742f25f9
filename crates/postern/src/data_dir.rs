//! Opening a data dir: the store, the master key and the unlocked vault, in the one safe order.
//!
//! The order matters. The store is opened first so that a data dir which already holds encrypted
//! secrets is never given a freshly generated master key (which could only fail to decrypt them):
//! in that case a missing key is an error that says which file to restore. A key that does not
//! match is refused with the vault's own message, before anything is served.
//!
//! Non-goal: deciding what runs on the data dir; `serve` and the CLI commands do that.

use crate::config::Config;
use anyhow::{Context, bail};
use postern_store::Store;
use postern_vault::{KeyId, MasterKey, MasterKeyOrigin, Vault, load_master_key};
use std::path::Path;

/// An opened data dir, ready to use.
pub struct DataDir {
    /// The store.
    pub store: Store,
    /// The master key, kept for key rotation.
    pub master: MasterKey,
    /// Where the master key came from (and whether it was made just now).
    pub master_origin: MasterKeyOrigin,
    /// The unlocked vault.
    pub vault: Vault,
}

/// Opens (creating on first use) the data dir described by `config`.
pub async fn open(config: &Config) -> anyhow::Result<DataDir> {
    create_private_dir(&config.data_dir)?;
    let store = Store::open(&config.store.url)
        .await
        .with_context(|| format!("cannot open the store at {}", config.store.url))?;
    let stored_keys = store.vault_keys().list().await?;
    if !stored_keys.is_empty() && config.master_key.is_none() && !config.master_key_file.exists() {
        bail!(
            "this data dir holds encrypted secrets, but the master key file {} is missing and \
             POSTERN_MASTER_KEY is not set: restore the key file or set the variable",
            config.master_key_file.display()
        );
    }
    let (master, master_origin) =
        load_master_key(config.master_key.as_ref(), &config.master_key_file)?;
    let vault = if stored_keys.is_empty() {
        let id = KeyId(1);
        let (wrapped, _data_key) = Vault::new_data_key(&master, id);
        store.vault_keys().insert_active(wrapped.clone()).await?;
        Vault::unlock(&master, &[wrapped], id)?
    } else {
        let active = stored_keys
            .iter()
            .find(|key| key.active)
            .map(|key| key.id)
            .context("the store has vault keys but none is marked active")?;
        let wrapped: Vec<_> = stored_keys.into_iter().map(|key| key.wrapped).collect();
        Vault::unlock(&master, &wrapped, active)?
    };
    Ok(DataDir {
        store,
        master,
        master_origin,
        vault,
    })
}

/// Held by `serve` for as long as it runs: a second server on the same data dir would share its
/// outbox and take back leases the first still holds.
pub struct ServeLock {
    _file: std::fs::File,
}

/// Takes the data dir's serve lock (`postern.lock`, an advisory lock the kernel drops when the
/// process ends, even by SIGKILL), or says that another server already holds it.
pub fn lock_for_serving(data_dir: &Path) -> anyhow::Result<ServeLock> {
    create_private_dir(data_dir)?;
    let path = data_dir.join("postern.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(ServeLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another `postern serve` is already running on the data dir {}; stop it first \
             (one server per data dir)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// The data dir holds the master key and every secret: only its owner may enter it.
fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create the data dir {}", path.display()))
}
