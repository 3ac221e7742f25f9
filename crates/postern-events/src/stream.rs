//! The pull API's core: events after a cursor, waiting a while for new ones (long-poll).
//!
//! Purpose: `GET /v1/events?after=<id>` for integrations that pull instead of receiving webhooks;
//! the API renders [`EventPage`] as JSON (each event as [`crate::EventBody`]) or as SSE frames.
//! Non-goal: HTTP, authentication, SSE framing; the API does those.
//! Key decision: a page carries `next_after`, the last event id *examined*, not the last one
//! returned. A caller bound to some accounts may face long stretches of other accounts' events;
//! `next_after` lets it skip them instead of rescanning them on every call, and bounds the work of
//! one call. Waiting uses the same `Notify` the webhook workers use, with interest registered
//! before the log is read, so an append is never missed between the read and the wait.
//! `webhook.test` events are left out: they are addressed to one webhook, not news.

use std::sync::Arc;
use std::time::Duration;

use postern_store::{Event, Store, StoreError};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::filter::{TEST_EVENT, account_allowed};

/// The most events one read examines when it filters in memory (several accounts, or all).
const MAX_EXAMINED: usize = 5_000;
/// The most events one page holds.
pub const MAX_PAGE: u32 = 1_000;
/// The longest a call waits for new events; longer waits are shortened to this. (Mind the API's
/// own request timeout, 30 s by default: a long-poll must end before it.)
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Whose events a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountScope {
    /// Every event, server-wide ones included.
    All,
    /// Only events of these accounts (never server-wide events).
    Only(Vec<String>),
}

/// One page of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events, in id order.
    pub events: Vec<Event>,
    /// The cursor for the next call: the last event id examined (or the `after` given, when none
    /// was). Never smaller than `after`.
    pub next_after: i64,
}

/// Reads the event log for pull clients. Cheap to clone.
#[derive(Clone)]
pub struct EventStream {
    store: Store,
    wake: Arc<Notify>,
    poll_interval: Duration,
}

impl EventStream {
    /// A stream over `store`'s log, woken by `wake` (the `Notify` appenders poke with
    /// `notify_waiters()`); `poll_interval` bounds the wait of an append that did not poke.
    pub fn new(store: Store, wake: Arc<Notify>, poll_interval: Duration) -> Self {
        EventStream {
            store,
            wake,
            poll_interval,
        }
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) events after `after` that `scope` may see. When there
    /// are none yet, waits up to `wait` (at most [`MAX_WAIT`]) for some to be appended; returns an
    /// empty page after that.
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
        scope: &AccountScope,
        wait: Duration,
    ) -> Result<EventPage, StoreError> {
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        let mut after = after.max(0);
        loop {
            let appended = self.wake.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let page = self
                .read_page(after, limit.clamp(1, MAX_PAGE), scope)
                .await?;
            if !page.events.is_empty() || Instant::now() >= deadline {
                return Ok(page);
            }
            after = page.next_after;
            tokio::select! {
                () = &mut appended => {}
                () = tokio::time::sleep_until(deadline) => {}
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// One read of the log, without waiting.
    async fn read_page(
        &self,
        after: i64,
        limit: u32,
        scope: &AccountScope,
    ) -> Result<EventPage, StoreError> {
        match scope {
            AccountScope::Only(ids) if ids.is_empty() => Ok(EventPage {
                events: Vec::new(),
                next_after: after,
            }),
            // One account: the database filters, with its index.
            AccountScope::Only(ids) if ids.len() == 1 => {
                let events = self
                    .store
                    .events()
                    .list_after(after, limit, Some(&ids[0]))
                    .await?;
                Ok(page_of(events, after))
            }
            AccountScope::Only(ids) => self.scan(after, limit, Some(ids)).await,
            AccountScope::All => self.scan(after, limit, None).await,
        }
    }

    /// Reads the whole log from `after`, keeping what `binding` allows, until the page is full,
    /// the log ends, or [`MAX_EXAMINED`] events were looked at.
    async fn scan(
        &self,
        mut after: i64,
        limit: u32,
        binding: Option<&[String]>,
    ) -> Result<EventPage, StoreError> {
        let mut kept = Vec::new();
        let mut examined = 0;
        while examined < MAX_EXAMINED {
            let batch = self.store.events().list_after(after, limit, None).await?;
            let read = batch.len();
            for event in batch {
                after = event.id.0;
                examined += 1;
                if visible(&event, binding) {
                    kept.push(event);
                    if kept.len() == limit as usize {
                        return Ok(EventPage {
                            events: kept,
                            next_after: after,
                        });
                    }
                }
            }
            if read < limit as usize {
                break;
            }
        }
        Ok(EventPage {
            events: kept,
            next_after: after,
        })
    }
}

fn visible(event: &Event, binding: Option<&[String]>) -> bool {
    event.kind != TEST_EVENT && account_allowed(binding, event.account_id.as_deref())
}

/// A page of events the database already filtered by account.
fn page_of(events: Vec<Event>, after: i64) -> EventPage {
    let next_after = events.last().map_or(after, |event| event.id.0);
    EventPage { events, next_after }
}
