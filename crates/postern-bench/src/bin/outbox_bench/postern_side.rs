//! Postern's side: a fresh store and vault, one password account on the Dovecot, an
//! `OutboxService` with its workers running, and every message through `OutboxService::submit`.
//!
//! Non-goal: the HTTP layer in front of `submit`; the API crate's own tests time that.
//!
//! Key decision: submissions come from `target.submitters` tasks (one, by default: one API client
//! sending in turn) while the workers drain the queue; the clock runs from the first submit until
//! the sink holds every message. With `target.drain` the queue is filled first and the clock
//! runs from the workers' start, which isolates the sending from the submitting.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use postern_auth::flows::Flows;
use postern_auth::testing::TempContext;
use postern_auth::token_manager::{RefreshPolicy, TokenManager};
use postern_outbox::{OutboxConfig, OutboxService, SendRequest, SentCopy};
use postern_store::{AccountAuth, AccountId, AccountState, Endpoint, NewAccount, Security};
use postern_testkit::dovecot::Dovecot;
use tokio::sync::watch;

use crate::{PASSWORD, RECIPIENT, Target, USER, wait_for_sink};

/// Never called: the account uses a password, so no OAuth flow runs.
const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

/// The times of one round.
pub struct Timing {
    /// From the first submit until the last submit returned.
    pub submitted: Duration,
    /// From the first submit until the sink held every message.
    pub delivered: Duration,
}

/// One round on a fresh store.
pub async fn run(target: &Target<'_>) -> anyhow::Result<Timing> {
    let TempContext { dir: _dir, ctx } = TempContext::new().await;
    let (store, vault) = (ctx.store.clone(), ctx.vault.clone());
    let account_id = AccountId::generate();
    let sealed = vault.seal(&account_id.password_ref().context(), PASSWORD.as_bytes());
    store
        .accounts()
        .create(account(target.dovecot, account_id.clone())?, Some(&sealed))
        .await?;
    let tokens = TokenManager::new(Flows::new(ctx, REDIRECT.into()), RefreshPolicy::default());
    let config = OutboxConfig {
        workers: target.concurrency,
        sent_copy: SentCopy::Never,
        pool_max_idle: target.pool_max_idle,
        ..OutboxConfig::default()
    };
    let outbox = OutboxService::new(store, vault, tokens, config);
    let (stop, shutdown) = watch::channel(false);
    target.sink.clear();
    let (workers, started, submitted) = if target.drain {
        let submitting = Instant::now();
        submit_all(&outbox, &account_id, target).await?;
        let submitted = submitting.elapsed();
        (outbox.spawn_workers(shutdown), Instant::now(), submitted)
    } else {
        let workers = outbox.spawn_workers(shutdown);
        let started = Instant::now();
        submit_all(&outbox, &account_id, target).await?;
        (workers, started, started.elapsed())
    };
    wait_for_sink(target.sink, target.messages).await?;
    let delivered = started.elapsed();
    let _ = stop.send(true);
    workers.join().await;
    Ok(Timing {
        submitted,
        delivered,
    })
}

/// Submits `target.messages` messages from `target.submitters` concurrent tasks.
async fn submit_all(
    outbox: &OutboxService,
    account_id: &AccountId,
    target: &Target<'_>,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..target.submitters {
        let (outbox, account_id) = (outbox.clone(), account_id.clone());
        let numbers: Vec<usize> = (task..target.messages).step_by(target.submitters).collect();
        tasks.spawn(async move {
            for n in numbers {
                outbox
                    .submit(&account_id, request(n), None, None)
                    .await
                    .with_context(|| format!("submitting message {n}"))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

fn request(n: usize) -> SendRequest {
    SendRequest {
        to: vec![RECIPIENT.into()],
        subject: Some(format!("bench {n}")),
        text: Some(format!("Benchmark message {n}.\r\n")),
        ..SendRequest::default()
    }
}

/// The account as the outbox tests create it: submission with STARTTLS, the test CA trusted.
fn account(dovecot: &Dovecot, id: AccountId) -> anyhow::Result<NewAccount> {
    let ca_file = Some(dovecot.ca_file().display().to_string());
    let submission = dovecot.submission_addr().context("no submission port")?;
    Ok(NewAccount {
        id,
        email: USER.to_owned(),
        name: None,
        imap: Endpoint {
            host: "localhost".into(),
            port: dovecot.imaps_addr().port(),
            security: Security::Tls,
            ca_file: ca_file.clone(),
        },
        smtp: Endpoint {
            host: "localhost".into(),
            port: submission.port(),
            security: Security::StartTls,
            ca_file,
        },
        auth: AccountAuth::Password { username: None },
        state: AccountState::Connected,
    })
}
