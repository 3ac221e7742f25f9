//! Test support (feature `testing`, for other crates' tests only): a throw-away store with an
//! unlocked vault, wired as the auth layer needs it.
//!
//! Non-goal: anything a production path may use; the binary never enables this feature.
//!
//! Key decision: panics instead of errors. A fixture that cannot be built is a broken test
//! environment, and the panic message says which step failed.
#![allow(clippy::expect_used)]

use crate::context::AuthContext;
use postern_store::Store;
use postern_vault::{KeyId, MasterKey, Vault};
use std::sync::Arc;

/// A temp dir holding a migrated SQLite store whose vault has one fresh data key.
pub struct TempContext {
    /// Where the database lives; dropped (and deleted) with the fixture.
    pub dir: tempfile::TempDir,
    /// Store, vault and an OAuth HTTP client.
    pub ctx: AuthContext,
}

impl TempContext {
    /// Creates the store and the vault.
    pub async fn new() -> TempContext {
        let dir = tempfile::tempdir().expect("a temp dir for the test store");
        let store = Store::open_sqlite(&dir.path().join("postern.db"))
            .await
            .expect("the test store opens");
        let master = MasterKey::generate();
        let (wrapped, _) = Vault::new_data_key(&master, KeyId(1));
        store
            .vault_keys()
            .insert_active(wrapped.clone())
            .await
            .expect("the test vault key is stored");
        let vault = Vault::unlock(&master, &[wrapped], KeyId(1)).expect("the test vault unlocks");
        let ctx = AuthContext {
            store,
            vault: Arc::new(vault),
            http: crate::oauth::http_client().expect("the OAuth HTTP client builds"),
        };
        TempContext { dir, ctx }
    }
}
