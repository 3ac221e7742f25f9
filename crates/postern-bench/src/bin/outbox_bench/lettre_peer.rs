//! The peer: a pooled lettre `AsyncSmtpTransport` (STARTTLS, PLAIN login) sending small messages
//! from a fixed number of concurrent tasks.
//!
//! Non-goal: tuning lettre beyond its pool size; this is the loop an application would write.
//!
//! Key decision: the pool holds as many connections as there are tasks, the same number of
//! connections the outbox's workers open, and the clock stops when the sink holds every message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lettre::message::header::ContentType;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::{PASSWORD, RECIPIENT, Target, USER, wait_for_sink};

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// One round: a fresh transport sends `target.messages` messages; returns the time until the
/// sink held them all.
pub async fn run(target: &Target<'_>) -> anyhow::Result<Duration> {
    let transport = Arc::new(transport(target)?);
    target.sink.clear();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..target.concurrency {
        let share = share_of(target.messages, target.concurrency, task);
        tasks.spawn(send_many(Arc::clone(&transport), task, share));
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    wait_for_sink(target.sink, target.messages).await?;
    Ok(started.elapsed())
}

/// The messages task number `task` of `tasks` sends, so the shares add up to `total`.
fn share_of(total: usize, tasks: usize, task: usize) -> usize {
    total / tasks + usize::from(task < total % tasks)
}

fn transport(target: &Target<'_>) -> anyhow::Result<Transport> {
    let addr = target
        .dovecot
        .submission_addr()
        .context("no submission port")?;
    let ca = Certificate::from_pem(target.dovecot.ca_pem().as_bytes())?;
    let tls = TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(ca)
        .build_rustls()?;
    let pool = PoolConfig::new().max_size(u32::try_from(target.concurrency)?);
    Ok(Transport::builder_dangerous("localhost")
        .port(addr.port())
        .tls(Tls::Required(tls))
        .credentials(Credentials::new(USER.to_owned(), PASSWORD.to_owned()))
        .pool_config(pool)
        .build())
}

async fn send_many(transport: Arc<Transport>, task: usize, count: usize) -> anyhow::Result<()> {
    for n in 0..count {
        let message = Message::builder()
            .from(USER.parse()?)
            .to(RECIPIENT.parse()?)
            .subject(format!("bench {task}-{n}"))
            .header(ContentType::TEXT_PLAIN)
            .body(format!("Benchmark message {n} from task {task}.\r\n"))?;
        transport.send(message).await?;
    }
    Ok(())
}
