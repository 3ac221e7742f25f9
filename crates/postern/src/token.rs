//! `postern token …`: API tokens made and listed on the data dir directly, server running or not.
//!
//! SQLite in WAL mode lets this CLI write while a server reads, so an operator never has to stop the
//! server to mint a token. The token is printed once and only its SHA-256 is stored.

use anyhow::Context;
use chrono::{DateTime, Utc};
use postern_api::{ApiTokenSecret, Scope};
use postern_store::{NewApiToken, Store};

/// Makes a token, stores its hash, and returns the secret for the caller to show once.
pub async fn create(
    store: &Store,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<ApiTokenSecret> {
    let secret = ApiTokenSecret::generate().context("the system random source failed")?;
    store
        .api_tokens()
        .create(NewApiToken {
            name: name.to_owned(),
            token_hash: secret.hash(),
            scopes: scopes
                .iter()
                .map(|scope| scope.as_str().to_owned())
                .collect(),
            account_ids: None,
            expires_at,
        })
        .await?;
    Ok(secret)
}

/// Prints every token that is not revoked, one line each.
pub async fn list(store: &Store) -> anyhow::Result<()> {
    for token in store.api_tokens().list().await? {
        if token.revoked_at.is_some() {
            continue;
        }
        let last_used = token
            .last_used_at
            .map_or_else(|| "never".to_owned(), |at| at.to_rfc3339());
        println!(
            "{}  {}  scopes={}  last used: {}",
            token.id,
            token.name,
            token.scopes.join(","),
            last_used
        );
    }
    Ok(())
}
