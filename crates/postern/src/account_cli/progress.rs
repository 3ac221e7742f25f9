//! `postern account progress ID [--watch]`: how far the sync of an account got, per mailbox.
//!
//! Purpose: the CLI's view of an initial sync: stored / on the server, per mailbox and in total,
//! once, or as live progress bars until every mailbox's initial sync is done.
//! Non-goal: driving the sync; `serve` does that. This reads the data dir's store (SQLite lets it
//! read while the server writes), so it works without an API token.
//! Key decision: a mailbox whose initial sync is done counts as complete even with fewer messages
//! stored than the server holds, because the sync window (`sync.window_days`,
//! `sync.newest_per_mailbox`) may leave older ones out on purpose.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use postern_store::{AccountId, Store};

use crate::config::Config;
use crate::data_dir;

/// How often `--watch` reads the store again.
const REFRESH: Duration = Duration::from_millis(500);

/// One mailbox's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxProgress {
    pub name: String,
    /// Messages stored locally.
    pub stored: u64,
    /// Messages on the server at the last pass; `None` before the first.
    pub on_server: Option<u64>,
    /// Whether its initial sync is done.
    pub done: bool,
}

impl MailboxProgress {
    /// What the bar counts to: the server's count, or what is stored once the sync is done.
    fn target(&self) -> u64 {
        if self.done {
            self.stored
        } else {
            self.on_server.unwrap_or(0).max(self.stored)
        }
    }

    fn state(&self) -> &'static str {
        match (self.done, self.on_server) {
            (true, _) => "done",
            (false, None) => "waiting",
            (false, Some(_)) => "syncing",
        }
    }
}

/// Prints the account's progress once, or (`watch`) follows it until every initial sync is done.
pub async fn progress(config: &Config, id: &str, watch: bool) -> anyhow::Result<()> {
    let store = data_dir::open(config).await?.store;
    let account_id: AccountId = id
        .parse()
        .map_err(|_| anyhow::anyhow!("{id:?} is not an account id"))?;
    if store.accounts().get(&account_id).await?.is_none() {
        anyhow::bail!("no account {id}");
    }
    if watch {
        follow(&store, &account_id).await
    } else {
        print!("{}", render(&read(&store, &account_id).await?));
        Ok(())
    }
}

/// The account's mailboxes as the store has them now.
pub async fn read(store: &Store, account_id: &AccountId) -> anyhow::Result<Vec<MailboxProgress>> {
    let mut lines = Vec::new();
    for mailbox in store.mailboxes().list(account_id).await? {
        lines.push(MailboxProgress {
            stored: store.messages().count(mailbox.id).await?,
            on_server: mailbox.sync.map(|sync| u64::from(sync.exists)),
            done: mailbox.sync.is_some_and(|sync| sync.initial_done),
            name: mailbox.name,
        });
    }
    Ok(lines)
}

/// Whether the account's initial sync is over (and it has been seen to start).
pub fn all_done(mailboxes: &[MailboxProgress]) -> bool {
    !mailboxes.is_empty() && mailboxes.iter().all(|mailbox| mailbox.done)
}

/// One line per mailbox and a total, aligned, for people and scripts.
pub fn render(mailboxes: &[MailboxProgress]) -> String {
    if mailboxes.is_empty() {
        return "no mailboxes yet: the server has not listed this account's mailboxes\n".to_owned();
    }
    let width = mailboxes
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut text = String::new();
    for mailbox in mailboxes {
        text.push_str(&format!(
            "{:<width$}  {:>8} / {:<8} {:>4}  {}\n",
            mailbox.name,
            mailbox.stored,
            mailbox.target(),
            percent(mailbox.stored, mailbox.target()),
            mailbox.state()
        ));
    }
    let (stored, target) = totals(mailboxes);
    let state = if all_done(mailboxes) {
        "done"
    } else {
        "syncing"
    };
    text.push_str(&format!(
        "{:<width$}  {stored:>8} / {target:<8} {:>4}  {state}\n",
        "total",
        percent(stored, target)
    ));
    text
}

fn totals(mailboxes: &[MailboxProgress]) -> (u64, u64) {
    mailboxes.iter().fold((0, 0), |(stored, target), mailbox| {
        (stored + mailbox.stored, target + mailbox.target())
    })
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "100%".to_owned();
    }
    format!("{}%", part.min(whole) * 100 / whole)
}

/// Live bars, one per mailbox and one for the total, until every initial sync is done.
async fn follow(store: &Store, account_id: &AccountId) -> anyhow::Result<()> {
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix:<24} [{bar:30}] {pos:>8}/{len:<8} {msg}")?
        .progress_chars("=> ");
    let total = bars.add(
        ProgressBar::new(0)
            .with_style(style.clone())
            .with_prefix("total"),
    );
    let mut per_mailbox: Vec<ProgressBar> = Vec::new();
    loop {
        let mailboxes = read(store, account_id).await?;
        while per_mailbox.len() < mailboxes.len() {
            let bar = ProgressBar::new(0).with_style(style.clone());
            per_mailbox.push(bars.insert_before(&total, bar));
        }
        for (bar, mailbox) in per_mailbox.iter().zip(&mailboxes) {
            bar.set_prefix(mailbox.name.clone());
            bar.set_length(mailbox.target());
            bar.set_position(mailbox.stored);
            bar.set_message(mailbox.state());
        }
        let (stored, target) = totals(&mailboxes);
        total.set_length(target);
        total.set_position(stored);
        if all_done(&mailboxes) {
            total.finish_with_message("done");
            per_mailbox.iter().for_each(ProgressBar::finish);
            // The bars are drawn only on a terminal; the last state goes to stdout either way.
            print!("{}", render(&mailboxes));
            return Ok(());
        }
        total.set_message("syncing");
        tokio::time::sleep(REFRESH).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(name: &str, stored: u64, on_server: Option<u64>, done: bool) -> MailboxProgress {
        MailboxProgress {
            name: name.to_owned(),
            stored,
            on_server,
            done,
        }
    }

    #[test]
    fn a_done_mailbox_is_complete_even_when_the_window_left_messages_out() {
        let lines = [
            mailbox("INBOX", 400, Some(1000), true),
            mailbox("Archive", 250, Some(1000), false),
            mailbox("Trash", 0, None, false),
        ];
        let text = render(&lines);
        let expected = "\
INBOX         400 / 400      100%  done
Archive       250 / 1000      25%  syncing
Trash           0 / 0        100%  waiting
total         650 / 1400      46%  syncing
";
        assert_eq!(text, expected);
        assert!(!all_done(&lines));
    }

    #[test]
    fn the_sync_is_over_only_when_every_mailbox_is_done_and_one_exists() {
        assert!(!all_done(&[]));
        assert!(all_done(&[mailbox("INBOX", 3, Some(3), true)]));
        assert!(render(&[]).starts_with("no mailboxes yet"));
    }
}
