//! The expiry forecast, on a fake clock: Google "Testing" grants 7 days after consent, Microsoft
//! grants 90 days after their last use, client secrets at their recorded expiry; each announced once,
//! inside its warning window only.

use chrono::{Duration, Utc};
use postern_auth::token_manager::{ExpiryReason, days_left, grant_expiry};
use postern_store::{AccountState, PublishingStatus, Transition};

use super::World;

#[tokio::test]
async fn a_google_testing_grant_is_announced_once_three_days_before_its_seventh_day() {
    let world = World::new().await;
    let testing = world.app("google", "testing-client", "s").await;
    let production = world.app("google", "production-client", "s").await;
    world
        .store
        .expiry()
        .set_publishing_status(&testing.id, PublishingStatus::Testing)
        .await
        .unwrap();
    let doomed = world.account(&testing.id, "tester@gmail.com").await;
    let safe = world.account(&production.id, "user@gmail.com").await;
    let consented = world.consent(&doomed).await;
    world.consent(&safe).await;

    // Four days after consent the grant has three left: not yet (the window is "within 3 days").
    let early = world
        .tokens
        .forecast(consented + Duration::days(3))
        .await
        .unwrap();
    assert!(early.accounts.is_empty(), "{early:?}");

    let now = consented + Duration::days(4) + Duration::hours(1);
    let report = world.tokens.forecast(now).await.unwrap();
    assert_eq!(report.accounts, vec![doomed.clone()]);
    let again = world
        .tokens
        .forecast(now + Duration::hours(1))
        .await
        .unwrap();
    assert!(again.accounts.is_empty(), "announced twice: {again:?}");

    let events = world.events_of_kind("account.expiring").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.account_id.as_deref(), Some(doomed.as_str()));
    assert_eq!(event.payload["reason"], "google_testing_7_days");
    assert_eq!(event.payload["days_left"], 2);
    assert_eq!(event.payload["app_id"], testing.id.as_str());
    let expires_at =
        (consented + Duration::days(7)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(event.payload["expires_at"], expires_at);
    assert!(
        event.payload["explanation"]
            .as_str()
            .unwrap()
            .contains("Publish the app")
    );

    // Past the expiry nothing is announced any more: the refresh will say needs_reauth.
    let late = World::new().await;
    let app = late.app("google", "late-client", "s").await;
    late.store
        .expiry()
        .set_publishing_status(&app.id, PublishingStatus::Testing)
        .await
        .unwrap();
    let account = late.account(&app.id, "late@gmail.com").await;
    let consented = late.consent(&account).await;
    let report = late
        .tokens
        .forecast(consented + Duration::days(8))
        .await
        .unwrap();
    assert!(report.accounts.is_empty());
}

#[tokio::test]
async fn a_re_consent_is_a_new_expiry_and_is_announced_again() {
    let world = World::new().await;
    let app = world.app("google", "reconsent-client", "s").await;
    world
        .store
        .expiry()
        .set_publishing_status(&app.id, PublishingStatus::Testing)
        .await
        .unwrap();
    let account = world.account(&app.id, "again@gmail.com").await;
    let first = world.consent(&account).await;
    let report = world
        .tokens
        .forecast(first + Duration::days(5))
        .await
        .unwrap();
    assert_eq!(report.accounts.len(), 1);

    // The user authorizes again (a later consent): seven fresh days, announced in their turn.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = world.consent(&account).await;
    assert!(second > first);
    let report = world
        .tokens
        .forecast(second + Duration::days(5))
        .await
        .unwrap();
    assert_eq!(report.accounts, vec![account]);
    assert_eq!(world.events_of_kind("account.expiring").await.len(), 2);
}

#[tokio::test]
async fn a_microsoft_grant_unused_for_88_days_is_announced_and_a_dead_one_is_not() {
    let world = World::new().await;
    let app = world.app("microsoft", "ms-client", "s").await;
    let idle = world.account(&app.id, "idle@contoso.com").await;
    let dead = world.account(&app.id, "dead@contoso.com").await;
    world.consent(&idle).await;
    world.consent(&dead).await;
    let transition = Transition {
        to: AccountState::NeedsReauth,
        last_error: None,
        event: None,
    };
    world
        .store
        .accounts()
        .transition(&dead, transition)
        .await
        .unwrap();
    let obtained = world
        .store
        .grants()
        .get(&idle)
        .await
        .unwrap()
        .unwrap()
        .obtained_at;

    let fine = world
        .tokens
        .forecast(obtained + Duration::days(86))
        .await
        .unwrap();
    assert!(fine.accounts.is_empty(), "{fine:?}");
    let report = world
        .tokens
        .forecast(obtained + Duration::days(88))
        .await
        .unwrap();
    assert_eq!(report.accounts, vec![idle.clone()]);
    let events = world.events_of_kind("account.expiring").await;
    assert_eq!(events[0].payload["reason"], "microsoft_unused_90_days");
    assert_eq!(events[0].payload["days_left"], 2);
}

#[tokio::test]
async fn a_client_secret_is_announced_once_fourteen_days_ahead() {
    let world = World::new().await;
    // Whole milliseconds, as the store keeps them, so "10 days" stays 10 days after a round trip.
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let soon = world.app("microsoft", "soon-client", "s").await;
    let later = world.app("microsoft", "later-client", "s").await;
    // No update API for apps: give the secrets an expiry through a fresh registration each.
    let soon = with_secret_expiry(&world, soon, now + Duration::days(10)).await;
    with_secret_expiry(&world, later, now + Duration::days(20)).await;

    let report = world.tokens.forecast(now).await.unwrap();
    assert_eq!(report.apps, vec![soon.id.clone()]);
    assert!(world.tokens.forecast(now).await.unwrap().apps.is_empty());
    let events = world.events_of_kind("app.secret_expiring").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].account_id, None);
    assert_eq!(events[0].payload["app_id"], soon.id.as_str());
    assert_eq!(events[0].payload["days_left"], 10);
    assert_eq!(events[0].payload["reason"], "client_secret");
}

/// The app registered again under a new id with `expires_at` as its secret's expiry.
async fn with_secret_expiry(
    world: &World,
    app: postern_store::OAuthApp,
    expires_at: chrono::DateTime<Utc>,
) -> postern_store::OAuthApp {
    assert!(world.store.oauth_apps().delete(&app.id).await.unwrap());
    let id = postern_store::AppId::generate();
    let new = postern_store::NewOAuthApp {
        id,
        name: app.name,
        provider: app.provider,
        client_id: app.client_id,
        redirect_uri: app.redirect_uri,
        scopes: app.scopes,
        tenant: app.tenant,
        authorize_url: app.authorize_url,
        token_url: app.token_url,
        revoke_url: app.revoke_url,
        device_authorization_url: app.device_authorization_url,
        extra_params: app.extra_params,
        imap_host: app.imap_host,
        imap_port: app.imap_port,
        smtp_host: app.smtp_host,
        smtp_port: app.smtp_port,
        secret_expires_at: Some(expires_at),
    };
    world.store.oauth_apps().create(new, None).await.unwrap()
}

#[test]
fn the_rules_are_plain_functions_of_the_grant() {
    let now = Utc::now();
    let grant = |provider: &str, status| postern_store::GrantLifetime {
        account_id: postern_store::AccountId::generate(),
        app_id: postern_store::AppId::generate(),
        provider: provider.to_owned(),
        publishing_status: status,
        state: AccountState::Connected,
        consented_at: Some(now),
        obtained_at: now + Duration::days(1),
    };
    assert_eq!(
        grant_expiry(&grant("google", PublishingStatus::Testing)),
        Some((ExpiryReason::GoogleTesting7Days, now + Duration::days(7)))
    );
    assert_eq!(
        grant_expiry(&grant("google", PublishingStatus::Production)),
        None
    );
    assert_eq!(
        grant_expiry(&grant("microsoft", PublishingStatus::Production)),
        Some((
            ExpiryReason::MicrosoftUnused90Days,
            now + Duration::days(91)
        ))
    );
    assert_eq!(
        grant_expiry(&grant("yahoo", PublishingStatus::Testing)),
        None
    );
    assert_eq!(days_left(now, now + Duration::hours(47)), 1);
    assert_eq!(days_left(now, now - Duration::hours(1)), 0);
}
