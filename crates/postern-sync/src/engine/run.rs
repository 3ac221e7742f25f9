//! A sync pass: discovery, then each mailbox's plan carried out batch by batch into the store.
//!
//! Purpose: [`sync_account`] and [`sync_mailbox`], the glue between `wire` (the server), `plan`
//! (the decisions) and the store; nothing here decides anything a pure function could.
//! Non-goal: retrying. Any error ends the pass; what was committed stays, and the caller (the
//! supervisor) reconnects and runs the next pass, which resumes from the stored cursors.
//! Key decision: the order within a mailbox is changes, then new mail, then the initial sync
//! going down, each batch committing the cursor it reached. New mail goes first so that a large
//! initial sync never delays mail that arrives meanwhile.

use std::collections::HashSet;
use std::ops::{ControlFlow, RangeInclusive};

use chrono::NaiveDate;
use postern_store::{
    AccountId, BatchOutcome, FlagUpdate, Mailbox, NewMailbox, NewMessage, Store, SyncBatch,
    SyncState,
};

use crate::engine::committer::Committer;
use crate::engine::discovery::{ListedMailbox, plan_discovery};
use crate::engine::interpret::new_message;
use crate::engine::plan::{
    ExpungeCheck, FlagCheck, Plan, ServerStatus, Steps, Strategy, flag_changes, initial_batches,
    new_mail_batches, plan_pass,
};
use crate::engine::uidset::{format_range, format_uid_set, stored_in_ranges};
use crate::engine::wire::{Wire, quote_mailbox};
use crate::engine::{BatchReport, Phase, SyncObserver, SyncOptions};
use crate::error::{ImapError, SyncError};
use crate::session::ImapSession;

/// What a pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Each mailbox that was considered, in listing order.
    pub mailboxes: Vec<MailboxReport>,
    /// Mailboxes stored for the first time.
    pub created: Vec<String>,
    /// Mailboxes deleted from the store (gone from the server, or no longer selected).
    pub deleted: Vec<String>,
    /// IMAP commands sent (each one round trip).
    pub commands: u32,
}

/// What a pass did with one mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxReport {
    /// Its name.
    pub name: String,
    /// The result.
    pub outcome: MailboxOutcome,
}

/// The result of one mailbox's pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailboxOutcome {
    /// Nothing had changed; it was not selected.
    UpToDate,
    /// It was brought up to date.
    Synced {
        /// Its UIDVALIDITY had changed: the stored messages were dropped first.
        reset: bool,
        /// Messages stored.
        inserted: u32,
        /// Messages whose flags changed.
        updated: u32,
        /// Messages deleted.
        deleted: u32,
        /// Whether its initial sync is complete.
        initial_done: bool,
    },
    /// It cannot be synced; the reason, for people.
    Skipped(String),
    /// The server says it does not exist (deleted after the LIST this pass planned from); it was
    /// deleted from the store, with its `mailbox.deleted` event.
    Gone,
}

/// One pass over an account: lists the mailboxes, stores new ones and drops deleted ones, then
/// syncs each selected mailbox whose status moved.
pub async fn sync_account(
    session: &mut ImapSession,
    store: &Store,
    account_id: &AccountId,
    options: &SyncOptions,
    observer: &dyn SyncObserver,
) -> Result<SyncReport, SyncError> {
    let strategy = options.strategy_for(session.capabilities());
    let mut wire = Wire::new(session);
    if strategy == Strategy::Qresync {
        wire.enable_qresync().await?;
    }
    let listed = wire.list().await?;
    let stored = store.mailboxes().list(account_id).await?;
    let discovery = plan_discovery(&listed, &stored, &options.mailboxes);
    let mut report = SyncReport::default();
    for id in &discovery.delete {
        if let Some(gone) = stored.iter().find(|m| m.id == *id) {
            store.mailboxes().delete(*id).await?;
            report.deleted.push(gone.name.clone());
        }
    }
    for &(id, index) in &discovery.relabel {
        let entry = &listed[index];
        store
            .mailboxes()
            .set_attributes(id, entry.delimiter.clone(), entry.role)
            .await?;
    }
    let mut to_sync: Vec<(Mailbox, &ListedMailbox)> = Vec::new();
    for &(id, index) in &discovery.sync {
        if let Some(mailbox) = stored.iter().find(|m| m.id == id) {
            to_sync.push((mailbox.clone(), &listed[index]));
        }
    }
    for &index in &discovery.create {
        let entry = &listed[index];
        let mailbox = store
            .mailboxes()
            .create(NewMailbox {
                account_id: account_id.clone(),
                name: entry.name.clone(),
                delimiter: entry.delimiter.clone(),
                role: entry.role,
            })
            .await?;
        report.created.push(entry.name.clone());
        to_sync.push((mailbox, entry));
    }
    for (mailbox, entry) in to_sync {
        let outcome = MailboxPass::new(&mut wire, store, &mailbox, strategy, options, observer)
            .run(entry.status)
            .await?;
        if outcome == MailboxOutcome::Gone {
            report.deleted.push(mailbox.name.clone());
        }
        report.mailboxes.push(MailboxReport {
            name: mailbox.name.clone(),
            outcome,
        });
    }
    report.commands = wire.commands();
    Ok(report)
}

/// One mailbox's pass on its own, e.g. after IDLE reported new mail in it.
pub async fn sync_mailbox(
    session: &mut ImapSession,
    store: &Store,
    mailbox: &Mailbox,
    options: &SyncOptions,
    observer: &dyn SyncObserver,
) -> Result<MailboxReport, SyncError> {
    let strategy = options.strategy_for(session.capabilities());
    let mut wire = Wire::new(session);
    if strategy == Strategy::Qresync {
        wire.enable_qresync().await?;
    }
    let outcome = MailboxPass::new(&mut wire, store, mailbox, strategy, options, observer)
        .run(None)
        .await?;
    Ok(MailboxReport {
        name: mailbox.name.clone(),
        outcome,
    })
}

/// The totals of the batches a mailbox's pass committed.
#[derive(Default)]
struct Totals {
    inserted: u32,
    updated: u32,
    deleted: u32,
}

/// Everything one mailbox's pass works with.
struct MailboxPass<'p, 'w> {
    wire: &'p mut Wire<'w>,
    store: &'p Store,
    mailbox: &'p Mailbox,
    strategy: Strategy,
    options: &'p SyncOptions,
    observer: &'p dyn SyncObserver,
    /// The cursor as last committed.
    state: SyncState,
    totals: Totals,
}

impl<'p, 'w> MailboxPass<'p, 'w> {
    fn new(
        wire: &'p mut Wire<'w>,
        store: &'p Store,
        mailbox: &'p Mailbox,
        strategy: Strategy,
        options: &'p SyncOptions,
        observer: &'p dyn SyncObserver,
    ) -> Self {
        let placeholder = SyncState {
            uidvalidity: 0,
            uidnext: 0,
            highest_modseq: None,
            lowest_uid: 0,
            initial_done: false,
            exists: 0,
            unseen: None,
        };
        MailboxPass {
            wire,
            store,
            mailbox,
            strategy,
            options,
            observer,
            state: mailbox.sync.unwrap_or(placeholder),
            totals: Totals::default(),
        }
    }

    /// Plans from `listed` (the status LIST-STATUS gave, or a STATUS now), selects the mailbox
    /// only when something moved, and carries the plan out.
    async fn run(mut self, listed: Option<ServerStatus>) -> Result<MailboxOutcome, SyncError> {
        let Some(quoted) = quote_mailbox(&self.mailbox.name) else {
            return Ok(MailboxOutcome::Skipped(
                "its name cannot be sent as a quoted string".to_owned(),
            ));
        };
        let status = match listed {
            Some(status) => status,
            None => match self.wire.status(&quoted).await {
                Err(error) if self.vanished(&error).await? => return self.gone().await,
                other => other?,
            },
        };
        if plan_pass(self.mailbox.sync.as_ref(), &status, self.strategy) == Plan::UpToDate {
            return Ok(MailboxOutcome::UpToDate);
        }
        let selected = match self.wire.select(&quoted, self.strategy.has_modseq()).await {
            Err(error) if self.vanished(&error).await? => return self.gone().await,
            other => other?,
        };
        let server = ServerStatus {
            unseen: status.unseen,
            ..selected
        };
        let (steps, reset) = self.settle_uidvalidity(&server).await?;
        let Some(steps) = steps else {
            return Ok(MailboxOutcome::UpToDate);
        };
        self.carry_out(&steps, &server).await?;
        Ok(MailboxOutcome::Synced {
            reset,
            inserted: self.totals.inserted,
            updated: self.totals.updated,
            deleted: self.totals.deleted,
            initial_done: self.state.initial_done,
        })
    }

    /// Whether `error` (a refused STATUS or SELECT) means the mailbox was deleted after the LIST
    /// this pass planned from: RFC 5530's `NONEXISTENT` says so; servers that send no code (Dovecot
    /// 2.3 answers a plain `NO Mailbox doesn't exist`) are asked with a fresh LIST.
    async fn vanished(&mut self, error: &ImapError) -> Result<bool, SyncError> {
        if !matches!(error, ImapError::CommandRejected { .. }) {
            return Ok(false);
        }
        if error.response_code() == Some("NONEXISTENT") {
            return Ok(true);
        }
        let listed = self.wire.list().await?;
        Ok(!listed.iter().any(|entry| entry.name == self.mailbox.name))
    }

    /// The mailbox vanished between the LIST and now: drop it from the store as discovery would
    /// have, and let the pass go on with the others.
    async fn gone(self) -> Result<MailboxOutcome, SyncError> {
        tracing::info!(mailbox = %self.mailbox.name, "mailbox no longer exists on the server; dropped");
        self.store.mailboxes().delete(self.mailbox.id).await?;
        Ok(MailboxOutcome::Gone)
    }

    /// Plans against the selected status; a changed UIDVALIDITY resets the mailbox and plans
    /// again from nothing. Writes the first cursor of a fresh mailbox.
    async fn settle_uidvalidity(
        &mut self,
        server: &ServerStatus,
    ) -> Result<(Option<Steps>, bool), SyncError> {
        let mut stored = self.mailbox.sync;
        let mut reset = false;
        loop {
            match plan_pass(stored.as_ref(), server, self.strategy) {
                Plan::UpToDate => return Ok((None, reset)),
                Plan::Reset { stored: old, .. } => {
                    tracing::info!(mailbox = %self.mailbox.name, old, new = server.uidvalidity, "UIDVALIDITY changed; resyncing the mailbox");
                    self.store
                        .mailboxes()
                        .reset(self.mailbox.id, server.uidvalidity)
                        .await?;
                    stored = None;
                    reset = true;
                }
                Plan::Sync(steps) => {
                    self.state = steps.start;
                    if stored.is_none() {
                        self.store
                            .mailboxes()
                            .set_sync_state(self.mailbox.id, self.state)
                            .await?;
                    }
                    return Ok((Some(steps), reset));
                }
            }
        }
    }

    async fn carry_out(&mut self, steps: &Steps, server: &ServerStatus) -> Result<(), SyncError> {
        if let Some(known) = &steps.known
            && (steps.flags != FlagCheck::Skip || steps.expunges != ExpungeCheck::Skip)
        {
            self.apply_changes(steps, known, server).await?;
        }
        if let Some(range) = &steps.new_mail {
            self.fetch_new_mail(range).await?;
        }
        if steps.continue_initial {
            self.continue_initial().await?;
        }
        let finished = SyncState {
            lowest_uid: self.state.lowest_uid,
            initial_done: self.state.initial_done,
            ..steps.finished_state(server)
        };
        if finished != self.state {
            self.store
                .mailboxes()
                .set_sync_state(self.mailbox.id, finished)
                .await?;
            self.state = finished;
        }
        Ok(())
    }

    /// Flag changes and expunges of the stored range, committed as one batch.
    async fn apply_changes(
        &mut self,
        steps: &Steps,
        known: &RangeInclusive<u32>,
        server: &ServerStatus,
    ) -> Result<(), SyncError> {
        let (updates, vanished) = match steps.flags {
            FlagCheck::All => self.compare_all_flags(known).await?,
            FlagCheck::ChangedSince(modseq) => {
                let with_vanished = steps.expunges == ExpungeCheck::WithFlags;
                let (changed, gone) = self
                    .wire
                    .fetch_flags(known, Some(modseq), with_vanished)
                    .await?;
                let updates = changed
                    .into_iter()
                    .map(|state| FlagUpdate {
                        uid: state.uid,
                        flags: state.flags,
                        modseq: state.modseq,
                    })
                    .collect();
                let vanished = if gone.is_empty() {
                    Vec::new()
                } else {
                    let stored = self.store.messages().uids(self.mailbox.id).await?;
                    stored_in_ranges(&stored, &gone)
                };
                (updates, vanished)
            }
            FlagCheck::Skip => (Vec::new(), Vec::new()),
        };
        let vanished = if steps.expunges == ExpungeCheck::Search {
            self.search_expunged(known).await?
        } else {
            vanished
        };
        let mut batch = SyncBatch::cursor_only(self.mailbox.id, self.state);
        batch.state.highest_modseq = server.highest_modseq;
        batch.flag_updates = updates;
        batch.vanished = vanished;
        self.commit(batch, Phase::Changes, &[]).await
    }

    async fn compare_all_flags(
        &mut self,
        known: &RangeInclusive<u32>,
    ) -> Result<(Vec<FlagUpdate>, Vec<u32>), SyncError> {
        let (listing, _) = self.wire.fetch_flags(known, None, false).await?;
        let server: Vec<(u32, Vec<String>)> = listing
            .into_iter()
            .map(|state| (state.uid, state.flags))
            .collect();
        let stored = self
            .store
            .messages()
            .flags_in_range(self.mailbox.id, *known.start(), *known.end())
            .await?;
        let (updates, vanished) = flag_changes(&stored, &server);
        let updates = updates
            .into_iter()
            .map(|(uid, flags)| FlagUpdate {
                uid,
                flags,
                modseq: None,
            })
            .collect();
        Ok((updates, vanished))
    }

    async fn search_expunged(
        &mut self,
        known: &RangeInclusive<u32>,
    ) -> Result<Vec<u32>, SyncError> {
        let mut on_server = self
            .wire
            .uid_search(&format!("UID {}", format_range(known)))
            .await?;
        on_server.sort_unstable();
        let stored = self.store.messages().uids(self.mailbox.id).await?;
        Ok(stored
            .into_iter()
            .filter(|uid| known.contains(uid) && on_server.binary_search(uid).is_err())
            .collect())
    }

    /// New mail between the stored UIDNEXT and the server's, oldest first.
    async fn fetch_new_mail(&mut self, range: &RangeInclusive<u32>) -> Result<(), SyncError> {
        let found = self
            .wire
            .uid_search(&format!("UID {}", format_range(range)))
            .await?;
        let found: Vec<u32> = found
            .into_iter()
            .filter(|uid| range.contains(uid))
            .collect();
        let batches = new_mail_batches(found, self.options.batch_size);
        self.fetch_and_commit(batches, Phase::NewMail, |batch, _, uids| {
            batch.state.uidnext = uids.iter().max().map_or(batch.state.uidnext, |uid| uid + 1);
        })
        .await
    }

    /// The initial sync, from the cursor down, newest first, within the window.
    async fn continue_initial(&mut self) -> Result<(), SyncError> {
        let candidates = if self.state.lowest_uid > 1 {
            let criteria = initial_criteria(self.state.lowest_uid, self.options.window.since);
            self.wire.uid_search(&criteria).await?
        } else {
            Vec::new()
        };
        let candidates: Vec<u32> = candidates
            .into_iter()
            .filter(|uid| *uid < self.state.lowest_uid)
            .collect();
        let stored = self.store.messages().count(self.mailbox.id).await?;
        let batches = initial_batches(
            candidates,
            stored,
            &self.options.window,
            self.options.batch_size,
        );
        let last = batches.len();
        self.fetch_and_commit(batches, Phase::Initial, |batch, index, uids| {
            batch.state.lowest_uid = uids.iter().min().copied().unwrap_or(batch.state.lowest_uid);
            batch.state.initial_done = index + 1 == last;
            batch.initial = true;
        })
        .await?;
        if last == 0 {
            self.state.initial_done = true;
        }
        Ok(())
    }

    /// Fetches each of `batches` and has the [`Committer`] commit it, in order, fetching the next
    /// batches while the store writes the ones before. `adjust` sets a batch's cursor (it gets the
    /// batch, its index and its UIDs) on top of the cursor the batch before it will commit. A
    /// failure stops the pass: batches already fetched are committed first when the fetch failed;
    /// a failed commit stops at once. What was committed stays, and the next pass fetches the rest.
    async fn fetch_and_commit(
        &mut self,
        batches: Vec<Vec<u32>>,
        phase: Phase,
        adjust: impl Fn(&mut SyncBatch, usize, &[u32]),
    ) -> Result<(), SyncError> {
        // Each batch is tagged with the cursor it commits and its UIDs, to record it by.
        let mut committer: Committer<(SyncState, Vec<u32>)> = Committer::start(self.store.clone());
        let mut planned = self.state;
        let mut fetch_error = None;
        for (index, uids) in batches.into_iter().enumerate() {
            let messages = match self.fetch(&uids).await {
                Ok(messages) => messages,
                Err(error) => {
                    fetch_error = Some(error);
                    break;
                }
            };
            let mut batch = SyncBatch::cursor_only(self.mailbox.id, planned);
            adjust(&mut batch, index, &uids);
            batch.new_messages = messages;
            planned = batch.state;
            let accepted = committer.queue(batch, (planned, uids)).await;
            while let Some(result) = committer.ready_result() {
                let ((state, uids), outcome) = result?;
                self.record(outcome, state, phase, &uids)?;
            }
            if !accepted {
                break;
            }
        }
        committer.close();
        while let Some(result) = committer.next_result().await {
            let ((state, uids), outcome) = result?;
            self.record(outcome, state, phase, &uids)?;
        }
        fetch_error.map_or(Ok(()), Err)
    }

    /// Fetches `uids` and turns each complete answer into a store message; a UID the server
    /// no longer has (expunged meanwhile) is simply absent.
    async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<NewMessage>, SyncError> {
        let mut messages: Vec<NewMessage> = Vec::with_capacity(uids.len());
        let mut wanted: HashSet<u32> = uids.iter().copied().collect();
        let set = format_uid_set(uids);
        let modseq = self.strategy.has_modseq();
        self.wire
            .fetch_messages(&set, self.options.bodies, modseq, |fetched| {
                // Unsolicited FETCH lines (another client's flag change) carry no body: skipped,
                // and the UID stays wanted until its real answer arrives.
                if !wanted.contains(&fetched.uid) {
                    return;
                }
                let uid = fetched.uid;
                if let Some(message) = new_message(fetched) {
                    wanted.remove(&uid);
                    messages.push(message);
                }
            })
            .await?;
        Ok(messages)
    }

    /// Commits a batch, records its cursor and asks the observer whether to go on.
    async fn commit(
        &mut self,
        batch: SyncBatch,
        phase: Phase,
        fetched: &[u32],
    ) -> Result<(), SyncError> {
        let state = batch.state;
        let outcome: BatchOutcome = self.store.messages().apply(batch).await?;
        self.record(outcome, state, phase, fetched)
    }

    /// After a commit: keeps its cursor and totals and asks the observer whether to go on.
    fn record(
        &mut self,
        outcome: BatchOutcome,
        state: SyncState,
        phase: Phase,
        fetched: &[u32],
    ) -> Result<(), SyncError> {
        self.state = state;
        self.totals.inserted += outcome.inserted;
        self.totals.updated += outcome.updated;
        self.totals.deleted += outcome.deleted;
        let report = BatchReport {
            mailbox: &self.mailbox.name,
            phase,
            fetched,
            outcome,
            state,
        };
        match self.observer.batch_committed(&report) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(SyncError::Interrupted),
        }
    }
}

/// `UID SEARCH` criteria for the initial sync below `lowest_uid`, within the window's date.
fn initial_criteria(lowest_uid: u32, since: Option<NaiveDate>) -> String {
    let range = format!("UID 1:{}", lowest_uid.saturating_sub(1).max(1));
    match since {
        Some(day) => format!("{range} SINCE {}", day.format("%-d-%b-%Y")),
        None => range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_criteria_name_the_range_below_the_cursor_and_the_day() {
        assert_eq!(initial_criteria(101, None), "UID 1:100");
        let day = NaiveDate::from_ymd_opt(2026, 3, 7);
        assert_eq!(initial_criteria(5, day), "UID 1:4 SINCE 7-Mar-2026");
    }
}
