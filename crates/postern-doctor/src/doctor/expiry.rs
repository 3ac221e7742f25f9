//! The expiry step (`token.expiry`): is the account's grant, or its app's client secret, going to
//! stop working soon?
//!
//! Purpose: turn the token manager's forecast into a doctor verdict. A grant of a Google app in
//! "Testing" dies 7 days after consent, a Microsoft grant after 90 days unused, a client secret at
//! the expiry the operator recorded; inside the warning horizon the step warns with the date and the
//! fix, further out it passes with the date, and it passes with "no known expiry" when no rule
//! applies.
//!
//! Non-goals: the rules themselves and announcing. When a grant dies is decided by
//! [`grant_expiry`], the function behind the `account.expiring` events, and the horizons are the
//! token manager's [`ForecastPolicy`]; the events stay the token manager's (sent once), the doctor
//! only reports. Nothing is written.
//!
//! Key decisions:
//! - The grant is read before the token step and again after it, because the doctor's own refresh
//!   restarts Microsoft's 90 days. A grant that was inside the horizon before that refresh is still
//!   a warning: Postern refreshes every grant daily, so one that came so close has a cause (a
//!   disabled account, failing refreshes, a stopped server) that will bring it back.
//! - Warn, never fail: the grant works today; whether it works now is the token step's verdict.
//! - The assessment is a pure function of the facts and `now`, tested on a fake clock; only
//!   [`check`] reads the store and the clock.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use postern_auth::context::AuthContext;
use postern_auth::token_manager::{
    ExpiryReason, ForecastPolicy, days_left, grant_expiry, within_warning,
};
use postern_store::{
    Account, AccountAuth, AccountId, AccountState, Grant, GrantLifetime, OAuthApp,
    PublishingStatus, StoreError,
};

use super::Steps;
use crate::report::{Status, Step, StepName};

/// The account's grant as it stood before the token step, or `None` (not a user grant, none stored,
/// or unreadable: the read after the token step reports a store that fails).
pub(super) async fn grant_before(account: &Account, ctx: &AuthContext) -> Option<Grant> {
    if !matches!(account.auth, AccountAuth::OAuth2 { .. }) {
        return None;
    }
    ctx.store.grants().get(&account.id).await.ok().flatten()
}

/// Adds the expiry step, forecasting from `before` and the grant as the token step left it.
pub(super) async fn check(
    steps: &mut Steps,
    account: &Account,
    ctx: &AuthContext,
    before: Option<Grant>,
    policy: &ForecastPolicy,
) {
    let started = Instant::now();
    let step = match &account.auth {
        AccountAuth::Password { .. } => Step::skipped(
            StepName::TokenExpiry,
            "password account: no OAuth grant or client secret to expire",
        ),
        _ => match gather(account, ctx, before).await {
            Ok(facts) => assess(&facts, policy, Utc::now(), started.elapsed()),
            Err(reason) => Step::skipped(StepName::TokenExpiry, format!("no forecast: {reason}")),
        },
    };
    steps.push(step);
}

/// What the forecast is made from.
pub(super) struct Facts {
    /// The account (for the links in a fix).
    pub account_id: AccountId,
    /// The account's OAuth app: its provider, name and client secret expiry.
    pub app: OAuthApp,
    /// The user grant, if the account has one.
    pub grant: GrantFacts,
}

/// The account's user grant, as far as the forecast cares.
#[expect(
    clippy::large_enum_variant,
    reason = "one value per diagnosis, never moved around in bulk"
)]
pub(super) enum GrantFacts {
    /// An app-only account: its tokens come from the app's own credentials.
    AppOnly,
    /// No grant stored: never authorized.
    None,
    /// The account needs re-authorization: the grant is already dead.
    Dead,
    /// A stored grant, before and after the token step.
    Stored {
        before: Option<GrantLifetime>,
        after: GrantLifetime,
    },
}

async fn gather(
    account: &Account,
    ctx: &AuthContext,
    before: Option<Grant>,
) -> Result<Facts, String> {
    let app = super::token::account_app(account, ctx).await?;
    let grant = match &account.auth {
        AccountAuth::OAuth2 { .. } => user_grant(account, ctx, &app, before)
            .await
            .map_err(|error| format!("cannot read the store: {error}"))?,
        _ => GrantFacts::AppOnly,
    };
    Ok(Facts {
        account_id: account.id.clone(),
        app,
        grant,
    })
}

async fn user_grant(
    account: &Account,
    ctx: &AuthContext,
    app: &OAuthApp,
    before: Option<Grant>,
) -> Result<GrantFacts, StoreError> {
    if account.state == AccountState::NeedsReauth {
        return Ok(GrantFacts::Dead);
    }
    let publishing = ctx
        .store
        .expiry()
        .publishing_status(&app.id)
        .await?
        .unwrap_or(PublishingStatus::Production);
    let Some(after) = ctx.store.grants().get(&account.id).await? else {
        return Ok(GrantFacts::None);
    };
    let lifetime = |grant: Grant| lifetime(account, app, publishing, grant);
    Ok(GrantFacts::Stored {
        before: before.map(lifetime),
        after: lifetime(after),
    })
}

/// The grant as the forecaster sees it (the same shape `Expiry::user_grants` gives the events).
fn lifetime(
    account: &Account,
    app: &OAuthApp,
    publishing_status: PublishingStatus,
    grant: Grant,
) -> GrantLifetime {
    GrantLifetime {
        account_id: account.id.clone(),
        app_id: app.id.clone(),
        provider: app.provider.clone(),
        publishing_status,
        state: account.state,
        consented_at: grant.consented_at,
        obtained_at: grant.obtained_at,
    }
}

/// What one forecast says.
enum Outlook {
    /// No expiry is known.
    Unknown,
    /// Beyond the horizon: a phrase for the passing summary.
    Later(String),
    /// Within the horizon, or past.
    Soon { summary: String, fix: String },
}

/// The step's verdict on `facts` at `now`.
pub(super) fn assess(
    facts: &Facts,
    policy: &ForecastPolicy,
    now: DateTime<Utc>,
    elapsed: Duration,
) -> Step {
    let (grant, mut evidence) = grant_outlook(facts, policy, now);
    let (secret, secret_evidence) = secret_outlook(&facts.app, policy, now);
    evidence.extend(secret_evidence);
    evidence.push(format!(
        "warning horizon: {} for grants, {} for client secrets",
        span_words(policy.account_warning),
        span_words(policy.secret_warning)
    ));
    verdict(&[grant, secret], evidence, elapsed)
}

/// Warn with every forecast that is due and its fix; otherwise pass, naming the dates further out.
fn verdict(outlooks: &[Outlook], evidence: Vec<String>, elapsed: Duration) -> Step {
    let (mut soon, mut fixes, mut later) = (Vec::new(), Vec::new(), Vec::new());
    for outlook in outlooks {
        match outlook {
            Outlook::Soon { summary, fix } => {
                soon.push(summary.as_str());
                fixes.push(fix.as_str());
            }
            Outlook::Later(phrase) => later.push(phrase.as_str()),
            Outlook::Unknown => {}
        }
    }
    let (status, summary) = match (soon.is_empty(), later.is_empty()) {
        (false, _) => (Status::Warn, soon.join("; ")),
        (true, true) => (Status::Pass, "no known expiry".to_owned()),
        (true, false) => (
            Status::Pass,
            format!("no expiry within the warning horizon: {}", later.join("; ")),
        ),
    };
    let step =
        Step::new(StepName::TokenExpiry, status, elapsed, summary).with_evidence_lines(evidence);
    if fixes.is_empty() {
        step
    } else {
        step.with_fix(fixes.join(" "))
    }
}

fn grant_outlook(
    facts: &Facts,
    policy: &ForecastPolicy,
    now: DateTime<Utc>,
) -> (Outlook, Vec<String>) {
    let unknown = |line: &str| (Outlook::Unknown, vec![format!("grant: {line}")]);
    let (before, after) = match &facts.grant {
        GrantFacts::AppOnly => {
            return unknown("none (app-only account: tokens come from the app's own credentials)");
        }
        GrantFacts::None => return unknown("none stored yet"),
        GrantFacts::Dead => return unknown("already refused (the account needs re-authorization)"),
        GrantFacts::Stored { before, after } => (before, after),
    };
    let Some((reason, expires_at)) = grant_expiry(after) else {
        return unknown(&format!(
            "no known expiry ({} app, publishing status {})",
            after.provider,
            after.publishing_status.as_str()
        ));
    };
    let evidence = vec![format!(
        "grant: {}: {}, {}",
        rule_label(reason),
        rule_words(reason, after),
        when_words(expires_at, now)
    )];
    let horizon = policy.account_warning;
    let outlook = if due(now, expires_at, horizon) {
        Outlook::Soon {
            summary: grant_soon(reason, after, expires_at, now),
            fix: grant_fix(reason, facts),
        }
    } else if let Some((before, was)) = renewed(before.as_ref(), expires_at, now, horizon) {
        Outlook::Soon {
            summary: grant_renewed(reason, before, was, expires_at, now),
            fix: grant_fix(reason, facts),
        }
    } else {
        Outlook::Later(format!(
            "the grant lasts until {} ({})",
            date_time(expires_at),
            rule_label(reason)
        ))
    };
    (outlook, evidence)
}

/// The grant as it was before the token step, and its expiry then, when that expiry was due and the
/// doctor's refresh has since pushed it out to `expires_at`.
fn renewed(
    before: Option<&GrantLifetime>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    horizon: Duration,
) -> Option<(&GrantLifetime, DateTime<Utc>)> {
    let before = before?;
    let (_, was) = grant_expiry(before)?;
    (was < expires_at && due(now, was, horizon)).then_some((before, was))
}

fn grant_renewed(
    reason: ExpiryReason,
    before: &GrantLifetime,
    was: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    format!(
        "{}: this grant was due to stop working {} ({}); the doctor's refresh renewed it until {}",
        rule_label(reason),
        in_days(was, now),
        rule_words(reason, before),
        date_time(expires_at)
    )
}

fn grant_soon(
    reason: ExpiryReason,
    grant: &GrantLifetime,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    let (label, rule) = (rule_label(reason), rule_words(reason, grant));
    if expires_at <= now {
        format!(
            "{label}: by the forecast this grant stopped working on {} ({rule})",
            date_time(expires_at)
        )
    } else {
        format!(
            "{label}: this grant stops working {} ({rule}, on {})",
            in_days(expires_at, now),
            date_time(expires_at)
        )
    }
}

fn grant_fix(reason: ExpiryReason, facts: &Facts) -> String {
    let reauthorize = format!(
        "POST /v1/accounts/{}/reauthorize gives a new link",
        facts.account_id
    );
    match reason {
        ExpiryReason::GoogleTesting7Days => format!(
            "Publish the app (Google Cloud console > OAuth consent screen > Publish app), set its \
             publishing status to production in Postern (PATCH /v1/oauth-apps/{} with \
             {{\"publishing_status\": \"production\"}}), and ask the user to authorize again \
             ({reauthorize}). Until then the user must authorize again every 7 days.",
            facts.app.id
        ),
        ExpiryReason::MicrosoftUnused90Days => format!(
            "Postern refreshes every grant at least daily, which restarts Microsoft's 90 days; this \
             one went unrefreshed because the account is disabled, its refreshes fail (see its \
             last_error), or the server that runs the daily refresh was stopped. Fix that cause; \
             once the grant has died, the user must authorize again ({reauthorize})."
        ),
        other => other.explanation().to_owned(),
    }
}

fn secret_outlook(
    app: &OAuthApp,
    policy: &ForecastPolicy,
    now: DateTime<Utc>,
) -> (Outlook, Vec<String>) {
    let Some(expires_at) = app.secret_expires_at else {
        let line = format!("client secret of app \"{}\": no expiry recorded", app.name);
        return (Outlook::Unknown, vec![line]);
    };
    let evidence = vec![format!(
        "client secret of app \"{}\": {}",
        app.name,
        when_words(expires_at, now)
    )];
    if !due(now, expires_at, policy.secret_warning) {
        let phrase = format!("the client secret lasts until {}", date_time(expires_at));
        return (Outlook::Later(phrase), evidence);
    }
    let summary = if expires_at <= now {
        format!(
            "the client secret of app \"{}\" expired on {}: every account of the app fails",
            app.name,
            date_time(expires_at)
        )
    } else {
        format!(
            "the client secret of app \"{}\" expires {} (on {}): every account of the app will \
             fail from then on",
            app.name,
            in_days(expires_at, now),
            date_time(expires_at)
        )
    };
    let fix = secret_fix(&app.provider);
    (Outlook::Soon { summary, fix }, evidence)
}

fn secret_fix(provider: &str) -> String {
    let create = match provider {
        "microsoft" => {
            "In the Entra admin center (App registrations > the app > Certificates & secrets) \
             create a new client secret"
        }
        "google" => {
            "In Google Cloud console (APIs & Services > Credentials > the OAuth client) add a new \
             client secret"
        }
        _ => "Create a new client secret at the provider",
    };
    format!(
        "{create}, register the app in Postern again with it and its expiry (POST /v1/oauth-apps, \
         secret_expires_at), and move the accounts to the new app before the old secret expires."
    )
}

/// Whether `expires_at` is within `horizon` of `now` (the events' own window), or past: a late
/// announcement is noise, but a doctor run after the date must still say so.
fn due(now: DateTime<Utc>, expires_at: DateTime<Utc>, horizon: Duration) -> bool {
    expires_at <= now || within_warning(now, expires_at, horizon)
}

/// The rule's name for people.
fn rule_label(reason: ExpiryReason) -> &'static str {
    match reason {
        ExpiryReason::GoogleTesting7Days => "Google Testing-mode app",
        ExpiryReason::MicrosoftUnused90Days => "Microsoft",
        ExpiryReason::ClientSecret => "client secret",
        _ => reason.as_str(),
    }
}

/// The rule applied to this grant: what its expiry is counted from.
fn rule_words(reason: ExpiryReason, grant: &GrantLifetime) -> String {
    match reason {
        ExpiryReason::GoogleTesting7Days => format!(
            "7 days after consent on {}",
            grant
                .consented_at
                .map_or_else(|| "an unknown date".to_owned(), date)
        ),
        ExpiryReason::MicrosoftUnused90Days => {
            format!("90 days unused since {}", date(grant.obtained_at))
        }
        other => other.as_str().to_owned(),
    }
}

/// `ends on <date> (<n> days left)` or `ended on <date>`.
fn when_words(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if expires_at <= now {
        format!("ended on {}", date_time(expires_at))
    } else {
        let left = match days_left(now, expires_at) {
            0 => "less than a day".to_owned(),
            count => days(count),
        };
        format!("ends on {} ({left} left)", date_time(expires_at))
    }
}

/// `within a day`, `in 1 day`, `in 5 days`, counted as the events count them.
fn in_days(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    match days_left(now, expires_at) {
        0 => "within a day".to_owned(),
        count => format!("in {}", days(count)),
    }
}

fn days(count: i64) -> String {
    if count == 1 {
        "1 day".to_owned()
    } else {
        format!("{count} days")
    }
}

fn span_words(span: Duration) -> String {
    const DAY: u64 = 24 * 3600;
    let secs = span.as_secs();
    if secs.is_multiple_of(DAY) {
        days(i64::try_from(secs / DAY).unwrap_or(i64::MAX))
    } else {
        format!("{} h", secs / 3600)
    }
}

fn date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

fn date_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
#[path = "expiry_tests.rs"]
mod tests;
