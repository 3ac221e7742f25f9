//! Operations on single messages that need the server now: read a body that is not stored, change
//! flags, move, delete, search on the server.
//!
//! Purpose: [`MessageOps`], what the message API calls. Each operation opens an on-demand session
//! ([`SyncService::open_session`], within the account's connection cap), selects the message's
//! mailbox and checks that its UIDVALIDITY is still the one the message was stored under (else
//! [`OpsError::MailboxReset`]: the stored UID may name another message), acts by UID, then lets the
//! local picture follow.
//!
//! - [`MessageOps::body`]: the stored raw message, or `UID FETCH uid BODY.PEEK[]`, kept with
//!   [`Messages::put_body`](postern_store::Messages::put_body) (bodies modes `on_demand` and
//!   `cache` alike; `full` stored it at sync).
//! - [`MessageOps::change`]: `UID STORE` of flags, then `UID MOVE` (or `UID COPY` + `\Deleted` +
//!   `UID EXPUNGE` of that UID where MOVE is missing).
//! - [`MessageOps::delete`]: to the account's Trash, or `\Deleted` + `UID EXPUNGE` of that UID
//!   (UIDPLUS; never a plain EXPUNGE, which would remove every `\Deleted` message of the mailbox).
//! - [`MessageOps::server_search`]: `UID SEARCH TEXT "…"`, answered with the stored messages that
//!   match and the UIDs that are not stored yet.
//!
//! Non-goals: deciding who may do what (the API does); keeping the session (each operation logs
//! out when done, in the background, so its permit returns); renaming or creating mailboxes.
//!
//! Key decisions:
//! - **Server first, then one store batch.** The local change goes through
//!   [`Messages::apply`](postern_store::Messages::apply) as a [`SyncBatch`] carrying the mailbox's
//!   stored cursor, so `message.updated` / `message.deleted` are emitted exactly as a sync would emit
//!   them, and whichever comes first (this batch, or the supervisor's pass woken by IDLE) announces
//!   the change; the other finds nothing to change and announces nothing. If the mailbox was reset
//!   meanwhile the batch is skipped: the resync brings the server's truth.
//! - **A moved message reaches its new mailbox through the sync**, which gives it its new UID:
//!   right after the move, on the same session and in the background, when the target's initial
//!   sync is complete (a new-mail pass, cheap); otherwise at the target's next sync.
//! - Input (flags, search text) is checked into [`Flag`] and [`SearchText`] before any connection
//!   is opened, and only those values reach a command (see [`command`]).

pub mod command;
pub mod error;
mod wire;

use postern_store::{
    AccountId, FlagUpdate, Mailbox, MailboxRole, Message, Store, StoreError, SyncBatch,
};

pub use command::{Flag, SearchText};
pub use error::{FlagError, OpsError, SearchTextError};

use crate::engine::{NoObserver, sync_mailbox};
use crate::ops::command::{MoveMethod, mailbox_argument, text_criteria};
use crate::ops::wire::OpsWire;
use crate::session::ImapSession;
use crate::supervisor::{BudgetedSession, SyncService};

/// Message operations on the server, for every account of a [`SyncService`]. Cheap to clone.
#[derive(Clone)]
pub struct MessageOps {
    sync: SyncService,
    store: Store,
}

/// What [`MessageOps::change`] should do; empty lists change nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageChange {
    /// Flags to set.
    pub add_flags: Vec<Flag>,
    /// Flags to clear.
    pub remove_flags: Vec<Flag>,
    /// A mailbox of the same account to move the message to (after the flags changed).
    pub move_to: Option<Mailbox>,
}

/// What [`MessageOps::change`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// The flags changed on the server and here.
    Updated {
        /// The message's flags now, as the server reports them.
        flags: Vec<String>,
    },
    /// The message moved: it is gone from its mailbox here, and reaches the target through the
    /// sync (see the module documentation).
    Moved {
        /// The target mailbox.
        to: Mailbox,
        /// The flags it carried along.
        flags: Vec<String>,
    },
}

/// How [`MessageOps::delete`] deletes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteMode {
    /// Move to the account's Trash; a message already in the Trash is expunged.
    ToTrash,
    /// Expunge it now (`\Deleted` + `UID EXPUNGE` of its UID).
    Expunge,
}

/// What [`MessageOps::delete`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// It moved to this Trash mailbox.
    MovedToTrash(Mailbox),
    /// It was expunged from the server.
    Expunged,
}

/// What [`MessageOps::server_search`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSearch {
    /// How many messages of the mailbox match on the server.
    pub total: usize,
    /// The stored messages among the newest `limit` matches (by UID), newest first.
    pub messages: Vec<Message>,
    /// The UIDs among the newest `limit` matches that are not stored (yet), descending.
    pub unsynced_uids: Vec<u32>,
}

/// The change the store must follow.
enum LocalChange {
    Flags(Vec<String>),
    Gone,
}

impl MessageOps {
    /// Operations through `sync`'s on-demand sessions, recorded in `store`.
    pub fn new(sync: SyncService, store: Store) -> Self {
        MessageOps { sync, store }
    }

    /// The raw message: as stored, or fetched from the server now and stored for next time.
    ///
    /// # Errors
    ///
    /// [`OpsError::NotOnServer`], [`OpsError::MailboxReset`], [`OpsError::MessageGone`] (its
    /// mailbox is no longer stored), and the session's, server's and store's errors.
    pub async fn body(&self, message: &Message) -> Result<Vec<u8>, OpsError> {
        if let Some(raw) = self.store.messages().body(message.id).await? {
            return Ok(raw);
        }
        let mailbox = self.mailbox_of(message).await?;
        let mut session = self
            .open(&mailbox, Some(message.uidvalidity), false)
            .await?;
        let fetched = OpsWire::new(&mut session).body_of(message.uid).await;
        release(session);
        let raw = fetched?.ok_or_else(|| not_on_server(&mailbox, message.uid))?;
        if !self.store.messages().put_body(message.id, &raw).await? {
            tracing::debug!(message = %message.id, "message left the store while its body was fetched");
        }
        Ok(raw)
    }

    /// Changes the message's flags and/or moves it, on the server, then here.
    ///
    /// # Errors
    ///
    /// [`OpsError::Unsupported`] when a move is asked of a server with neither MOVE nor UIDPLUS
    /// (nothing is changed then), and as [`MessageOps::body`].
    pub async fn change(
        &self,
        message: &Message,
        change: &MessageChange,
    ) -> Result<ChangeOutcome, OpsError> {
        let mailbox = self.mailbox_of(message).await?;
        let target = match &change.move_to {
            Some(target) => Some((target, mailbox_argument(&target.name)?)),
            None => None,
        };
        let mut session = self.open(&mailbox, Some(message.uidvalidity), true).await?;
        let argument = target.as_ref().map(|(_, argument)| argument.as_str());
        let flags =
            match change_on_server(&mut session, &mailbox, message.uid, change, argument).await {
                Ok(flags) => flags,
                Err(error) => {
                    release(session);
                    return Err(error);
                }
            };
        match target {
            Some((target, _)) => {
                self.follow(message, LocalChange::Gone).await?;
                self.sync_target_then_release(session, target.clone());
                Ok(ChangeOutcome::Moved {
                    to: target.clone(),
                    flags,
                })
            }
            None => {
                release(session);
                self.follow(message, LocalChange::Flags(flags.clone()))
                    .await?;
                Ok(ChangeOutcome::Updated { flags })
            }
        }
    }

    /// Deletes the message on the server, then here: to the account's Trash, or expunged (with
    /// [`DeleteMode::Expunge`], or when it is in the Trash already).
    ///
    /// # Errors
    ///
    /// [`OpsError::NoTrash`] when the account has no `\Trash` mailbox; [`OpsError::Unsupported`]
    /// when the server lacks UIDPLUS (to expunge) or both MOVE and UIDPLUS (to move); and as
    /// [`MessageOps::body`].
    pub async fn delete(
        &self,
        message: &Message,
        mode: DeleteMode,
    ) -> Result<DeleteOutcome, OpsError> {
        let mailbox = self.mailbox_of(message).await?;
        let trash = match mode {
            DeleteMode::ToTrash if mailbox.role != Some(MailboxRole::Trash) => {
                let trash = self.trash_of(&message.account_id).await?;
                let argument = mailbox_argument(&trash.name)?;
                Some((trash, argument))
            }
            _ => None,
        };
        let mut session = self.open(&mailbox, Some(message.uidvalidity), true).await?;
        let argument = trash.as_ref().map(|(_, argument)| argument.as_str());
        if let Err(error) = delete_on_server(&mut session, &mailbox, message.uid, argument).await {
            release(session);
            return Err(error);
        }
        self.follow(message, LocalChange::Gone).await?;
        match trash {
            Some((trash, _)) => {
                self.sync_target_then_release(session, trash.clone());
                Ok(DeleteOutcome::MovedToTrash(trash))
            }
            None => {
                release(session);
                Ok(DeleteOutcome::Expunged)
            }
        }
    }

    /// Searches the mailbox on the server for messages whose header or body contains `text`.
    /// The newest `limit` matches (by UID) are looked up in the store.
    ///
    /// # Errors
    ///
    /// [`OpsError::Unsupported`] for non-ASCII text on a server without LITERAL+,
    /// [`OpsError::MailboxReset`], and the session's, server's and store's errors.
    pub async fn server_search(
        &self,
        mailbox: &Mailbox,
        text: &SearchText,
        limit: usize,
    ) -> Result<ServerSearch, OpsError> {
        let stored_validity = mailbox.sync.map(|state| state.uidvalidity);
        let mut session = self.open(mailbox, stored_validity, false).await?;
        let found = async {
            let mut wire = OpsWire::new(&mut session);
            let criteria = text_criteria(text, wire.capabilities())?;
            Ok::<_, OpsError>(wire.search(&criteria).await?)
        }
        .await;
        release(session);
        let found = found?;
        let page: Vec<u32> = found.iter().rev().take(limit).copied().collect();
        let messages = self.store.messages().get_by_uids(mailbox.id, &page).await?;
        let unsynced_uids = page
            .into_iter()
            .filter(|uid| !messages.iter().any(|message| message.uid == *uid))
            .collect();
        Ok(ServerSearch {
            total: found.len(),
            messages,
            unsynced_uids,
        })
    }

    /// The stored mailbox of a stored message.
    async fn mailbox_of(&self, message: &Message) -> Result<Mailbox, OpsError> {
        self.store
            .mailboxes()
            .get(message.mailbox_id)
            .await?
            .ok_or(OpsError::MessageGone(message.id))
    }

    async fn trash_of(&self, account_id: &AccountId) -> Result<Mailbox, OpsError> {
        let mailboxes = self.store.mailboxes().list(account_id).await?;
        mailboxes
            .into_iter()
            .find(|mailbox| mailbox.role == Some(MailboxRole::Trash))
            .ok_or(OpsError::NoTrash)
    }

    /// An on-demand session with `mailbox` selected (`read_write`) or examined, its UIDVALIDITY
    /// checked against `expected`.
    async fn open(
        &self,
        mailbox: &Mailbox,
        expected: Option<u32>,
        read_write: bool,
    ) -> Result<BudgetedSession, OpsError> {
        let argument = mailbox_argument(&mailbox.name)?;
        let mut session = self.sync.open_session(&mailbox.account_id).await?;
        let opened = OpsWire::new(&mut session).open(&argument, read_write).await;
        let checked = match opened {
            Ok(Some(server)) => check_uidvalidity(mailbox, expected, server),
            Ok(None) => Err(OpsError::NoUidValidity(mailbox.name.clone())),
            Err(error) => Err(error.into()),
        };
        match checked {
            Ok(()) => Ok(session),
            Err(error) => {
                release(session);
                Err(error)
            }
        }
    }

    /// Lets the store follow a change made on the server, as one sync batch at the mailbox's
    /// stored cursor. Skipped when the mailbox was reset or removed meanwhile.
    async fn follow(&self, message: &Message, change: LocalChange) -> Result<(), OpsError> {
        let Some(mailbox) = self.store.mailboxes().get(message.mailbox_id).await? else {
            return Ok(());
        };
        let Some(state) = mailbox
            .sync
            .filter(|state| state.uidvalidity == message.uidvalidity)
        else {
            return Ok(());
        };
        let mut batch = SyncBatch::cursor_only(mailbox.id, state);
        match change {
            LocalChange::Flags(flags) => batch.flag_updates.push(FlagUpdate {
                uid: message.uid,
                flags,
                modseq: None,
            }),
            LocalChange::Gone => batch.vanished.push(message.uid),
        }
        match self.store.messages().apply(batch).await {
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Brings the message just moved into `target` here, on the session that moved it and in the
    /// background, when `target`'s initial sync is complete (then this is a new-mail pass); the
    /// session is released either way.
    fn sync_target_then_release(&self, mut session: BudgetedSession, target: Mailbox) {
        let store = self.store.clone();
        let options = self.sync.config().sync.clone();
        tokio::spawn(async move {
            let fresh = store.mailboxes().get(target.id).await.ok().flatten();
            if let Some(fresh) = fresh.filter(|m| m.sync.is_some_and(|state| state.initial_done))
                && let Err(error) =
                    sync_mailbox(&mut session, &store, &fresh, &options, &NoObserver).await
            {
                tracing::info!(mailbox = %fresh.name, %error, "syncing the target of a move failed; its next sync brings the message");
            }
            let _ = session.logout().await;
        });
    }
}

/// Changes the flags of the message at `uid`, then moves it to `target` (quoted) if given;
/// the flags it has now. Nothing is changed when a move is asked that the server cannot do.
async fn change_on_server(
    session: &mut ImapSession,
    mailbox: &Mailbox,
    uid: u32,
    change: &MessageChange,
    target: Option<&str>,
) -> Result<Vec<String>, OpsError> {
    let mut wire = OpsWire::new(session);
    let method = match target {
        Some(_) => Some(move_method(wire.capabilities())?),
        None => None,
    };
    let mut flags = present(&mut wire, mailbox, uid).await?;
    if !change.add_flags.is_empty() || !change.remove_flags.is_empty() {
        wire.store(uid, true, &change.add_flags).await?;
        wire.store(uid, false, &change.remove_flags).await?;
        // What the server made of it: it may refuse keywords (no `\*` in PERMANENTFLAGS).
        flags = present(&mut wire, mailbox, uid).await?;
    }
    if let (Some(target), Some(method)) = (target, method) {
        wire.move_uid(uid, target, method).await?;
    }
    Ok(flags)
}

/// Moves the message at `uid` to `trash` (quoted), or without one expunges that UID alone.
async fn delete_on_server(
    session: &mut ImapSession,
    mailbox: &Mailbox,
    uid: u32,
    trash: Option<&str>,
) -> Result<(), OpsError> {
    let mut wire = OpsWire::new(session);
    match trash {
        Some(trash) => {
            let method = move_method(wire.capabilities())?;
            present(&mut wire, mailbox, uid).await?;
            wire.move_uid(uid, trash, method).await?;
        }
        None => {
            if !wire.capabilities().uidplus() {
                return Err(OpsError::Unsupported { missing: "UIDPLUS" });
            }
            present(&mut wire, mailbox, uid).await?;
            wire.expunge_uid(uid).await?;
        }
    }
    Ok(())
}

/// The flags of the message at `uid`, which must still be on the server.
async fn present(
    wire: &mut OpsWire<'_>,
    mailbox: &Mailbox,
    uid: u32,
) -> Result<Vec<String>, OpsError> {
    wire.flags_of(uid)
        .await?
        .ok_or_else(|| not_on_server(mailbox, uid))
}

fn not_on_server(mailbox: &Mailbox, uid: u32) -> OpsError {
    OpsError::NotOnServer {
        mailbox: mailbox.name.clone(),
        uid,
    }
}

fn move_method(capabilities: &crate::Capabilities) -> Result<MoveMethod, OpsError> {
    MoveMethod::for_server(capabilities).ok_or(OpsError::Unsupported {
        missing: "both MOVE and UIDPLUS",
    })
}

fn check_uidvalidity(
    mailbox: &Mailbox,
    expected: Option<u32>,
    server: u32,
) -> Result<(), OpsError> {
    match expected {
        Some(stored) if stored != server => Err(OpsError::MailboxReset {
            mailbox: mailbox.name.clone(),
            stored,
            server,
        }),
        _ => Ok(()),
    }
}

/// Logs the session out in the background; its connection permit returns when that is done.
fn release(session: BudgetedSession) {
    tokio::spawn(async move {
        if let Err(error) = session.logout().await {
            tracing::debug!(%error, "logging out an on-demand session failed");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbox() -> Mailbox {
        Mailbox {
            id: postern_store::MailboxId(1),
            account_id: AccountId::generate(),
            name: "INBOX".into(),
            delimiter: Some("/".into()),
            role: Some(MailboxRole::Inbox),
            sync: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_changed_uidvalidity_refuses_the_operation() {
        let mailbox = inbox();
        assert!(check_uidvalidity(&mailbox, Some(7), 7).is_ok());
        assert!(
            check_uidvalidity(&mailbox, None, 8).is_ok(),
            "never synced: nothing to compare"
        );
        let error = check_uidvalidity(&mailbox, Some(7), 8).unwrap_err();
        assert!(matches!(
            error,
            OpsError::MailboxReset {
                stored: 7,
                server: 8,
                ..
            }
        ));
        assert!(error.to_string().contains("being resynced"), "{error}");
        assert!(error.is_transient());
    }
}
