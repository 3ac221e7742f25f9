//! The authorization-code flow from account creation to a verified IMAP login, and every way a
//! callback can be wrong.

use crate::support::{World, WorldOptions, follow, provider, unique};
use postern_accounts::ServiceError;
use postern_auth::flows::{Callback, FlowError};
use postern_store::{AccountState, SaslMechanism};
use postern_sync::account::open_session;
use postern_testkit::oauth_provider::{Decision, RefreshPolicy as ProviderRefresh};

#[tokio::test]
async fn full_flow_connects_and_dovecot_accepts_xoauth2_and_oauthbearer() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("flow"));
    let created = world.pending(&email, SaslMechanism::XOAuth2).await;
    assert_eq!(created.account.state, AccountState::PendingAuthorization);
    let link = created.authorization.clone().unwrap();
    let query: std::collections::HashMap<_, _> = link.url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["login_hint"], email);
    assert!(
        query["state"].len() >= 22,
        "state too short to be unguessable"
    );

    let callback = follow(link.url.as_str()).await;
    let account = world
        .service
        .complete_authorization(callback)
        .await
        .unwrap();
    assert_eq!(account.state, AccountState::Connected);
    assert_eq!(
        world.events(&account.id, "account.connected").await.len(),
        1
    );
    let grant = world
        .store
        .grants()
        .get(&account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(grant.consented_at.is_some() && grant.access_expires_at.is_some());

    // The same grant logs in with OAUTHBEARER too.
    let bearer = world.pending(&email, SaslMechanism::OAuthBearer).await;
    let callback = follow(bearer.authorization.unwrap().url.as_str()).await;
    let bearer = world
        .service
        .complete_authorization(callback)
        .await
        .unwrap();
    assert_eq!(bearer.state, AccountState::Connected);
    let mut session = open_session(&bearer, world.service.credentials())
        .await
        .unwrap();
    let inbox = session.select_inbox_check().await.unwrap();
    assert!(inbox.uid_validity.is_some());
    session.logout().await.unwrap();
}

#[tokio::test]
async fn a_replayed_state_is_refused_and_changes_nothing() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("replay"));
    let created = world.pending(&email, SaslMechanism::XOAuth2).await;
    let callback = follow(created.authorization.unwrap().url.as_str()).await;
    world
        .service
        .complete_authorization(callback.clone())
        .await
        .unwrap();
    let grant_before = world.store.grants().get(&created.account.id).await.unwrap();
    let events_before = world
        .store
        .events()
        .list_after(0, 100, None)
        .await
        .unwrap()
        .len();

    let replay = world
        .service
        .complete_authorization(callback)
        .await
        .unwrap_err();
    assert!(
        matches!(replay, ServiceError::Flow(FlowError::ReplayedState)),
        "{replay}"
    );
    assert_eq!(
        world.store.grants().get(&created.account.id).await.unwrap(),
        grant_before
    );
    assert_eq!(
        world
            .store
            .events()
            .list_after(0, 100, None)
            .await
            .unwrap()
            .len(),
        events_before
    );
}

#[tokio::test]
async fn unknown_and_missing_states_are_refused_before_anything_else() {
    let world = World::new().await;
    let unknown = Callback {
        state: Some("made-up-state".into()),
        code: Some("made-up-code".into()),
        ..Callback::default()
    };
    let error = world
        .service
        .complete_authorization(unknown)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ServiceError::Flow(FlowError::UnknownState)),
        "{error}"
    );
    let missing = Callback {
        code: Some("code".into()),
        ..Callback::default()
    };
    let error = world
        .service
        .complete_authorization(missing)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ServiceError::Flow(FlowError::MissingParameter("state"))
        ),
        "{error}"
    );
    assert_eq!(
        provider()
            .counters_for(&world.client_id)
            .token_authorization_code,
        0
    );
}

#[tokio::test]
async fn a_code_presented_with_another_flows_verifier_is_refused_and_nothing_stored() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("pkce"));
    let first = world.pending(&email, SaslMechanism::XOAuth2).await;
    let second = world.pending(&email, SaslMechanism::XOAuth2).await;
    let first_callback = follow(first.authorization.unwrap().url.as_str()).await;
    let second_callback = follow(second.authorization.unwrap().url.as_str()).await;
    // The first flow's code arrives with the second flow's state: the verifier does not match it.
    let crossed = postern_auth::flows::Callback {
        state: second_callback.state,
        ..first_callback
    };
    let error = world
        .service
        .complete_authorization(crossed)
        .await
        .unwrap_err();
    let ServiceError::Flow(FlowError::Exchange { source, .. }) = &error else {
        panic!("expected a refused exchange, got {error}");
    };
    assert!(source.is_grant_dead(), "{source}");
    for account in [&first.account, &second.account] {
        assert!(
            world
                .store
                .grants()
                .get(&account.id)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            world.reload(&account.id).await.state,
            AccountState::PendingAuthorization
        );
    }
}

#[tokio::test]
async fn a_declined_consent_is_reported_on_the_account_and_stores_no_tokens() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("deny"));
    provider().set_user_decision(&email, Decision::Deny);
    let created = world.pending(&email, SaslMechanism::XOAuth2).await;
    let callback = follow(created.authorization.unwrap().url.as_str()).await;
    assert_eq!(callback.error.as_deref(), Some("access_denied"));
    let error = world
        .service
        .complete_authorization(callback)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ServiceError::Flow(FlowError::Declined { .. })),
        "{error}"
    );
    let account = world.reload(&created.account.id).await;
    assert_eq!(account.state, AccountState::PendingAuthorization);
    assert!(account.last_error.unwrap().contains("access_denied"));
    assert!(
        world
            .store
            .grants()
            .get(&account.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        provider()
            .counters_for(&world.client_id)
            .token_authorization_code,
        0
    );
}

#[tokio::test]
async fn a_grant_without_refresh_token_is_refused_with_the_usual_cause_named() {
    let mut options = WorldOptions::new();
    options.client.refresh_policy = ProviderRefresh::GoogleOffline;
    let world = World::with(options).await;
    let email = format!("{}@example.test", unique("offline"));
    let created = world.pending(&email, SaslMechanism::XOAuth2).await;
    let callback = follow(created.authorization.unwrap().url.as_str()).await;
    let error = world
        .service
        .complete_authorization(callback)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("access_type=offline") && message.contains("offline_access"),
        "{message}"
    );
    assert!(
        world
            .store
            .grants()
            .get(&created.account.id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn reauthorize_gives_a_fresh_link_that_completes() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("reauth-link"));
    let account = world.connected(&email, SaslMechanism::XOAuth2).await;
    let link = world
        .service
        .reauthorize(account.id.as_str())
        .await
        .unwrap();
    let location = follow(link.url.as_str()).await;
    let again = world
        .service
        .complete_authorization(location)
        .await
        .unwrap();
    assert_eq!(again.state, AccountState::Connected);
}
