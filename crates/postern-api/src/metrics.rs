//! Prometheus metrics: the process-wide recorder, the HTTP request middleware, and the gauges read
//! from the store when `/metrics` is scraped.
//!
//! Non-goal: counters owned by other crates (token refreshes, IMAP and SMTP connections); they emit
//! through the `metrics` facade themselves, and the recorder installed here renders them too.
//!
//! Key decisions: requests are labelled by the *matched route template* (`/v1/accounts/{id}`),
//! never the raw path, so ids cannot explode the label cardinality; store-backed gauges are
//! computed at scrape time rather than kept up to date by every writer, so they cannot drift.

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use postern_store::{AccountState, Store, StoreError};
use postern_sync::SyncService;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The request counter, labelled `route`, `method`, `status`.
pub const HTTP_REQUESTS: &str = "postern_http_requests_total";
/// The request latency histogram, labelled `route`, `method`.
pub const HTTP_DURATION: &str = "postern_http_request_duration_seconds";
/// Accounts per state, every state present (0 included).
pub const ACCOUNTS: &str = "postern_accounts";
/// The newest event id: how many events the log has ever held.
pub const EVENTS: &str = "postern_events_total";
/// Outbox items per status, every status present (0 included): `queued` is the depth.
pub const OUTBOX: &str = "postern_outbox_items";
/// Running sync supervisors per activity (`idling`, `syncing`, `retrying`, …).
pub const SYNC_ACTIVITY: &str = "postern_sync_supervisors";
/// The age of the oldest last full sync pass among running supervisors: the most a mailbox
/// that IDLE does not watch can lag behind its server (until the next periodic pass).
pub const SYNC_LAG: &str = "postern_sync_lag_seconds";

/// The `route` label of a request no route matched (unknown paths, fallbacks).
const UNMATCHED_ROUTE: &str = "unmatched";
/// Latency buckets in seconds: from a cached read to a slow send.
const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// How many events one scrape reads per page while catching up with the log.
const EVENT_PAGE: u32 = 1000;

/// The process-wide handle. Installed once because the `metrics` facade has one global recorder,
/// while tests build many routers in one process.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Renders metrics for `/metrics`; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    /// The newest event id seen so far, so each scrape reads only the events appended since.
    newest_event: Arc<tokio::sync::Mutex<i64>>,
}

impl Metrics {
    /// The metrics of this process, installing the Prometheus recorder on first use.
    pub fn install() -> Self {
        let handle = HANDLE.get_or_init(install_recorder).clone();
        Self {
            handle,
            newest_event: Arc::new(tokio::sync::Mutex::new(0)),
        }
    }

    /// Refreshes the store- and sync-backed gauges, then renders everything in the Prometheus
    /// text format.
    pub async fn render(&self, store: &Store, sync: &SyncService) -> Result<String, StoreError> {
        record_accounts(store).await?;
        record_outbox(store).await?;
        record_sync(sync);
        let newest = self.catch_up_with_events(store).await?;
        gauge!(EVENTS).set(newest as f64);
        Ok(self.handle.render())
    }

    /// Pages forward from the last id seen; the log only grows, so this is cheap after the first scrape.
    async fn catch_up_with_events(&self, store: &Store) -> Result<i64, StoreError> {
        let mut newest = self.newest_event.lock().await;
        loop {
            let page = store.events().list_after(*newest, EVENT_PAGE, None).await?;
            if let Some(last) = page.last() {
                *newest = last.id.0;
            }
            if page.len() < EVENT_PAGE as usize {
                return Ok(*newest);
            }
        }
    }
}

fn install_recorder() -> PrometheusHandle {
    // Only an empty bucket list is refused, and this one is a non-empty constant.
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), &DURATION_BUCKETS)
        .unwrap_or_else(|_| PrometheusBuilder::new());
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if ::metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!("another metrics recorder is installed; /metrics will miss what it records");
    }
    describe();
    handle
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by matched route, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        ::metrics::Unit::Seconds,
        "HTTP request latency by matched route and method."
    );
    describe_gauge!(ACCOUNTS, "Accounts by state.");
    describe_gauge!(EVENTS, "The newest event id in the event log.");
    describe_gauge!(
        OUTBOX,
        "Outbox items by status; queued is the queue's depth."
    );
    describe_gauge!(SYNC_ACTIVITY, "Running sync supervisors by activity.");
    describe_gauge!(
        SYNC_LAG,
        ::metrics::Unit::Seconds,
        "Age of the oldest last full sync pass among running supervisors."
    );
}

async fn record_accounts(store: &Store) -> Result<(), StoreError> {
    let accounts = store.accounts().list().await?;
    for state in AccountState::ALL {
        let count = accounts.iter().filter(|a| a.state == *state).count();
        gauge!(ACCOUNTS, "state" => state.as_str()).set(count as f64);
    }
    Ok(())
}

async fn record_outbox(store: &Store) -> Result<(), StoreError> {
    for (status, count) in store.outbox().count_by_status().await? {
        gauge!(OUTBOX, "status" => status.as_str()).set(count as f64);
    }
    Ok(())
}

fn record_sync(sync: &SyncService) {
    let lag = sync.lag();
    for (activity, count) in lag.activities {
        gauge!(SYNC_ACTIVITY, "activity" => activity).set(count as f64);
    }
    let oldest = lag.oldest_pass_age.unwrap_or_default();
    gauge!(SYNC_LAG).set(oldest.as_secs_f64());
}

/// The route template a response came from, copied from the request by [`tag_route`] so that
/// [`record_request`], which runs before routing, can read it afterwards.
#[derive(Clone)]
struct RouteTag(MatchedPath);

/// Route middleware (`route_layer`): remembers the matched route on the response.
pub async fn tag_route(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(RouteTag(matched));
    }
    response
}

/// Outer middleware: counts every request and times it, labelled by the route [`tag_route`] saw.
pub async fn record_request(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteTag>()
        .map_or(UNMATCHED_ROUTE.to_owned(), |tag| tag.0.as_str().to_owned());
    let status = response.status().as_u16().to_string();
    histogram!(HTTP_DURATION, "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status).increment(1);
    response
}

/// Standard methods by name; any extension method as `other`, so clients cannot invent labels.
fn method_label(method: &Method) -> &'static str {
    let known = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
    ];
    known
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_keep_their_name_and_invented_ones_collapse() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let invented = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "other");
    }
}
