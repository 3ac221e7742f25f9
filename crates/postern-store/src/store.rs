//! `Store`: the handle every other crate holds, and the choice of backend from a URL.
//!
//! Purpose: open (and migrate) the database named by a URL and hand out the repositories.
//! Non-goal: any SQL; backends live in their own modules behind the crate-private [`Backend`] trait.
//! Key decision: callers see only `&dyn Trait` repositories, so adding PostgreSQL is a new
//! `Backend` implementation and one more arm in [`Store::open`], with no caller changing.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::Webhooks;
use crate::{
    Accounts, ApiTokens, Authorizations, Events, Grants, OAuthApps, Secrets, StoreError, VaultKeys,
};
use crate::{Mailboxes, Messages};

/// What a database backend provides. Crate-private: callers only ever see [`Store`].
#[async_trait]
pub(crate) trait Backend: Send + Sync {
    /// A short name for logs and `Debug`, e.g. `"sqlite"`.
    fn name(&self) -> &'static str;
    fn api_tokens(&self) -> &dyn ApiTokens;
    fn vault_keys(&self) -> &dyn VaultKeys;
    fn secrets(&self) -> &dyn Secrets;
    fn events(&self) -> &dyn Events;
    /// Notified after every commit that appended events.
    fn events_appended(&self) -> std::sync::Arc<tokio::sync::Notify>;
    fn oauth_apps(&self) -> &dyn OAuthApps;
    fn accounts(&self) -> &dyn Accounts;
    fn grants(&self) -> &dyn Grants;
    fn audit(&self) -> &dyn crate::Audit;
    fn expiry(&self) -> &dyn crate::Expiry;
    fn authorizations(&self) -> &dyn Authorizations;
    fn outbox(&self) -> &dyn crate::Outbox;
    fn webhooks(&self) -> &dyn Webhooks;
    fn mailboxes(&self) -> &dyn Mailboxes;
    fn messages(&self) -> &dyn Messages;
    fn search(&self) -> &dyn crate::Search;
    /// Waits for in-flight work, then closes every connection.
    async fn close(&self);
}

/// A cheap-to-clone handle on the database; clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl Store {
    /// Opens the database named by `url`, creating and migrating it as needed.
    ///
    /// Accepted: `sqlite://PATH` (also `sqlite:PATH`); a relative PATH is relative to the working
    /// directory, `sqlite:///var/lib/postern/db.sqlite` is absolute. `postgres://` and
    /// `postgresql://` are recognised but refused with [`StoreError::UnsupportedBackend`] for now.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        match parse_url(url)? {
            Location::Sqlite(path) => Store::open_sqlite(Path::new(path)).await,
        }
    }

    /// Opens (creating if missing, with its parent folder) and migrates the SQLite file at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let backend = crate::sqlite::SqliteBackend::open(path).await?;
        Ok(Store {
            backend: Arc::new(backend),
        })
    }

    /// The API-token repository.
    pub fn api_tokens(&self) -> &dyn ApiTokens {
        self.backend.api_tokens()
    }

    /// The vault-key repository.
    pub fn vault_keys(&self) -> &dyn VaultKeys {
        self.backend.vault_keys()
    }

    /// The sealed-secrets repository.
    pub fn secrets(&self) -> &dyn Secrets {
        self.backend.secrets()
    }

    /// The event log.
    pub fn events(&self) -> &dyn Events {
        self.backend.events()
    }

    /// Woken (every waiter at once) after each commit that appended events: readers of the log
    /// wait on it instead of polling hard. It fires after the commit, so a woken reader finds the
    /// new rows.
    pub fn events_appended(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.backend.events_appended()
    }

    /// The OAuth-app repository.
    pub fn oauth_apps(&self) -> &dyn OAuthApps {
        self.backend.oauth_apps()
    }

    /// The account repository.
    pub fn accounts(&self) -> &dyn Accounts {
        self.backend.accounts()
    }

    /// The OAuth2-grant repository (tokens and their metadata).
    pub fn grants(&self) -> &dyn Grants {
        self.backend.grants()
    }

    /// The audit log (who did what to which account's authorization, and how it went).
    pub fn audit(&self) -> &dyn crate::Audit {
        self.backend.audit()
    }

    /// What the expiry forecaster reads and records (grant ages, publishing status, notices).
    pub fn expiry(&self) -> &dyn crate::Expiry {
        self.backend.expiry()
    }

    /// The pending-authorization repository (OAuth2 `state` and PKCE verifier).
    pub fn authorizations(&self) -> &dyn Authorizations {
        self.backend.authorizations()
    }

    /// The outbox (messages queued for sending, their leases and outcomes).
    pub fn outbox(&self) -> &dyn crate::Outbox {
        self.backend.outbox()
    }

    /// The webhook repository (subscriptions, cursors and deliveries).
    pub fn webhooks(&self) -> &dyn Webhooks {
        self.backend.webhooks()
    }

    /// The mailbox repository (with each mailbox's sync cursor).
    pub fn mailboxes(&self) -> &dyn Mailboxes {
        self.backend.mailboxes()
    }

    /// The message repository.
    pub fn messages(&self) -> &dyn Messages {
        self.backend.messages()
    }

    /// Local full-text search over stored messages.
    pub fn search(&self) -> &dyn crate::Search {
        self.backend.search()
    }

    /// Closes every connection (for every clone of this handle) after in-flight work finishes.
    /// Later calls on any clone fail with [`StoreError::Database`].
    pub async fn close(&self) {
        self.backend.close().await;
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.name())
            .finish()
    }
}

/// Where a URL points, once understood.
#[derive(Debug, PartialEq, Eq)]
enum Location<'a> {
    Sqlite(&'a str),
}

fn parse_url(url: &str) -> Result<Location<'_>, StoreError> {
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(StoreError::InvalidUrl {
            reason: "expected `sqlite://PATH`".to_owned(),
        });
    };
    match scheme {
        "sqlite" => parse_sqlite_path(rest).map(Location::Sqlite),
        "postgres" | "postgresql" => Err(StoreError::UnsupportedBackend {
            scheme: scheme.to_owned(),
            hint: ": PostgreSQL support comes in a later release; use `sqlite://PATH` for now"
                .to_owned(),
        }),
        other => Err(StoreError::UnsupportedBackend {
            scheme: other.to_owned(),
            hint: "; use `sqlite://PATH`".to_owned(),
        }),
    }
}

fn parse_sqlite_path(rest: &str) -> Result<&str, StoreError> {
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.is_empty() {
        return Err(StoreError::InvalidUrl {
            reason: "the sqlite URL has no file path".to_owned(),
        });
    }
    // `:memory:` and `?mode=…` would silently become odd file names; say so instead.
    if path.starts_with(":memory:") || path.contains('?') {
        return Err(StoreError::InvalidUrl {
            reason: "in-memory databases and URL query options are not supported; give a file path"
                .to_owned(),
        });
    }
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_give_the_path() {
        assert_eq!(
            parse_url("sqlite://data/p.db").ok(),
            Some(Location::Sqlite("data/p.db"))
        );
        assert_eq!(
            parse_url("sqlite:///var/lib/p.db").ok(),
            Some(Location::Sqlite("/var/lib/p.db"))
        );
        assert_eq!(
            parse_url("sqlite:p.db").ok(),
            Some(Location::Sqlite("p.db"))
        );
    }

    #[test]
    fn postgres_is_refused_with_a_message_that_says_it_comes_later() {
        let err = parse_url("postgres://user:hunter2@db/postern").unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedBackend { .. }));
        let message = err.to_string();
        assert!(message.contains("PostgreSQL"), "{message}");
        assert!(message.contains("later"), "{message}");
        assert!(
            !message.contains("hunter2"),
            "the password leaked: {message}"
        );
    }

    #[test]
    fn malformed_urls_are_refused_without_echoing_them() {
        for url in [
            "",
            "sqlite://",
            "sqlite::memory:",
            "sqlite://a.db?mode=ro",
            "nope",
        ] {
            let err = parse_url(url).unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::InvalidUrl { .. } | StoreError::UnsupportedBackend { .. }
                ),
                "{url}: {err:?}"
            );
        }
        assert!(matches!(
            parse_url("mysql://u:secret@h/db"),
            Err(StoreError::UnsupportedBackend { ref scheme, .. }) if scheme == "mysql"
        ));
    }
}
