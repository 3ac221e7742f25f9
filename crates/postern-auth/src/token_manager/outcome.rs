//! What the token manager does with the token endpoint's answer, and the background sweep.
//!
//! Each outcome changes account state through the store's `transition`, which appends the event in
//! the same transaction and only when the state really changes: that is what makes "says so once"
//! hold even when many callers hit the same dead grant.

use super::explain::annotated;
use super::{AccessToken, TokenError, TokenManager};
use crate::oauth::{OAuthError, TokenGrant};
use chrono::Utc;
use postern_store::{
    ACTOR_SYSTEM, Account, AccountState, AppStatus, AuditAction, AuditOutcome, Grant,
    NewAuditEntry, Transition,
};
use serde_json::json;
use tokio::sync::watch;

impl TokenManager {
    /// A refresh succeeded: store the tokens (rotated refresh token first, in the same commit) and,
    /// if refresh failures had put the account in `error`, report it recovered.
    pub(super) async fn refreshed(
        &self,
        account: &Account,
        new_grant: &TokenGrant,
        previous: Option<&Grant>,
    ) -> Result<AccessToken, TokenError> {
        let stored = self
            .inner
            .ctx
            .save_grant(&account.id, new_grant, false)
            .await?;
        let rotated = new_grant.refresh_token.is_some();
        tracing::info!(account = %account.id, rotated, "access token refreshed");
        let detail = if rotated {
            "access token refreshed; the provider rotated the refresh token"
        } else {
            "access token refreshed"
        };
        self.audit_refresh(account, AuditOutcome::Ok, detail).await;
        metrics::counter!(super::REFRESHES_METRIC, "outcome" => "ok").increment(1);
        let had_failures = previous.is_some_and(|grant| grant.refresh_failures > 0);
        if had_failures && account.state == AccountState::Error {
            self.transition(
                account,
                AccountState::Connected,
                None,
                "account.recovered",
                json!({}),
            )
            .await?;
        }
        Ok(AccessToken::new(
            new_grant.access_token.clone(),
            stored.access_expires_at,
        ))
    }

    /// A refresh failed: classify and act.
    pub(super) async fn refresh_failed(
        &self,
        account: &Account,
        error: OAuthError,
    ) -> Result<AccessToken, TokenError> {
        let detail = format!("refresh refused or failed: {error}");
        self.audit_refresh(account, AuditOutcome::Failed, &detail)
            .await;
        let outcome = if error.is_grant_dead() {
            "grant_dead"
        } else if error.is_app_level() {
            "app_error"
        } else {
            "transient"
        };
        metrics::counter!(super::REFRESHES_METRIC, "outcome" => outcome).increment(1);
        if error.is_grant_dead() {
            return Err(self.grant_dead(account, &error).await?);
        }
        if error.is_app_level() {
            return Err(self.app_failed(account, &error).await?);
        }
        self.transient_failure(account, &error).await
    }

    /// `invalid_grant`: mark `needs_reauth` once, with a fresh authorization link in the event.
    async fn grant_dead(
        &self,
        account: &Account,
        error: &OAuthError,
    ) -> Result<TokenError, TokenError> {
        let reason = match super::explain_oauth_error(error) {
            Some(entry) => entry.annotate(&format!(
                "the provider no longer accepts this account's grant ({error}); the user must \
                 authorize Postern again"
            )),
            None => format!(
                "the provider no longer accepts this account's grant ({error}); the user must \
                 authorize Postern again. Common causes: the user revoked access or changed their \
                 password; the grant went unused for months; a Google app in \"Testing\" gets \
                 refresh tokens that die after 7 days"
            ),
        };
        tracing::warn!(account = %account.id, "grant is dead; account needs re-authorization");
        let link = match self.inner.flows.start(account).await {
            Ok(link) => Some(link.url.to_string()),
            Err(link_error) => {
                tracing::warn!(account = %account.id, error = %link_error, "could not make a re-authorization link");
                None
            }
        };
        let payload = json!({
            "reason": reason,
            "reauthorize_url": link,
            "reauthorize_endpoint": format!("/v1/accounts/{}/reauthorize", account.id),
        });
        self.transition(
            account,
            AccountState::NeedsReauth,
            Some(reason.clone()),
            "account.needs_reauth",
            payload,
        )
        .await?;
        Ok(TokenError::NeedsReauth { reason })
    }

    /// `invalid_client` and friends: flag the app, and report it once on each of its accounts.
    async fn app_failed(
        &self,
        account: &Account,
        error: &OAuthError,
    ) -> Result<TokenError, TokenError> {
        let reason = annotated(
            &format!(
                "the provider refuses the OAuth app itself ({error}); every account using it is \
                 affected. Check the client id and secret (secrets expire, e.g. Microsoft's after at \
                 most 24 months)"
            ),
            error,
        );
        let Some(app_id) = account.auth.app_id() else {
            return Ok(TokenError::AppFailed { reason });
        };
        let store = &self.inner.ctx.store;
        let flagged = store
            .oauth_apps()
            .set_status(app_id, AppStatus::Failed, Some(&reason))
            .await?;
        if flagged {
            tracing::error!(app = %app_id, "OAuth app is failing; its accounts are marked error");
            for affected in store.accounts().list_by_app(app_id).await? {
                let payload = json!({ "reason": reason, "app_id": app_id.to_string() });
                self.transition(
                    &affected,
                    AccountState::Error,
                    Some(reason.clone()),
                    "account.error",
                    payload,
                )
                .await?;
            }
        }
        Ok(TokenError::AppFailed { reason })
    }

    /// Network errors, 5xx and the like: back off; the account stays healthy until its token has
    /// been expired for longer than the grace.
    async fn transient_failure(
        &self,
        account: &Account,
        error: &OAuthError,
    ) -> Result<AccessToken, TokenError> {
        let store = &self.inner.ctx.store;
        let policy = &self.inner.policy;
        let previous_failures = store
            .grants()
            .get(&account.id)
            .await?
            .map_or(0, |g| g.refresh_failures);
        let wait = policy.backoff(previous_failures + 1);
        let retry_at = Utc::now() + chrono::TimeDelta::from_std(wait).unwrap_or_default();
        let failures = store.grants().record_failure(&account.id, retry_at).await?;
        tracing::warn!(account = %account.id, failures, retry_in = ?wait, error = %error, "token refresh failed; backing off");
        let reason = annotated(
            &format!("refreshing the access token failed ({error}); retrying"),
            error,
        );
        match self.still_valid_or(account, &reason, Some(retry_at)).await {
            Ok(token) => Ok(token),
            Err(unavailable) => {
                self.error_if_past_grace(account, &reason).await?;
                Err(unavailable)
            }
        }
    }

    async fn error_if_past_grace(&self, account: &Account, reason: &str) -> Result<(), TokenError> {
        let grant = self.inner.ctx.store.grants().get(&account.id).await?;
        let expired_since = grant.and_then(|g| g.access_expires_at);
        let grace = chrono::TimeDelta::from_std(self.inner.policy.grace).unwrap_or_default();
        if expired_since.is_some_and(|expiry| Utc::now() - expiry > grace) {
            let payload = json!({ "reason": reason });
            self.transition(
                account,
                AccountState::Error,
                Some(reason.to_owned()),
                "account.error",
                payload,
            )
            .await?;
        }
        Ok(())
    }

    async fn transition(
        &self,
        account: &Account,
        to: AccountState,
        last_error: Option<String>,
        kind: &str,
        payload: serde_json::Value,
    ) -> Result<bool, TokenError> {
        let transition = Transition::announced(&account.id, to, last_error, kind, payload);
        let outcome = self
            .inner
            .ctx
            .store
            .accounts()
            .transition(&account.id, transition)
            .await?;
        Ok(outcome.changed)
    }

    /// Writes a refresh to the audit log (never failing the refresh itself).
    async fn audit_refresh(&self, account: &Account, outcome: AuditOutcome, detail: &str) {
        let action = match outcome {
            AuditOutcome::Ok => AuditAction::RefreshOk,
            AuditOutcome::Failed => AuditAction::RefreshFailed,
        };
        let mut entry = NewAuditEntry::new(ACTOR_SYSTEM, action, outcome)
            .with_account(&account.id)
            .with_detail(detail);
        if let Some(app_id) = account.auth.app_id() {
            entry = entry.with_app(app_id);
        }
        self.inner.ctx.store.audit().record_or_warn(entry).await;
    }

    /// Refreshes tokens ahead of expiry until `shutdown` turns true; every
    /// [`super::ForecastPolicy::interval`] it also runs the keep-alive and the expiry forecast.
    pub async fn run_refresher(self, mut shutdown: watch::Receiver<bool>) {
        let policy = self.inner.policy.clone();
        let mut next_forecast = tokio::time::Instant::now();
        loop {
            if let Err(error) = self.sweep().await {
                tracing::warn!(%error, "token refresh sweep failed");
            }
            if tokio::time::Instant::now() >= next_forecast {
                self.keep_alive_and_forecast().await;
                next_forecast = tokio::time::Instant::now() + policy.forecast.interval;
            }
            tokio::select! {
                () = tokio::time::sleep(policy.sweep_interval) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    async fn keep_alive_and_forecast(&self) {
        if let Err(error) = self.keep_alive(Utc::now()).await {
            tracing::warn!(%error, "keep-alive refresh pass failed");
        }
        if let Err(error) = self.forecast(Utc::now()).await {
            tracing::warn!(%error, "expiry forecast failed");
        }
    }

    /// One pass: every token expiring within margin + jitter is refreshed.
    pub async fn sweep(&self) -> Result<usize, TokenError> {
        let policy = &self.inner.policy;
        let horizon = policy.margin + policy.jitter + policy.sweep_interval;
        let until = Utc::now() + chrono::TimeDelta::from_std(horizon).unwrap_or_default();
        let due = self.inner.ctx.store.grants().expiring_before(until).await?;
        let mut refreshed = 0;
        for account_id in due {
            let margin = policy.jittered_margin() + policy.sweep_interval;
            match self.refresh_if_expiring(&account_id, margin).await {
                Ok(_) => refreshed += 1,
                Err(error) => {
                    tracing::debug!(account = %account_id, %error, "sweep could not refresh")
                }
            }
        }
        Ok(refreshed)
    }
}
