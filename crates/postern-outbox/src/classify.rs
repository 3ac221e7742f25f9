//! What an attempt's SMTP replies mean for the message: sent, try again, or give up. Pure.
//!
//! Purpose: turn a [`Transaction`] (one reply per recipient and the final reply) into
//! per-recipient results and an [`Outcome`], and an [`SmtpError`] into an [`Outcome`].
//! Non-goal: timing (back-off, attempt limits); the worker applies those to `Retry`.
//!
//! The table, in one place:
//!
//! | what the server said | outcome |
//! |---|---|
//! | 2xx for a recipient and 2xx at the end of DATA | that recipient `accepted` |
//! | 4xx for a recipient (or at the end of DATA) | that recipient `deferred`: retry |
//! | 5xx for a recipient (or at the end of DATA) | that recipient `rejected`, with the server's words |
//! | network errors, timeouts, 4xx outside a recipient (`421`, `454`) | retry |
//! | `535` with a `401` / `invalid_token` JSON challenge | refresh the token once, then log in again |
//! | `535` otherwise, a `400` + scope challenge, other 5xx, TLS refusals | fail, with the server's words |
//!
//! Key decision: results are per recipient and a retry goes only to recipients still `pending` or
//! `deferred`, so "some recipients failed while others succeeded" never sends a second copy to
//! those who already have it. The message is `sent` when nobody is left to try and at least one
//! recipient accepted it; `failed` when everyone refused.

use postern_auth::sasl::ChallengeVerdict;
use postern_store::{RecipientResult, RecipientStatus};

use crate::error::SmtpError;
use crate::smtp::{Reply, ReplyKind, Transaction};

/// What to do with a message after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nobody is left to try and at least one recipient accepted it.
    Sent,
    /// Try again later; the reason in the server's words where it gave any.
    Retry(String),
    /// Give up; the reason in the server's words where it gave any.
    Fail(String),
    /// The server rejected the bearer token as expired or invalid: refresh once and log in again.
    TokenRejected,
}

/// The outcome of an attempt that ended in an error before a transaction completed.
pub fn classify_error(error: &SmtpError) -> Outcome {
    if error.token_rejected() {
        return Outcome::TokenRejected;
    }
    if let Some(ChallengeVerdict::InsufficientScope { scope }) = error.token_verdict() {
        let scope = scope.unwrap_or_else(|| "the mail scope".to_owned());
        return Outcome::Fail(format!(
            "the account's grant lacks the scope the server requires ({scope}); the user must \
             authorize again with it. {error}"
        ));
    }
    if error.is_transient() {
        Outcome::Retry(error.to_string())
    } else {
        Outcome::Fail(error.to_string())
    }
}

/// Merges a transaction's replies into the results so far (`previous`, in envelope order) and
/// says what follows. Recipients already `accepted` or `rejected` keep their result.
pub fn classify_transaction(
    previous: &[RecipientResult],
    transaction: &Transaction,
) -> (Vec<RecipientResult>, Outcome) {
    let results: Vec<RecipientResult> = previous
        .iter()
        .map(|result| merge(result, transaction))
        .collect();
    let outcome = overall(&results);
    (results, outcome)
}

/// The outcome the results call for, when this attempt may be followed by another.
pub fn overall(results: &[RecipientResult]) -> Outcome {
    let waiting: Vec<&RecipientResult> = results.iter().filter(|r| is_open(r)).collect();
    if !waiting.is_empty() {
        return Outcome::Retry(summary(&waiting));
    }
    if results
        .iter()
        .any(|r| r.status == RecipientStatus::Accepted)
    {
        return Outcome::Sent;
    }
    let rejected: Vec<&RecipientResult> = results.iter().collect();
    Outcome::Fail(summary(&rejected))
}

/// True while a recipient should be tried again.
pub fn is_open(result: &RecipientResult) -> bool {
    matches!(
        result.status,
        RecipientStatus::Pending | RecipientStatus::Deferred
    )
}

fn merge(previous: &RecipientResult, transaction: &Transaction) -> RecipientResult {
    if !is_open(previous) {
        return previous.clone();
    }
    let Some(rcpt) = transaction
        .recipients
        .iter()
        .find(|r| r.address.eq_ignore_ascii_case(&previous.address))
    else {
        return previous.clone();
    };
    let deciding = if rcpt.reply.is_positive() {
        transaction.data.as_ref()
    } else {
        Some(&rcpt.reply)
    };
    match deciding {
        Some(reply) => result_of(&previous.address, reply),
        // Accepted at RCPT but no DATA happened: nothing was delivered.
        None => previous.clone(),
    }
}

fn result_of(address: &str, reply: &Reply) -> RecipientResult {
    let status = match reply.kind() {
        ReplyKind::Positive => RecipientStatus::Accepted,
        ReplyKind::Transient => RecipientStatus::Deferred,
        ReplyKind::Intermediate | ReplyKind::Permanent => RecipientStatus::Rejected,
    };
    RecipientResult {
        address: address.to_owned(),
        status,
        code: Some(reply.code()),
        reply: Some(reply.to_string()),
    }
}

/// `451 4.3.0 Try later (a@x, b@y); 550 5.1.1 No such user (c@z)`: one clause per distinct reply.
fn summary(results: &[&RecipientResult]) -> String {
    let mut clauses: Vec<(String, Vec<&str>)> = Vec::new();
    for result in results {
        let reply = result
            .reply
            .clone()
            .unwrap_or_else(|| "not tried yet".to_owned());
        match clauses.iter_mut().find(|(known, _)| *known == reply) {
            Some((_, addresses)) => addresses.push(&result.address),
            None => clauses.push((reply, vec![&result.address])),
        }
    }
    clauses
        .iter()
        .map(|(reply, addresses)| format!("{reply} ({})", addresses.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
