//! The Sent copy: after a message went out, `APPEND` the same bytes, `\Seen`, to the account's
//! Sent mailbox, so the user's mail clients show it like one they sent themselves.
//!
//! Purpose: [`SentCopy`] (the setting, per account: [`crate::policy`]), [`provider_saves_sent`]
//! (the rule for `Auto`), and the worker's copier, which finds the Sent mailbox and appends.
//! Non-goal: making the copy part of the send. It is best effort: a copy that fails is logged
//! and the item stays `sent`; it is never retried by sending again.
//! Key decisions:
//! - `Auto` skips providers that file a copy themselves, as the provider table says
//!   ([`crate::presets`]): today SMTP host `smtp.gmail.com` or `smtp.googlemail.com` (Gmail puts
//!   every message sent through its SMTP into "Sent Mail"; a second copy would show twice).
//!   Everything else gets a copy; `Always` / `Never` override.
//! - The Sent mailbox is, in order: the store's mailbox with role `sent` (the sync saw its
//!   SPECIAL-USE), a mailbox `LIST` marks `\Sent`, a mailbox named `Sent`. None: skip, warn. No
//!   mailbox is created: a wrong guess would leave a stray folder in the user's account.
//! - The IMAP sessions are pooled per account like the SMTP ones (`pool`): a copy per message
//!   must not cost a TLS handshake and a login per message. A pooled session that fails with an
//!   I/O error was closed while idle and is replaced once; after any other failure it is dropped.
//! - The bytes appended are exactly those queued (they never held a `Bcc` header: Bcc lives in
//!   the envelope only), so the copy has the Message-ID the recipients see.

use std::sync::Arc;

use async_imap::imap_proto::NameAttribute;
use futures::TryStreamExt as _;
use postern_auth::context::AuthContext;
use postern_auth::token_manager::TokenManager;
use postern_store::{Account, MailboxRole, OutboxId, Store};
use postern_sync::account::{AccountCredentials, open_session};
use postern_sync::ops::Flag;
use postern_sync::{ImapError, ImapSession};
use postern_vault::Vault;

use crate::OutboxConfig;
use crate::error::SentCopyError;
use crate::pool::IdlePool;
use crate::presets::provider_preset;

/// Whether a sent message is also appended to the account's Sent mailbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SentCopy {
    /// Copy unless the provider files one itself ([`provider_saves_sent`]).
    #[default]
    Auto,
    /// Always copy.
    Always,
    /// Never copy.
    Never,
}

impl SentCopy {
    /// Whether a message sent through `smtp_host` gets a copy under this setting.
    pub fn wants_copy(self, smtp_host: &str) -> bool {
        match self {
            SentCopy::Auto => !provider_saves_sent(smtp_host),
            SentCopy::Always => true,
            SentCopy::Never => false,
        }
    }
}

/// Whether the provider behind `smtp_host` files a copy of every message sent through it in the
/// account's Sent mailbox by itself, by the provider table ([`crate::presets`]). Today: Gmail
/// (`smtp.gmail.com`, `smtp.googlemail.com`), whatever the case, with or without a final dot.
pub fn provider_saves_sent(smtp_host: &str) -> bool {
    provider_preset(smtp_host).is_some_and(|preset| preset.saves_sent)
}

/// How a copy ended when nothing failed.
#[derive(Debug, PartialEq, Eq)]
enum Copied {
    /// Appended to this mailbox.
    To(String),
    /// The account has no mailbox that could be Sent.
    NoSentMailbox,
}

/// Copies sent messages; shared by every worker.
pub(crate) struct SentCopier {
    store: Store,
    /// Logged-in sessions kept between copies, so a burst of sends logs in once per connection.
    sessions: IdlePool<ImapSession>,
    /// `Err` when the credentials could not be built; every copy is skipped with that reason.
    credentials: Result<AccountCredentials, String>,
}

impl SentCopier {
    pub(crate) fn new(
        store: Store,
        vault: Arc<Vault>,
        tokens: TokenManager,
        config: &OutboxConfig,
    ) -> Self {
        // The HTTP client is only used for OAuth token requests, which go through `tokens`;
        // `AuthContext` wants one all the same.
        let credentials = postern_auth::oauth::http_client()
            .map(|http| {
                let ctx = AuthContext {
                    store: store.clone(),
                    vault,
                    http,
                };
                AccountCredentials::new(ctx, tokens)
            })
            .map_err(|error| error.to_string());
        SentCopier {
            store,
            sessions: IdlePool::new(config.pool_max_idle, config.pool_idle_timeout),
            credentials,
        }
    }

    /// Appends `raw`, just sent as item `item`, to the account's Sent mailbox when `mode` (the
    /// account's) asks for it. Never fails: whatever goes wrong is logged.
    pub(crate) async fn copy(
        &self,
        account: &Account,
        mode: SentCopy,
        item: &OutboxId,
        raw: &[u8],
    ) {
        if !mode.wants_copy(&account.smtp.host) {
            tracing::debug!(%item, ?mode, host = %account.smtp.host, "no Sent copy for this account");
            return;
        }
        match self.try_copy(account, raw).await {
            Ok(Copied::To(mailbox)) => {
                tracing::debug!(%item, %mailbox, "sent message copied to Sent")
            }
            Ok(Copied::NoSentMailbox) => {
                tracing::warn!(%item, account = %account.id, "no Sent mailbox found; the sent message was not copied")
            }
            Err(error) => {
                tracing::warn!(%item, account = %account.id, %error, "copying the sent message to Sent failed; it was sent all the same")
            }
        }
    }

    async fn try_copy(&self, account: &Account, raw: &[u8]) -> Result<Copied, SentCopyError> {
        let credentials = self
            .credentials
            .as_ref()
            .map_err(|reason| SentCopyError::Unavailable(reason.clone()))?;
        let stored = self.stored_sent(account).await?;
        if let Some(mut session) = self.sessions.checkout(&account.id) {
            match append_to_sent(&mut session, stored.clone(), raw).await {
                Err(SentCopyError::Imap(ImapError::Io { .. })) => {
                    // Closed by the server while it waited in the pool: try a fresh one.
                    tracing::debug!(account = %account.id, "pooled IMAP session was stale; reconnecting");
                }
                result => return self.keep_after(account, session, result),
            }
        }
        let mut session = open_session(account, credentials).await?;
        let result = append_to_sent(&mut session, stored, raw).await;
        self.keep_after(account, session, result)
    }

    /// Pools the session after a copy that went through; after a failure it is dropped, since
    /// its state is unknown.
    fn keep_after(
        &self,
        account: &Account,
        session: ImapSession,
        result: Result<Copied, SentCopyError>,
    ) -> Result<Copied, SentCopyError> {
        if result.is_ok() {
            self.sessions.checkin(&account.id, session);
        }
        result
    }

    /// The name of the mailbox the sync stored with role `sent`, if any.
    async fn stored_sent(&self, account: &Account) -> Result<Option<String>, SentCopyError> {
        let mailboxes = self.store.mailboxes().list(&account.id).await?;
        Ok(mailboxes
            .into_iter()
            .find(|mailbox| mailbox.role == Some(MailboxRole::Sent))
            .map(|mailbox| mailbox.name))
    }
}

async fn append_to_sent(
    session: &mut ImapSession,
    stored: Option<String>,
    raw: &[u8],
) -> Result<Copied, SentCopyError> {
    let mailbox = match stored {
        Some(name) => name,
        None => match listed_sent(session).await? {
            Some(name) => name,
            None => return Ok(Copied::NoSentMailbox),
        },
    };
    postern_sync::append::append(session, &mailbox, &[seen()], raw).await?;
    Ok(Copied::To(mailbox))
}

/// The Sent mailbox by the server's `LIST`: the one marked `\Sent`, else one named `Sent`.
async fn listed_sent(session: &mut ImapSession) -> Result<Option<String>, SentCopyError> {
    let bound = session.timeouts().command;
    let list = async {
        let names = session.inner_mut().list(Some(""), Some("*")).await?;
        names.try_collect::<Vec<_>>().await
    };
    let names = tokio::time::timeout(bound, list)
        .await
        .map_err(|_elapsed| postern_sync::ImapError::Timeout {
            stage: postern_sync::Stage::Command("LIST"),
            after: bound,
        })?
        .map_err(|error| postern_sync::ImapError::Protocol {
            stage: postern_sync::Stage::Command("LIST"),
            message: error.to_string(),
        })?;
    let entries = names.iter().map(|name| {
        let special = name
            .attributes()
            .iter()
            .any(|attribute| matches!(attribute, NameAttribute::Sent));
        (name.name(), special)
    });
    Ok(choose_sent(entries))
}

/// Picks Sent from `(name, marked \Sent)` pairs: the first marked one, else one named `Sent`.
fn choose_sent<'a>(entries: impl Iterator<Item = (&'a str, bool)> + Clone) -> Option<String> {
    let marked = entries.clone().find(|(_, special)| *special);
    marked
        .or_else(|| entries.clone().find(|(name, _)| *name == "Sent"))
        .map(|(name, _)| name.to_owned())
}

fn seen() -> Flag {
    Flag::parse("\\Seen").unwrap_or_else(|_| unreachable!("\\Seen is a system flag"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_hosts_save_their_own_copy_and_nothing_else_does() {
        for host in [
            "smtp.gmail.com",
            "SMTP.Gmail.COM",
            "smtp.gmail.com.",
            "smtp.googlemail.com",
        ] {
            assert!(provider_saves_sent(host), "{host}");
        }
        for host in [
            "smtp.office365.com",
            "localhost",
            "gmail.com",
            "smtp.gmail.com.evil.test",
            "imap.gmail.com",
        ] {
            assert!(!provider_saves_sent(host), "{host}");
        }
    }

    #[test]
    fn auto_follows_the_rule_and_the_overrides_ignore_it() {
        assert!(!SentCopy::Auto.wants_copy("smtp.gmail.com"));
        assert!(SentCopy::Auto.wants_copy("mail.example.com"));
        assert!(SentCopy::Always.wants_copy("smtp.gmail.com"));
        assert!(!SentCopy::Never.wants_copy("mail.example.com"));
    }

    #[test]
    fn the_special_use_mailbox_wins_over_the_name() {
        let entries = [("INBOX", false), ("Sent", false), ("Gesendet", true)];
        assert_eq!(
            choose_sent(entries.iter().copied()).as_deref(),
            Some("Gesendet")
        );
        let by_name = [("INBOX", false), ("Sent", false)];
        assert_eq!(
            choose_sent(by_name.iter().copied()).as_deref(),
            Some("Sent")
        );
        let none = [("INBOX", false), ("Sent Items", false)];
        assert_eq!(choose_sent(none.iter().copied()), None);
    }
}
