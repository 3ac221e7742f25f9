//! An open-loop, constant-rate HTTP load generator: request `i` is due at `start + i / rate`,
//! whether or not the earlier ones have been answered, and its latency runs from that due time.
//!
//! Non-goal: finding the maximum throughput (a closed loop does that); this answers "what latency
//! does a client see at this rate", the question of the issue's goal.
//!
//! Key decisions:
//! - Latency is measured from the *scheduled* send time, not from when the request left, so a
//!   server stall counts against every request that was due during it (no coordinated omission).
//! - The schedule is kept by a dedicated OS thread sleeping with `std::thread::sleep` (tens of
//!   microseconds late here) that spawns each request onto the runtime; tokio's timer wheel has
//!   a 1 ms tick, which at 2 ms intervals would bunch requests in pairs. How late each request
//!   actually started is recorded too (`dispatch lag`), so the generator's own delay is visible.
//! - Keep-alive connections from one `reqwest` pool; a request due while every pooled connection is
//!   busy opens another, up to `max_in_flight` requests at once (beyond that they queue, still
//!   timed from their due time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};

/// One load run.
pub struct LoadPlan {
    /// Requests per second.
    pub rate: f64,
    /// How long requests are scheduled for.
    pub duration: Duration,
    /// The URLs, requested in turn.
    pub urls: Arc<Vec<reqwest::Url>>,
    /// The bearer token.
    pub token: Arc<str>,
    /// Requests in flight at most; later ones wait (and their wait counts in their latency).
    pub max_in_flight: usize,
}

/// What one run saw.
pub struct LoadResult {
    /// Latency of every 200 answer, from its due time, sorted.
    pub latencies: Vec<Duration>,
    /// How late each request started after its due time (the generator's own delay), sorted.
    pub dispatch_lag: Vec<Duration>,
    /// Requests scheduled.
    pub scheduled: u64,
    /// Answers other than 200, and transport errors.
    pub errors: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// Body bytes of the 200 answers.
    pub body_bytes: u64,
    /// From the first due time until the last answer.
    pub elapsed: Duration,
}

impl LoadResult {
    /// 200 answers per second over the run.
    pub fn achieved_rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// The `q` quantile (0..=1) of sorted samples; zero for none.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One request's outcome.
struct Sample {
    latency: Duration,
    lag: Duration,
    finished: Instant,
    outcome: Result<u64, String>,
}

/// Runs `plan` with `client` on the current runtime.
pub async fn run(client: &reqwest::Client, plan: &LoadPlan) -> anyhow::Result<LoadResult> {
    let count = (plan.rate * plan.duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let (samples_tx, mut samples_rx) = mpsc::unbounded_channel();
    let in_flight = Arc::new(Semaphore::new(plan.max_in_flight));
    let runtime = tokio::runtime::Handle::current();
    // A short lead so the first due time is not already past when the thread starts.
    let start = Instant::now() + Duration::from_millis(20);
    let dispatcher = {
        let client = client.clone();
        let urls = plan.urls.clone();
        let token = plan.token.clone();
        std::thread::spawn(move || {
            for index in 0..count {
                let due = start + interval.mul_f64(index as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let url = urls[index as usize % urls.len()].clone();
                runtime.spawn(request(
                    client.clone(),
                    url,
                    token.clone(),
                    due,
                    in_flight.clone(),
                    samples_tx.clone(),
                ));
            }
        })
    };
    let mut result = LoadResult {
        latencies: Vec::with_capacity(count as usize),
        dispatch_lag: Vec::with_capacity(count as usize),
        scheduled: count,
        errors: 0,
        first_error: None,
        body_bytes: 0,
        elapsed: Duration::ZERO,
    };
    let mut last = start;
    // Every sender is dropped once the dispatcher and all requests are done.
    while let Some(sample) = samples_rx.recv().await {
        record(&mut result, sample, &mut last);
    }
    if dispatcher.join().is_err() {
        anyhow::bail!("the dispatcher thread panicked");
    }
    result.elapsed = last.saturating_duration_since(start);
    result.latencies.sort();
    result.dispatch_lag.sort();
    Ok(result)
}

fn record(result: &mut LoadResult, sample: Sample, last: &mut Instant) {
    *last = (*last).max(sample.finished);
    result.dispatch_lag.push(sample.lag);
    match sample.outcome {
        Ok(bytes) => {
            result.latencies.push(sample.latency);
            result.body_bytes += bytes;
        }
        Err(error) => {
            result.errors += 1;
            result.first_error.get_or_insert(error);
        }
    }
}

async fn request(
    client: reqwest::Client,
    url: reqwest::Url,
    token: Arc<str>,
    due: Instant,
    in_flight: Arc<Semaphore>,
    samples: mpsc::UnboundedSender<Sample>,
) {
    let lag = Instant::now().saturating_duration_since(due);
    let _permit = in_flight.acquire_owned().await;
    let outcome = fetch(&client, url, &token).await;
    let finished = Instant::now();
    // The receiver lives until every sender is gone.
    let _ = samples.send(Sample {
        latency: finished.saturating_duration_since(due),
        lag,
        finished,
        outcome,
    });
}

/// GETs `url`; the body's length on 200, the status or error otherwise.
async fn fetch(client: &reqwest::Client, url: reqwest::Url, token: &str) -> Result<u64, String> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|error| format!("{error:#}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|error| format!("{error:#}"))?;
    if status == reqwest::StatusCode::OK {
        Ok(body.len() as u64)
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        let samples = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(quantile(&samples, 0.5), Duration::from_millis(5));
        assert_eq!(quantile(&samples, 0.9), Duration::from_millis(9));
        assert_eq!(quantile(&samples, 0.99), Duration::from_millis(10));
        assert_eq!(quantile(&samples, 1.0), Duration::from_millis(10));
        assert_eq!(quantile(&samples, 0.0), Duration::from_millis(1));
        assert_eq!(quantile(&[], 0.99), Duration::ZERO);
    }
}
