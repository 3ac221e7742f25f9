//! Expiry forecasting and the daily keep-alive: say ahead of time when a grant or a client secret
//! is going to die, and keep refresh tokens from dying of disuse.
//!
//! - **Google "Testing" apps**: refresh tokens die 7 days after consent, whatever Postern does; an
//!   app's publishing status is an app setting (`oauth_apps.publishing_status`, default
//!   `production`, set through `postern_store::Expiry::set_publishing_status`). A grant of a
//!   `testing` app is forecast to die at `consented_at + 7 days`.
//! - **Microsoft**: refresh tokens die after 90 days unused. [`TokenManager::keep_alive`] refreshes
//!   every user grant whose tokens are older than 24 hours (the background refresher runs it), so
//!   this only happens when refreshing has failed for months, or an account is disabled; the
//!   forecast is `obtained_at + 90 days` (the last successful use of the refresh token).
//! - **Client secrets**: `oauth_apps.secret_expires_at`, when the operator gave it.
//!
//! [`TokenManager::forecast`] appends an `account.expiring` event (with the days left and the
//! reason) from [`ForecastPolicy::account_warning`] before a grant's expiry (default 3 days), and an
//! `app.secret_expiring` event from [`ForecastPolicy::secret_warning`] before a secret's (default
//! 14 days), each exactly once per subject and expiry (the store records what it announced).
//!
//! Non-goals: Google's other causes of death (six months unused, a password change, the per-user
//! token cap) cannot be forecast, or are prevented by the hourly refresh; the doctor and the
//! catalogue explain them when they happen. Nothing here changes an account's state.
//!
//! Key decision: every function takes `now` from its caller instead of reading the clock, so the
//! rules are tested with a fake clock and no sleeping; only [`TokenManager::run_refresher`] passes
//! the real time.

use super::{TokenError, TokenManager};
use chrono::{DateTime, TimeDelta, Utc};
use postern_store::{
    AccountId, ExpiryNotice, GrantLifetime, NewEvent, NoticeSubject, OAuthApp, PublishingStatus,
};
use serde_json::json;
use std::time::Duration;

/// How far ahead expiries are announced, and how often the keep-alive and the forecast run.
#[derive(Clone, Debug)]
pub struct ForecastPolicy {
    /// Announce a grant's expiry this long before it (`account.expiring`).
    pub account_warning: Duration,
    /// Announce a client secret's expiry this long before it (`app.secret_expiring`).
    pub secret_warning: Duration,
    /// Refresh any user grant whose tokens are older than this, even when its access token is still
    /// valid, so refresh tokens that die unused (Microsoft: 90 days) never go unused for long.
    pub keep_alive_after: Duration,
    /// How often the background refresher runs the keep-alive and the forecast.
    pub interval: Duration,
}

impl Default for ForecastPolicy {
    fn default() -> Self {
        Self {
            account_warning: Duration::from_secs(3 * 24 * 3600),
            secret_warning: Duration::from_secs(14 * 24 * 3600),
            keep_alive_after: Duration::from_secs(24 * 3600),
            interval: Duration::from_secs(3600),
        }
    }
}

/// Why something is going to expire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiryReason {
    /// A Google app in "Testing": refresh tokens die 7 days after consent.
    GoogleTesting7Days,
    /// Microsoft: a refresh token unused for 90 days dies (AADSTS700082).
    MicrosoftUnused90Days,
    /// The app's client secret reaches the expiry the operator recorded.
    ClientSecret,
}

impl ExpiryReason {
    /// The stable name, as in events and the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExpiryReason::GoogleTesting7Days => "google_testing_7_days",
            ExpiryReason::MicrosoftUnused90Days => "microsoft_unused_90_days",
            ExpiryReason::ClientSecret => "client_secret",
        }
    }

    /// What will happen and what prevents it, in plain words.
    pub const fn explanation(self) -> &'static str {
        match self {
            ExpiryReason::GoogleTesting7Days => {
                "The app's Google consent screen is in \"Testing\", so Google ends this grant 7 days \
                 after the user consented. Publish the app (Google Cloud console > OAuth consent \
                 screen > Publish app), set its publishing status to production in Postern, and have \
                 the user authorize again; until then they must re-authorize every 7 days."
            }
            ExpiryReason::MicrosoftUnused90Days => {
                "Microsoft ends refresh tokens unused for 90 days. Postern refreshes every grant at \
                 least daily; this one has not been refreshed successfully for a long time (the \
                 account is disabled or refreshing keeps failing: see its last_error)."
            }
            ExpiryReason::ClientSecret => {
                "The app's client secret expires. Create a new secret at the provider (Entra admin \
                 center > App registrations > Certificates & secrets), register the app again in \
                 Postern with it, and move the accounts; until then every account of the app fails."
            }
        }
    }
}

const GOOGLE_TESTING_LIFETIME: TimeDelta = TimeDelta::days(7);
const MICROSOFT_IDLE_LIFETIME: TimeDelta = TimeDelta::days(90);

/// When a user grant is expected to die, and by which rule; `None` when no rule applies.
pub fn grant_expiry(grant: &GrantLifetime) -> Option<(ExpiryReason, DateTime<Utc>)> {
    match grant.provider.as_str() {
        "google" if grant.publishing_status == PublishingStatus::Testing => {
            grant.consented_at.map(|at| {
                (
                    ExpiryReason::GoogleTesting7Days,
                    at + GOOGLE_TESTING_LIFETIME,
                )
            })
        }
        "microsoft" => Some((
            ExpiryReason::MicrosoftUnused90Days,
            grant.obtained_at + MICROSOFT_IDLE_LIFETIME,
        )),
        _ => None,
    }
}

/// Whole days from `now` to `expires_at`, rounded down: 0 means "within a day".
pub fn days_left(now: DateTime<Utc>, expires_at: DateTime<Utc>) -> i64 {
    (expires_at - now).num_days().max(0)
}

/// Whether an expiry at `expires_at` is inside the warning window at `now` (and not past).
pub fn within_warning(now: DateTime<Utc>, expires_at: DateTime<Utc>, warning: Duration) -> bool {
    let warning = TimeDelta::from_std(warning).unwrap_or(TimeDelta::MAX);
    now < expires_at && expires_at - now <= warning
}

/// What one forecast run announced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForecastReport {
    /// Accounts announced `account.expiring` in this run.
    pub accounts: Vec<AccountId>,
    /// Apps announced `app.secret_expiring` in this run.
    pub apps: Vec<postern_store::AppId>,
}

impl TokenManager {
    /// Announces, once each, the grants and client secrets that expire within their warning
    /// window at `now`.
    pub async fn forecast(&self, now: DateTime<Utc>) -> Result<ForecastReport, TokenError> {
        let mut report = ForecastReport::default();
        let warning = self.inner.policy.forecast.account_warning;
        for grant in self.inner.ctx.store.expiry().user_grants().await? {
            let Some((reason, expires_at)) = grant_expiry(&grant) else {
                continue;
            };
            if within_warning(now, expires_at, warning)
                && self
                    .announce_account(&grant, reason, expires_at, now)
                    .await?
            {
                report.accounts.push(grant.account_id);
            }
        }
        let warning = self.inner.policy.forecast.secret_warning;
        for app in self.inner.ctx.store.oauth_apps().list().await? {
            let Some(expires_at) = app.secret_expires_at else {
                continue;
            };
            if within_warning(now, expires_at, warning)
                && self.announce_secret(&app, expires_at, now).await?
            {
                report.apps.push(app.id);
            }
        }
        Ok(report)
    }

    async fn announce_account(
        &self,
        grant: &GrantLifetime,
        reason: ExpiryReason,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, TokenError> {
        let notice = ExpiryNotice {
            subject: NoticeSubject::Account(grant.account_id.clone()),
            reason: reason.as_str().to_owned(),
            expires_at,
        };
        let days_left = days_left(now, expires_at);
        let event = NewEvent {
            account_id: Some(grant.account_id.to_string()),
            kind: "account.expiring".to_owned(),
            payload: json!({
                "account_id": grant.account_id.as_str(),
                "app_id": grant.app_id.as_str(),
                "reason": reason.as_str(),
                "expires_at": expires_at,
                "days_left": days_left,
                "explanation": reason.explanation(),
                "reauthorize_endpoint": format!("/v1/accounts/{}/reauthorize", grant.account_id),
            }),
        };
        let announced = self
            .inner
            .ctx
            .store
            .expiry()
            .announce_once(&notice, event)
            .await?;
        if announced {
            tracing::warn!(account = %grant.account_id, reason = reason.as_str(), days_left, "grant expires soon");
        }
        Ok(announced)
    }

    async fn announce_secret(
        &self,
        app: &OAuthApp,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, TokenError> {
        let reason = ExpiryReason::ClientSecret;
        let notice = ExpiryNotice {
            subject: NoticeSubject::App(app.id.clone()),
            reason: reason.as_str().to_owned(),
            expires_at,
        };
        let days_left = days_left(now, expires_at);
        let event = NewEvent {
            account_id: None,
            kind: "app.secret_expiring".to_owned(),
            payload: json!({
                "app_id": app.id.as_str(),
                "app_name": app.name,
                "provider": app.provider,
                "reason": reason.as_str(),
                "expires_at": expires_at,
                "days_left": days_left,
                "explanation": reason.explanation(),
            }),
        };
        let announced = self
            .inner
            .ctx
            .store
            .expiry()
            .announce_once(&notice, event)
            .await?;
        if announced {
            tracing::warn!(app = %app.id, days_left, "client secret expires soon");
        }
        Ok(announced)
    }

    /// Refreshes every user grant whose tokens were obtained more than
    /// [`ForecastPolicy::keep_alive_after`] before `now`, whether or not its access token is still
    /// valid; returns how many were refreshed. A grant that fails is left to the usual outcomes
    /// (back-off, `needs_reauth`, app failed) and does not stop the others.
    pub async fn keep_alive(&self, now: DateTime<Utc>) -> Result<usize, TokenError> {
        let after = self.inner.policy.forecast.keep_alive_after;
        let threshold = now - TimeDelta::from_std(after).unwrap_or(TimeDelta::MAX);
        let idle = self.inner.ctx.store.expiry().idle_grants(threshold).await?;
        let mut refreshed = 0;
        for account_id in idle {
            match self.refresh_idle(&account_id, threshold, now).await {
                Ok(true) => refreshed += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::debug!(account = %account_id, %error, "keep-alive refresh failed")
                }
            }
        }
        Ok(refreshed)
    }

    /// Refreshes one idle grant under the account's single-flight lock, unless someone refreshed it
    /// meanwhile or it is backing off after a failure.
    async fn refresh_idle(
        &self,
        account_id: &AccountId,
        threshold: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, TokenError> {
        let lock = self.lock_for(account_id);
        let _single_flight = lock.lock().await;
        let account = self.usable_account(account_id).await?;
        let Some(grant) = self.inner.ctx.store.grants().get(account_id).await? else {
            return Ok(false);
        };
        let backing_off = grant.next_attempt_at.is_some_and(|at| at > now);
        if grant.obtained_at >= threshold || backing_off {
            return Ok(false);
        }
        tracing::debug!(account = %account_id, "keep-alive refresh of an idle grant");
        self.refresh(&account).await?;
        // A transient failure still answers with the valid old token: count only real renewals.
        let renewed = self.inner.ctx.store.grants().get(account_id).await?;
        Ok(renewed.is_some_and(|renewed| renewed.obtained_at > grant.obtained_at))
    }
}
