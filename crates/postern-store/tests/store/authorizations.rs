//! Pending authorizations: single use under concurrency, expiry, replay, purge.

use chrono::{DateTime, Duration, Utc};
use postern_store::{
    AUTHORIZATION_LIFETIME, AccountId, AppId, NewAuthorization, PendingAuthorization, StoreError,
    TakeOutcome,
};
use sha2::{Digest, Sha256};

use crate::fixtures::Fixture;

fn state_hash(state: &str) -> [u8; 32] {
    Sha256::digest(state.as_bytes()).into()
}

/// Starts a flow for a fresh pending account with PKCE verifier `verifier-<state>`.
async fn start_flow(fx: &Fixture, app: &AppId, state: &str) -> PendingAuthorization {
    let account = fx.oauth_account(app, &format!("{state}@gmail.com")).await;
    start_flow_for(fx, app, &account, state).await
}

async fn start_flow_for(
    fx: &Fixture,
    app: &AppId,
    account: &AccountId,
    state: &str,
) -> PendingAuthorization {
    let hash = state_hash(state);
    let verifier = fx.seal(
        &PendingAuthorization::verifier_ref(&hash),
        &format!("verifier-{state}"),
    );
    let new = NewAuthorization {
        state_hash: hash,
        account_id: account.clone(),
        app_id: app.clone(),
        redirect_uri: "https://postern.example/oauth/callback".to_owned(),
    };
    fx.store
        .authorizations()
        .create(new, &verifier)
        .await
        .unwrap()
}

async fn take(fx: &Fixture, state: &str, now: DateTime<Utc>) -> TakeOutcome {
    fx.store
        .authorizations()
        .take(&state_hash(state), now)
        .await
        .unwrap()
}

#[tokio::test]
async fn exactly_one_of_twenty_concurrent_takers_gets_the_verifier() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let flow = start_flow(&fx, &app.id, "s1").await;
    assert_eq!(flow.expires_at - flow.created_at, AUTHORIZATION_LIFETIME);

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = fx.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .authorizations()
                .take(&state_hash("s1"), Utc::now())
                .await
                .unwrap()
        }));
    }
    let mut taken = Vec::new();
    let mut already_used = 0;
    for task in tasks {
        match task.await.unwrap() {
            TakeOutcome::Taken(pending, verifier) => taken.push((pending, verifier)),
            TakeOutcome::AlreadyUsed => already_used += 1,
            other => panic!("unexpected {other:?}"),
        }
    }

    assert_eq!((taken.len(), already_used), (1, 19));
    let (pending, verifier) = taken.pop().unwrap();
    assert_eq!(pending, flow);
    let verifier_ref = PendingAuthorization::verifier_ref(&state_hash("s1"));
    assert_eq!(fx.open(&verifier_ref, &verifier), "verifier-s1");
    assert_eq!(
        fx.stored(&verifier_ref).await,
        None,
        "the verifier is deleted when taken"
    );
    assert_eq!(
        take(&fx, "s1", Utc::now()).await,
        TakeOutcome::AlreadyUsed,
        "replay"
    );
}

#[tokio::test]
async fn unknown_and_expired_states_are_told_apart() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    assert_eq!(
        take(&fx, "never-created", Utc::now()).await,
        TakeOutcome::Unknown
    );

    let flow = start_flow(&fx, &app.id, "s2").await;
    let too_late = flow.expires_at + Duration::milliseconds(1);
    assert_eq!(take(&fx, "s2", too_late).await, TakeOutcome::Expired);
    assert_eq!(
        take(&fx, "s2", flow.expires_at).await,
        TakeOutcome::Expired,
        "the end is excluded"
    );
    // An expired answer consumes nothing: the flow is still there to be recognised.
    let just_in_time = flow.expires_at - Duration::milliseconds(1);
    assert!(matches!(
        take(&fx, "s2", just_in_time).await,
        TakeOutcome::Taken(..)
    ));
}

#[tokio::test]
async fn purge_removes_expired_flows_used_or_not_with_their_verifiers() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let used = start_flow(&fx, &app.id, "used").await;
    start_flow(&fx, &app.id, "unused").await;
    assert!(matches!(
        take(&fx, "used", Utc::now()).await,
        TakeOutcome::Taken(..)
    ));
    let secrets_before = fx.store.secrets().count().await.unwrap();

    let authorizations = fx.store.authorizations();
    assert_eq!(authorizations.purge_expired(Utc::now()).await.unwrap(), 0);
    assert_eq!(
        take(&fx, "used", Utc::now()).await,
        TakeOutcome::AlreadyUsed,
        "kept for replay"
    );

    let later = used.expires_at + Duration::minutes(1);
    assert_eq!(authorizations.purge_expired(later).await.unwrap(), 2);
    assert_eq!(take(&fx, "unused", Utc::now()).await, TakeOutcome::Unknown);
    assert_eq!(take(&fx, "used", Utc::now()).await, TakeOutcome::Unknown);
    let unused_verifier = PendingAuthorization::verifier_ref(&state_hash("unused"));
    assert_eq!(fx.stored(&unused_verifier).await, None);
    assert_eq!(
        fx.store.secrets().count().await.unwrap(),
        secrets_before - 1
    );
}

#[tokio::test]
async fn a_flow_needs_an_existing_account_and_app() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let account = fx.oauth_account(&app.id, "ada@gmail.com").await;
    let hash = state_hash("s3");
    let verifier = fx.seal(&PendingAuthorization::verifier_ref(&hash), "v");
    let flow = |account_id: &AccountId, app_id: &AppId| NewAuthorization {
        state_hash: hash,
        account_id: account_id.clone(),
        app_id: app_id.clone(),
        redirect_uri: "https://postern.example/oauth/callback".to_owned(),
    };

    for (account_id, app_id) in [
        (AccountId::generate(), app.id.clone()),
        (account, AppId::generate()),
    ] {
        let new = flow(&account_id, &app_id);
        let err = fx
            .store
            .authorizations()
            .create(new, &verifier)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    }
    assert_eq!(
        fx.store.secrets().count().await.unwrap(),
        1,
        "only the app's client secret"
    );
}

#[tokio::test]
async fn deleting_an_app_removes_flows_left_for_it() {
    let fx = Fixture::new().await;
    let old_app = fx.app("old").await;
    let new_app = fx.app("new").await;
    // A pending account of the new app that was first sent through the old one.
    let account = fx.oauth_account(&new_app.id, "ada@gmail.com").await;
    start_flow_for(&fx, &old_app.id, &account, "stale").await;

    assert!(fx.store.oauth_apps().delete(&old_app.id).await.unwrap());

    assert_eq!(take(&fx, "stale", Utc::now()).await, TakeOutcome::Unknown);
    let verifier = PendingAuthorization::verifier_ref(&state_hash("stale"));
    assert_eq!(fx.stored(&verifier).await, None);
}
