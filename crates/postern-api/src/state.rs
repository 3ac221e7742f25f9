//! The state every handler can reach: the store and, later, the services built on it.
//!
//! Non-goal: holding configuration the handlers do not read; the binary resolves configuration and
//! hands down only what the API needs. Cloning is cheap (everything inside is reference-counted).

use postern_store::Store;

/// Shared application state, cloned into every request.
#[derive(Clone)]
pub struct AppState {
    /// Persistence for tokens, accounts and the event log.
    pub store: Store,
}

impl AppState {
    /// State over an opened store.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}
