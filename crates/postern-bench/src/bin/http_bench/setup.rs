//! What the HTTP bench needs before it measures: a filled mailbox on the test Dovecot, a password
//! account for it created through the API of a running `postern serve`, its initial sync finished,
//! and the URLs of the first listing pages (following `next_cursor`).
//!
//! Non-goal: timing the sync (`sync-bench` does); its duration is printed only as context.
//!
//! Key decision: the mailbox is filled before the account exists, so the figure is taken on a
//! server whose supervisor sits in IDLE, as a server in production spends most of its time.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use postern_testkit::dovecot::Dovecot;
use postern_testkit::mailgen::{ImapAppender, MailGen};

use crate::postern_server::{PosternServer, password_account_body, sync_activity};

/// Messages generated and appended per MULTIAPPEND round, so the fill never holds them all.
const FILL_CHUNK: usize = 5_000;
const MAILGEN_SEED: u64 = 44;
/// How long the initial sync may take before the bench gives up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(600);

/// Appends `count` generated messages to `user`'s INBOX (10% with an attachment, unseen).
pub async fn fill(
    dovecot: &Dovecot,
    user: &str,
    password: &str,
    count: usize,
) -> anyhow::Result<Duration> {
    let mut generator = MailGen::new(MAILGEN_SEED, user);
    let started = Instant::now();
    let mut appender = ImapAppender::login(dovecot.imap_addr(), user, password).await?;
    let mut left = count;
    while left > 0 {
        let chunk = generator.raw_messages(left.min(FILL_CHUNK));
        appender.append_all("INBOX", &[], &chunk).await?;
        left -= chunk.len();
    }
    appender.logout().await?;
    Ok(started.elapsed())
}

/// Creates the account through the API and waits until its supervisor idles with `count`
/// messages stored in INBOX; returns the account id and how long the wait took.
pub async fn synced_account(
    server: &PosternServer,
    dovecot: &Dovecot,
    user: &str,
    password: &str,
    count: usize,
) -> anyhow::Result<(String, Duration)> {
    let body = password_account_body(
        user,
        password,
        dovecot.imaps_addr().port(),
        dovecot.ca_file(),
    );
    let started = Instant::now();
    let created = server.post_json("/v1/accounts", &body).await?;
    let id = created["id"]
        .as_str()
        .with_context(|| format!("no account id in {created}"))?
        .to_owned();
    loop {
        if sync_activity(server, &id).await? == "idling"
            && inbox_stored(server, &id).await? == count
        {
            return Ok((id, started.elapsed()));
        }
        if started.elapsed() > SYNC_TIMEOUT {
            bail!(
                "the account did not finish its sync of {count} messages in {SYNC_TIMEOUT:?}; see {}",
                server.log_file().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn inbox_stored(server: &PosternServer, id: &str) -> anyhow::Result<usize> {
    let listed = server
        .get_json(&format!("/v1/accounts/{id}/mailboxes"))
        .await?;
    let stored = listed["mailboxes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|mailbox| mailbox["name"] == "INBOX")
        .and_then(|inbox| inbox["stored"].as_u64())
        .unwrap_or(0);
    Ok(usize::try_from(stored)?)
}

/// The URLs of the first `pages` pages of `GET /v1/accounts/{id}/messages?limit=LIMIT`: the first
/// without a cursor, each next one with the `next_cursor` the previous page returned.
pub async fn page_urls(
    server: &PosternServer,
    id: &str,
    limit: u32,
    pages: usize,
) -> anyhow::Result<Vec<reqwest::Url>> {
    let base = server.url(&format!("/v1/accounts/{id}/messages"));
    let limit = limit.to_string();
    let mut urls = vec![reqwest::Url::parse_with_params(
        &base,
        [("limit", limit.as_str())],
    )?];
    while urls.len() < pages {
        let Some(last) = urls.last() else { break };
        let path = format!(
            "{}?{}",
            last.path(),
            last.query().context("a page URL without a query")?
        );
        let page = server.get_json(&path).await?;
        let listed = page["messages"].as_array().map_or(0, Vec::len);
        if listed == 0 {
            bail!("page {} of the listing is empty: {page}", urls.len());
        }
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        urls.push(reqwest::Url::parse_with_params(
            &base,
            [("limit", limit.as_str()), ("cursor", cursor)],
        )?);
    }
    Ok(urls)
}
