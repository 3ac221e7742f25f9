//! The daily keep-alive against the shared test provider: a grant whose tokens are older than 24
//! hours is refreshed even though its access token is still valid; what fails on the way leaves a
//! `last_error` with the catalogue's cause and fix, and an audit entry.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use postern_store::{AccountState, AppStatus, AuditAction, AuditOutcome, Transition};

use super::{World, provider, unique};

const TWO_DAYS: Duration = Duration::from_secs(48 * 3600);

#[tokio::test]
async fn a_grant_not_refreshed_for_24_hours_is_refreshed_while_its_token_is_still_valid() {
    let world = World::new().await;
    let (app, client_id) = world.live_app().await;
    let email = format!("{}@example.test", unique("keepalive"));
    let account = world.account(&app.id, &email).await;
    world.minted(&client_id, &account, &email, TWO_DAYS).await;
    let off_email = format!("{}@example.test", unique("disabled"));
    let disabled = world.account(&app.id, &off_email).await;
    world
        .minted(&client_id, &disabled, &off_email, TWO_DAYS)
        .await;
    let off = Transition {
        to: AccountState::Disabled,
        last_error: None,
        event: None,
    };
    world
        .store
        .accounts()
        .transition(&disabled, off)
        .await
        .unwrap();

    assert_eq!(world.tokens.keep_alive(Utc::now()).await.unwrap(), 0);
    assert_eq!(provider().counters_for(&client_id).token_refresh, 0);
    // The access token lives two days, so the expiry sweep has nothing to do either.
    assert_eq!(world.tokens.sweep().await.unwrap(), 0);

    let tomorrow = Utc::now() + TimeDelta::hours(25);
    assert_eq!(world.tokens.keep_alive(tomorrow).await.unwrap(), 1);
    assert_eq!(provider().counters_for(&client_id).token_refresh, 1);
    let grant = world.store.grants().get(&account).await.unwrap().unwrap();
    assert!(grant.last_refreshed_at.is_some());
    let untouched = world.store.grants().get(&disabled).await.unwrap().unwrap();
    assert_eq!(untouched.last_refreshed_at, None);

    // Refreshed just now: an hour later it is not idle.
    let soon = Utc::now() + TimeDelta::hours(1);
    assert_eq!(world.tokens.keep_alive(soon).await.unwrap(), 0);
    assert_eq!(provider().counters_for(&client_id).token_refresh, 1);

    let audit = world.audit().await;
    let refreshes: Vec<_> = audit
        .iter()
        .filter(|entry| entry.action == AuditAction::RefreshOk)
        .collect();
    assert_eq!(refreshes.len(), 1, "{audit:?}");
    assert_eq!(refreshes[0].actor, "system");
    assert_eq!(refreshes[0].account_id.as_ref(), Some(&account));
    assert_eq!(refreshes[0].app_id.as_ref(), Some(&app.id));
}

#[tokio::test]
async fn a_dead_grant_says_the_catalogues_cause_and_fix_and_is_audited() {
    let world = World::new().await;
    let (app, client_id) = world.live_app().await;
    let email = format!("{}@example.test", unique("revoked"));
    let account = world.account(&app.id, &email).await;
    world.minted(&client_id, &account, &email, TWO_DAYS).await;
    assert_eq!(provider().revoke_grants_of(&email), 1);

    let tomorrow = Utc::now() + TimeDelta::hours(25);
    assert_eq!(world.tokens.keep_alive(tomorrow).await.unwrap(), 0);

    let stored = world.store.accounts().get(&account).await.unwrap().unwrap();
    assert_eq!(stored.state, AccountState::NeedsReauth);
    let last_error = stored.last_error.unwrap();
    let entry = postern_catalogue::by_id("google.invalid_grant").unwrap();
    assert!(last_error.contains("invalid_grant"), "{last_error}");
    assert!(last_error.contains(entry.cause), "{last_error}");
    assert!(
        last_error.contains(&format!("Fix: {}", entry.fix)),
        "{last_error}"
    );
    assert!(
        last_error.ends_with("[google.invalid_grant]"),
        "{last_error}"
    );

    let audit = world.audit().await;
    let failed = audit
        .iter()
        .find(|entry| entry.action == AuditAction::RefreshFailed)
        .unwrap_or_else(|| panic!("no refresh.failed in {audit:?}"));
    assert_eq!(failed.outcome, AuditOutcome::Failed);
    assert_eq!(failed.account_id.as_ref(), Some(&account));
    assert!(failed.detail.contains("invalid_grant"), "{}", failed.detail);
    // The re-authorization link made for the event is audited as the system's.
    assert!(
        audit
            .iter()
            .any(|entry| entry.action == AuditAction::AuthorizeStarted
                && entry.actor == "system"
                && entry.outcome == AuditOutcome::Ok)
    );
}

#[tokio::test]
async fn a_refused_app_says_the_catalogues_cause_and_fix() {
    let world = World::new().await;
    let (registered, client_id) = world.live_app().await;
    // The same client id with the wrong secret: the provider refuses the app itself.
    let app = world.app("generic", &client_id, "not-the-secret").await;
    let email = format!("{}@example.test", unique("wrongsecret"));
    let account = world.account(&app.id, &email).await;
    world.minted(&client_id, &account, &email, TWO_DAYS).await;

    let tomorrow = Utc::now() + TimeDelta::hours(25);
    assert_eq!(world.tokens.keep_alive(tomorrow).await.unwrap(), 0);

    let stored = world
        .store
        .oauth_apps()
        .get(&app.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AppStatus::Failed);
    let reason = stored.last_error.unwrap();
    assert!(reason.ends_with("[oauth.invalid_client]"), "{reason}");
    let account = world.store.accounts().get(&account).await.unwrap().unwrap();
    assert_eq!(account.state, AccountState::Error);
    assert_eq!(account.last_error.as_deref(), Some(reason.as_str()));
    let untouched = world.store.oauth_apps().get(&registered.id).await.unwrap();
    assert_eq!(untouched.unwrap().status, AppStatus::Active);
}
