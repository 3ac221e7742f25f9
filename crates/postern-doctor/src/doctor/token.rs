//! The token step: is there a token, when does it expire, and does refreshing work right now?
//!
//! Non-goal: the token manager's policy (back-off, marking the account). The doctor calls the token
//! endpoint once, whatever the back-off says, because "does it work now" is the question; it stores a
//! successful answer like the token manager does (a rotated refresh token must not be lost) and leaves
//! the account's state alone on failure.
//!
//! Key decision: the endpoint's refusal is shown decoded (HTTP status, `error`, description, `AADSTS`
//! codes) and explained by the catalogue; a transient failure while the current token still works is a
//! warning, not a failure.

use std::time::Instant;

use chrono::{DateTime, Utc};
use postern_auth::OAuthError;
use postern_auth::context::{AuthContext, app_only_scopes};
use postern_auth::oauth::{OAuthClient, TokenGrant};
use postern_store::{Account, AccountAuth, AccountState, AppStatus, Grant, OAuthApp};
use secrecy::SecretString;

use super::{DoctorOptions, Steps};
use crate::catalogue::{self, Condition, Observation};
use crate::report::{Status, Step, StepName};

/// What the token step leaves for the logins.
#[derive(Clone, Default)]
pub(super) struct TokenState {
    /// The token to log in with: the fresh one, or the stored one when refreshing failed.
    pub token: Option<SecretString>,
    /// Whether `token` was obtained from the provider during this diagnosis.
    pub just_refreshed: bool,
}

/// The stored tokens of an account, decrypted.
struct Stored {
    grant: Option<Grant>,
    access: Option<SecretString>,
    refresh: Option<SecretString>,
}

/// How the step will ask the provider for a token.
enum Call {
    Refresh(SecretString),
    ClientCredentials,
}

/// Why no call can be made.
enum Missing {
    NeverAuthorized,
    NoRefreshToken,
}

pub(super) async fn check(
    steps: &mut Steps,
    account: &Account,
    ctx: &AuthContext,
    options: &DoctorOptions,
) -> TokenState {
    let (step, state) = diagnose(account, ctx, options, Instant::now()).await;
    steps.push(step);
    state
}

async fn diagnose(
    account: &Account,
    ctx: &AuthContext,
    options: &DoctorOptions,
    started: Instant,
) -> (Step, TokenState) {
    let fail = |summary: &str| Step::new(StepName::Token, Status::Fail, started.elapsed(), summary);
    let app_only = match &account.auth {
        AccountAuth::Password { .. } => {
            let skipped = Step::skipped(StepName::Token, "password account: no OAuth token");
            return (skipped, TokenState::default());
        }
        AccountAuth::OAuth2App { .. } => true,
        AccountAuth::OAuth2 { .. } => false,
    };
    let stored = match load(account, ctx).await {
        Ok(stored) => stored,
        Err(reason) => return (fail(&reason), TokenState::default()),
    };
    let mut evidence = describe(account, &stored);
    let current = TokenState {
        token: stored.access.clone(),
        just_refreshed: false,
    };
    let call = match plan(app_only, &stored) {
        Ok(call) => call,
        Err(missing) => return (missing_step(missing, account, evidence, started), current),
    };
    let (app, client) = match client(account, ctx, &mut evidence).await {
        Ok(found) => found,
        Err(reason) => return (fail(&reason).with_evidence_lines(evidence), current),
    };
    let answer = tokio::time::timeout(options.token_timeout, async {
        match &call {
            Call::Refresh(refresh) => client.refresh(refresh).await,
            Call::ClientCredentials => client.client_credentials(&app_only_scopes(&app)).await,
        }
    })
    .await;
    let usable = still_valid(stored.grant.as_ref());
    match answer {
        Ok(Ok(grant)) => refreshed(account, ctx, &grant, evidence, started).await,
        Ok(Err(error)) => (refresh_failed(&error, usable, evidence, started), current),
        Err(_elapsed) => {
            let step = timed_out(options, usable, started).with_evidence_lines(evidence);
            (step, current)
        }
    }
}

/// App-only accounts ask for a new token with the app's credentials; user grants need a refresh token.
fn plan(app_only: bool, stored: &Stored) -> Result<Call, Missing> {
    match (app_only, &stored.access, &stored.refresh) {
        (true, _, _) => Ok(Call::ClientCredentials),
        (false, _, Some(refresh)) => Ok(Call::Refresh(refresh.clone())),
        (false, None, None) => Err(Missing::NeverAuthorized),
        (false, Some(_), None) => Err(Missing::NoRefreshToken),
    }
}

fn missing_step(
    missing: Missing,
    account: &Account,
    evidence: Vec<String>,
    started: Instant,
) -> Step {
    let fail = |summary: &str| Step::new(StepName::Token, Status::Fail, started.elapsed(), summary);
    match missing {
        Missing::NeverAuthorized => fail("the account has no token: it was never authorized")
            .with_evidence_lines(evidence)
            .with_fix(format!(
                "Complete the authorization (POST /v1/accounts/{}/reauthorize gives a new link).",
                account.id
            )),
        Missing::NoRefreshToken => fail("no refresh token: the access token cannot be renewed")
            .with_evidence_lines(evidence)
            .explained_by(catalogue::explain(&Observation::Condition(
                Condition::NoRefreshToken,
            ))),
    }
}

fn timed_out(options: &DoctorOptions, current_still_valid: bool, started: Instant) -> Step {
    let status = if current_still_valid {
        Status::Warn
    } else {
        Status::Fail
    };
    let summary = format!(
        "the token endpoint did not answer within {:?}",
        options.token_timeout
    );
    Step::new(StepName::Token, status, started.elapsed(), summary).explained_by(catalogue::explain(
        &Observation::Condition(Condition::TokenEndpointUnreachable),
    ))
}

async fn load(account: &Account, ctx: &AuthContext) -> Result<Stored, String> {
    let grants = ctx.store.grants();
    let store_error = |error: postern_store::StoreError| format!("cannot read the store: {error}");
    let grant = grants.get(&account.id).await.map_err(store_error)?;
    let Some((access, refresh)) = grants.load_tokens(&account.id).await.map_err(store_error)?
    else {
        return Ok(Stored {
            grant,
            access: None,
            refresh: None,
        });
    };
    let open = |reference: postern_store::SecretRef, sealed: &postern_vault::Sealed| {
        ctx.vault
            .open_str(&reference.context(), sealed)
            .map_err(|error| format!("cannot decrypt the stored token: {error}"))
    };
    let access = open(account.id.access_token_ref(), &access)?;
    let refresh = refresh
        .map(|sealed| open(account.id.refresh_token_ref(), &sealed))
        .transpose()?;
    Ok(Stored {
        grant,
        access: Some(access),
        refresh,
    })
}

/// Facts about the stored grant, for the evidence.
fn describe(account: &Account, stored: &Stored) -> Vec<String> {
    let now = Utc::now();
    let mut lines = Vec::new();
    match (
        &stored.access,
        stored.grant.as_ref().and_then(|g| g.access_expires_at),
    ) {
        (None, _) => lines.push("access token: none stored".to_owned()),
        (Some(_), Some(expiry)) => {
            lines.push(format!("access token: {}", expiry_words(expiry, now)))
        }
        (Some(_), None) => lines.push("access token: stored, expiry unknown".to_owned()),
    }
    lines.push(format!(
        "refresh token: {}",
        if stored.refresh.is_some() {
            "stored"
        } else {
            "none"
        }
    ));
    if let Some(grant) = &stored.grant {
        if let Some(scope) = &grant.scope {
            lines.push(format!("granted scope: {scope}"));
        }
        if let Some(consented) = grant.consented_at {
            lines.push(format!(
                "consented {} days ago ({})",
                (now - consented).num_days(),
                consented.format("%Y-%m-%d")
            ));
        }
        if let Some(refreshed) = grant.last_refreshed_at {
            lines.push(format!(
                "last refreshed {}",
                refreshed.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        if grant.refresh_failures > 0 {
            lines.push(format!(
                "refresh failures in a row: {}",
                grant.refresh_failures
            ));
        }
    }
    if matches!(
        account.state,
        AccountState::NeedsReauth | AccountState::Error
    ) {
        lines.push(format!(
            "account state: {}{}",
            account.state.as_str(),
            account
                .last_error
                .as_deref()
                .map(|error| format!(" ({error})"))
                .unwrap_or_default()
        ));
    }
    lines
}

fn expiry_words(expiry: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (expiry - now).num_minutes();
    if minutes >= 0 {
        format!(
            "expires in {minutes} min ({})",
            expiry.format("%Y-%m-%d %H:%M UTC")
        )
    } else {
        format!("expired {} min ago", -minutes)
    }
}

fn still_valid(grant: Option<&Grant>) -> bool {
    grant
        .and_then(|grant| grant.access_expires_at)
        .is_some_and(|expiry| expiry > Utc::now())
}

/// The OAuth app the account was connected through, or why it cannot be had, in words.
pub(super) async fn account_app(account: &Account, ctx: &AuthContext) -> Result<OAuthApp, String> {
    let app_id = account
        .auth
        .app_id()
        .ok_or_else(|| "the account has no OAuth app".to_owned())?;
    ctx.store
        .oauth_apps()
        .get(app_id)
        .await
        .map_err(|error| format!("cannot read the OAuth app: {error}"))?
        .ok_or_else(|| format!("the account's OAuth app {app_id} no longer exists"))
}

async fn client(
    account: &Account,
    ctx: &AuthContext,
    evidence: &mut Vec<String>,
) -> Result<(OAuthApp, OAuthClient), String> {
    let app = account_app(account, ctx).await?;
    evidence.push(format!(
        "OAuth app: {} ({}), token URL {}",
        app.name, app.provider, app.token_url
    ));
    if app.status == AppStatus::Failed {
        evidence.push(format!(
            "the app is flagged as failing: {}",
            app.last_error.as_deref().unwrap_or("no reason recorded")
        ));
    }
    let client = ctx
        .client_for(&app)
        .await
        .map_err(|error| format!("the OAuth app cannot be used: {error}"))?;
    Ok((app, client))
}

async fn refreshed(
    account: &Account,
    ctx: &AuthContext,
    grant: &TokenGrant,
    mut evidence: Vec<String>,
    started: Instant,
) -> (Step, TokenState) {
    let lifetime = grant.expires_in.map_or_else(
        || "of unknown lifetime".to_owned(),
        |ttl| format!("valid for {} min", ttl.as_secs() / 60),
    );
    let mut status = Status::Pass;
    if grant.refresh_token.is_some() {
        evidence.push("the provider sent a new refresh token (rotation)".to_owned());
    }
    // The token manager would store this answer; so must the doctor, or a rotated refresh token is lost.
    if let Err(error) = ctx.save_grant(&account.id, grant, false).await {
        status = Status::Warn;
        evidence.push(format!("the new tokens could not be stored: {error}"));
    }
    let step = Step::new(
        StepName::Token,
        status,
        started.elapsed(),
        format!("refreshing works: new access token {lifetime}"),
    )
    .with_evidence_lines(evidence);
    let state = TokenState {
        token: Some(grant.access_token.clone()),
        just_refreshed: true,
    };
    (step, state)
}

fn refresh_failed(
    error: &OAuthError,
    current_still_valid: bool,
    mut evidence: Vec<String>,
    started: Instant,
) -> Step {
    evidence.push(error.to_string());
    if let Some(rejection) = error.rejection() {
        let codes = rejection.aadsts_codes();
        if !codes.is_empty() {
            let codes: Vec<String> = codes.iter().map(|code| format!("AADSTS{code}")).collect();
            evidence.push(format!("Microsoft codes: {}", codes.join(", ")));
        }
    }
    let (status, summary) = if error.is_transient() && current_still_valid {
        (
            Status::Warn,
            "refreshing fails for now; the current access token still works",
        )
    } else if error.is_grant_dead() {
        (
            Status::Fail,
            "refreshing fails: the provider no longer accepts the grant",
        )
    } else if error.is_app_level() {
        (
            Status::Fail,
            "refreshing fails: the provider refuses the OAuth app",
        )
    } else {
        (Status::Fail, "refreshing fails")
    };
    Step::new(StepName::Token, status, started.elapsed(), summary)
        .with_evidence_lines(evidence)
        .explained_by(catalogue::explain_oauth_error(error))
}
