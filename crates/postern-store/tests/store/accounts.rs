//! Accounts: create, list, delete (with everything they own), and transitions with one event.

use chrono::Utc;
use postern_store::{
    AccountId, AccountState, NewAuthorization, PendingAuthorization, StoreError, TakeOutcome,
    TokenSet, Transition,
};

use crate::fixtures::{Fixture, account_event, new_oauth_account, new_password_account};

#[tokio::test]
async fn accounts_round_trip_and_are_listed_by_app() {
    let fx = Fixture::new().await;
    let google = fx.app("google").await;
    let other = fx.app("other").await;
    let oauth = new_oauth_account(&google.id, "ada@gmail.com");
    let password = new_password_account("ada@example.org");
    let sealed = fx.seal(&password.id.password_ref(), "hunter2");

    let created_oauth = fx
        .store
        .accounts()
        .create(oauth.clone(), None)
        .await
        .unwrap();
    let created_password = fx
        .store
        .accounts()
        .create(password.clone(), Some(&sealed))
        .await
        .unwrap();

    assert_eq!(created_oauth.id, oauth.id);
    assert_eq!(
        (&created_oauth.email, &created_oauth.name),
        (&oauth.email, &oauth.name)
    );
    assert_eq!(
        (&created_oauth.imap, &created_oauth.smtp),
        (&oauth.imap, &oauth.smtp)
    );
    assert_eq!(created_oauth.auth, oauth.auth);
    assert_eq!(created_oauth.state, AccountState::PendingAuthorization);
    assert_eq!(created_oauth.last_error, None);
    assert_eq!(created_password.auth, password.auth);
    assert_eq!(
        created_password.imap, password.imap,
        "ca_file and security `none` survive"
    );
    assert_eq!(
        fx.stored(&password.id.password_ref()).await.as_deref(),
        Some("hunter2")
    );
    assert_eq!(fx.stored(&oauth.id.password_ref()).await, None);

    let accounts = fx.store.accounts();
    assert_eq!(
        accounts.list().await.unwrap(),
        vec![created_oauth.clone(), created_password.clone()]
    );
    assert_eq!(
        accounts.list_by_app(&google.id).await.unwrap(),
        vec![created_oauth.clone()]
    );
    assert!(accounts.list_by_app(&other.id).await.unwrap().is_empty());
    assert_eq!(
        accounts.get(&password.id).await.unwrap(),
        Some(created_password)
    );
    assert_eq!(accounts.get(&AccountId::generate()).await.unwrap(), None);
}

#[tokio::test]
async fn an_account_whose_password_cannot_be_stored_is_not_created_either() {
    let fx = Fixture::new().await;
    let new = new_password_account("ada@example.org");
    let stray = fx.seal_with_unknown_key(&new.id.password_ref(), "hunter2");
    let err = fx
        .store
        .accounts()
        .create(new.clone(), Some(&stray))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownKey { id: 9 }), "{err:?}");
    assert_eq!(fx.store.accounts().get(&new.id).await.unwrap(), None);
}

/// Gives the account a password, tokens, a pending authorization and an event; returns the
/// state hash of the authorization.
async fn give_everything(
    fx: &Fixture,
    id: &AccountId,
    app: &postern_store::AppId,
    n: u8,
) -> [u8; 32] {
    fx.store
        .secrets()
        .put(&id.password_ref(), &fx.seal(&id.password_ref(), "pw"))
        .await
        .unwrap();
    let tokens = TokenSet {
        access: fx.seal(&id.access_token_ref(), "access"),
        refresh: Some(fx.seal(&id.refresh_token_ref(), "refresh")),
        access_expires_at: None,
        scope: None,
        consented: true,
    };
    fx.store.grants().store_tokens(id, tokens).await.unwrap();
    let state_hash = [n; 32];
    let verifier_ref = PendingAuthorization::verifier_ref(&state_hash);
    let flow = NewAuthorization {
        state_hash,
        account_id: id.clone(),
        app_id: app.clone(),
        redirect_uri: "https://postern.example/oauth/callback".to_owned(),
    };
    fx.store
        .authorizations()
        .create(flow, &fx.seal(&verifier_ref, "verifier"))
        .await
        .unwrap();
    fx.store
        .events()
        .append(account_event(id, "account.created"))
        .await
        .unwrap();
    state_hash
}

#[tokio::test]
async fn deleting_an_account_removes_what_it_owns_but_keeps_its_events() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let doomed = fx.oauth_account(&app.id, "doomed@example.com").await;
    let kept = fx.oauth_account(&app.id, "kept@example.com").await;
    let doomed_hash = give_everything(&fx, &doomed, &app.id, 1).await;
    let kept_hash = give_everything(&fx, &kept, &app.id, 2).await;
    let secrets_before = fx.store.secrets().count().await.unwrap();

    assert!(fx.store.accounts().delete(&doomed).await.unwrap());

    assert_eq!(fx.store.accounts().get(&doomed).await.unwrap(), None);
    assert_eq!(fx.store.grants().get(&doomed).await.unwrap(), None);
    assert_eq!(fx.store.grants().load_tokens(&doomed).await.unwrap(), None);
    assert_eq!(fx.stored(&doomed.password_ref()).await, None);
    assert_eq!(
        fx.stored(&PendingAuthorization::verifier_ref(&doomed_hash))
            .await,
        None
    );
    // 4 secrets each: password, access token, refresh token, PKCE verifier.
    assert_eq!(
        fx.store.secrets().count().await.unwrap(),
        secrets_before - 4
    );
    let take = fx
        .store
        .authorizations()
        .take(&doomed_hash, Utc::now())
        .await
        .unwrap();
    assert_eq!(take, TakeOutcome::Unknown);
    let history = fx
        .store
        .events()
        .list_after(0, 10, Some(doomed.as_str()))
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "events are history and stay");

    assert!(fx.store.grants().get(&kept).await.unwrap().is_some());
    assert_eq!(
        fx.stored(&kept.refresh_token_ref()).await.as_deref(),
        Some("refresh")
    );
    let kept_take = fx
        .store
        .authorizations()
        .take(&kept_hash, Utc::now())
        .await
        .unwrap();
    assert!(matches!(kept_take, TakeOutcome::Taken(..)), "{kept_take:?}");
    assert!(
        !fx.store.accounts().delete(&doomed).await.unwrap(),
        "deleting twice"
    );
}

fn needs_reauth(id: &AccountId, error: &str) -> Transition {
    Transition {
        to: AccountState::NeedsReauth,
        last_error: Some(error.to_owned()),
        event: Some(account_event(id, "account.needs_reauth")),
    }
}

async fn event_kinds(fx: &Fixture, id: &AccountId) -> Vec<String> {
    let events = fx
        .store
        .events()
        .list_after(0, 100, Some(id.as_str()))
        .await
        .unwrap();
    events.into_iter().map(|event| event.kind).collect()
}

#[tokio::test]
async fn a_repeated_transition_announces_itself_once() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let id = fx.oauth_account(&app.id, "ada@gmail.com").await;
    let accounts = fx.store.accounts();

    let mut changes = Vec::new();
    for _ in 0..5 {
        let outcome = accounts
            .transition(&id, needs_reauth(&id, "invalid_grant"))
            .await
            .unwrap();
        assert_eq!(outcome.account.state, AccountState::NeedsReauth);
        changes.push(outcome.changed);
    }

    assert_eq!(changes, [true, false, false, false, false]);
    assert_eq!(event_kinds(&fx, &id).await, ["account.needs_reauth"]);
    let stored = accounts.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.last_error.as_deref(), Some("invalid_grant"));
}

#[tokio::test]
async fn a_new_error_in_the_same_state_is_recorded_without_an_event() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let id = fx.oauth_account(&app.id, "ada@gmail.com").await;
    let accounts = fx.store.accounts();
    accounts
        .transition(&id, needs_reauth(&id, "invalid_grant"))
        .await
        .unwrap();

    let outcome = accounts
        .transition(&id, needs_reauth(&id, "Token has been expired or revoked."))
        .await
        .unwrap();

    assert!(!outcome.changed);
    let error = outcome.account.last_error.as_deref();
    assert_eq!(error, Some("Token has been expired or revoked."));
    assert_eq!(accounts.get(&id).await.unwrap().unwrap(), outcome.account);
    assert_eq!(event_kinds(&fx, &id).await, ["account.needs_reauth"]);

    let connected = Transition {
        to: AccountState::Connected,
        last_error: None,
        event: Some(account_event(&id, "account.connected")),
    };
    let outcome = accounts.transition(&id, connected).await.unwrap();
    assert!(outcome.changed);
    assert_eq!(
        (outcome.account.state, outcome.account.last_error),
        (AccountState::Connected, None)
    );
    assert_eq!(
        event_kinds(&fx, &id).await,
        ["account.needs_reauth", "account.connected"]
    );
}

#[tokio::test]
async fn concurrent_identical_transitions_append_one_event() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let id = fx.oauth_account(&app.id, "ada@gmail.com").await;

    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, id) = (fx.store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let transition = needs_reauth(&id, "invalid_grant");
            store
                .accounts()
                .transition(&id, transition)
                .await
                .unwrap()
                .changed
        }));
    }
    let mut changed = 0;
    for task in tasks {
        changed += usize::from(task.await.unwrap());
    }

    assert_eq!(changed, 1);
    assert_eq!(event_kinds(&fx, &id).await, ["account.needs_reauth"]);
}

#[tokio::test]
async fn transitioning_an_unknown_account_is_not_found_and_appends_nothing() {
    let fx = Fixture::new().await;
    let ghost = AccountId::generate();
    let err = fx
        .store
        .accounts()
        .transition(&ghost, needs_reauth(&ghost, "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(
        fx.store
            .events()
            .list_after(0, 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}
