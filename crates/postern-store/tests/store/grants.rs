//! Grants: tokens stored in one transaction, a rotated refresh token never lost, the refresher's
//! query.

use chrono::{Duration, Utc};
use postern_store::{AccountId, AccountState, StoreError, TokenSet, Transition};

use crate::fixtures::{Fixture, millis};

/// Seals a token set for `id`; `refresh` of `None` keeps the stored refresh token.
fn tokens(fx: &Fixture, id: &AccountId, access: &str, refresh: Option<&str>) -> TokenSet {
    TokenSet {
        access: fx.seal(&id.access_token_ref(), access),
        refresh: refresh.map(|refresh| fx.seal(&id.refresh_token_ref(), refresh)),
        access_expires_at: Some(Utc::now() + Duration::hours(1)),
        scope: None,
        consented: false,
    }
}

/// The stored tokens, opened.
async fn plaintext_tokens(fx: &Fixture, id: &AccountId) -> Option<(String, Option<String>)> {
    let (access, refresh) = fx.store.grants().load_tokens(id).await.unwrap()?;
    let refresh = refresh.map(|sealed| fx.open(&id.refresh_token_ref(), &sealed));
    Some((fx.open(&id.access_token_ref(), &access), refresh))
}

fn pair(access: &str, refresh: &str) -> Option<(String, Option<String>)> {
    Some((access.to_owned(), Some(refresh.to_owned())))
}

#[tokio::test]
async fn a_refresh_without_a_new_refresh_token_keeps_the_stored_one() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let id = fx.oauth_account(&app.id, "ada@gmail.com").await;
    let grants = fx.store.grants();
    assert_eq!(grants.load_tokens(&id).await.unwrap(), None);

    let expires = millis("2030-01-01T10:00:00.250Z");
    let consent = TokenSet {
        access_expires_at: Some(expires),
        scope: Some("https://mail.google.com/".to_owned()),
        consented: true,
        ..tokens(&fx, &id, "access-1", Some("refresh-1"))
    };
    let granted = grants.store_tokens(&id, consent).await.unwrap();
    assert_eq!(granted.access_expires_at, Some(expires));
    assert_eq!(granted.scope.as_deref(), Some("https://mail.google.com/"));
    assert!(granted.consented_at.is_some());
    assert_eq!(granted.last_refreshed_at, None);
    assert_eq!(
        plaintext_tokens(&fx, &id).await,
        pair("access-1", "refresh-1")
    );

    let refreshed = grants
        .store_tokens(&id, tokens(&fx, &id, "access-2", None))
        .await
        .unwrap();
    assert_eq!(
        plaintext_tokens(&fx, &id).await,
        pair("access-2", "refresh-1")
    );
    assert_eq!(
        refreshed.scope, granted.scope,
        "an omitted scope means unchanged"
    );
    assert_eq!(refreshed.consented_at, granted.consented_at);
    assert!(refreshed.last_refreshed_at.is_some());

    let rotated = tokens(&fx, &id, "access-3", Some("refresh-2"));
    grants.store_tokens(&id, rotated).await.unwrap();
    assert_eq!(
        plaintext_tokens(&fx, &id).await,
        pair("access-3", "refresh-2")
    );
    assert_eq!(grants.get(&id).await.unwrap().unwrap().account_id, id);
}

#[tokio::test]
async fn tokens_are_stored_all_or_nothing() {
    let fx = Fixture::new().await;
    let app = fx.app("microsoft").await;
    let id = fx.oauth_account(&app.id, "ada@outlook.com").await;
    let grants = fx.store.grants();
    grants
        .store_tokens(&id, tokens(&fx, &id, "access-1", Some("refresh-1")))
        .await
        .unwrap();
    grants.record_failure(&id, Utc::now()).await.unwrap();
    let before = grants.get(&id).await.unwrap();

    // The rotated refresh token cannot be stored: the new access token must not be either.
    let broken = TokenSet {
        refresh: Some(fx.seal_with_unknown_key(&id.refresh_token_ref(), "refresh-2")),
        ..tokens(&fx, &id, "access-2", None)
    };
    let err = grants.store_tokens(&id, broken).await.unwrap_err();

    assert!(matches!(err, StoreError::UnknownKey { id: 9 }), "{err:?}");
    assert_eq!(
        plaintext_tokens(&fx, &id).await,
        pair("access-1", "refresh-1")
    );
    assert_eq!(
        grants.get(&id).await.unwrap(),
        before,
        "metadata unchanged too"
    );
}

#[tokio::test]
async fn failures_are_counted_until_tokens_are_stored_again() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let id = fx.oauth_account(&app.id, "ada@gmail.com").await;
    let grants = fx.store.grants();
    let err = grants.record_failure(&id, Utc::now()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { .. }),
        "no grant yet: {err:?}"
    );
    grants
        .store_tokens(&id, tokens(&fx, &id, "a", Some("r")))
        .await
        .unwrap();

    let retry_at = millis("2030-01-01T00:05:00Z");
    assert_eq!(grants.record_failure(&id, Utc::now()).await.unwrap(), 1);
    assert_eq!(grants.record_failure(&id, retry_at).await.unwrap(), 2);
    let failing = grants.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (failing.refresh_failures, failing.next_attempt_at),
        (2, Some(retry_at))
    );

    let recovered = grants
        .store_tokens(&id, tokens(&fx, &id, "a2", None))
        .await
        .unwrap();
    assert_eq!(
        (recovered.refresh_failures, recovered.next_attempt_at),
        (0, None)
    );
}

#[tokio::test]
async fn tokens_of_an_unknown_account_are_refused() {
    let fx = Fixture::new().await;
    let ghost = AccountId::generate();
    let err = fx
        .store
        .grants()
        .store_tokens(&ghost, tokens(&fx, &ghost, "a", Some("r")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(fx.store.secrets().count().await.unwrap(), 0);
}

#[tokio::test]
async fn clear_erases_the_grant_and_tokens_but_not_the_password() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let id = fx.oauth_account(&app.id, "ada@gmail.com").await;
    let password = fx.seal(&id.password_ref(), "app-password");
    fx.store
        .secrets()
        .put(&id.password_ref(), &password)
        .await
        .unwrap();
    let grants = fx.store.grants();
    grants
        .store_tokens(&id, tokens(&fx, &id, "a", Some("r")))
        .await
        .unwrap();

    assert!(grants.clear(&id).await.unwrap());

    assert_eq!(grants.get(&id).await.unwrap(), None);
    assert_eq!(grants.load_tokens(&id).await.unwrap(), None);
    assert_eq!(fx.stored(&id.refresh_token_ref()).await, None);
    assert_eq!(
        fx.stored(&id.password_ref()).await.as_deref(),
        Some("app-password")
    );
    assert!(!grants.clear(&id).await.unwrap(), "nothing left to clear");
}

#[tokio::test]
async fn expiring_before_skips_accounts_that_must_not_be_refreshed() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let now = Utc::now();
    let mut ids = Vec::new();
    for (n, minutes) in [50, 2, 30, 1, 3, 4].into_iter().enumerate() {
        let id = fx
            .oauth_account(&app.id, &format!("user{n}@gmail.com"))
            .await;
        let set = TokenSet {
            access_expires_at: Some(now + Duration::minutes(minutes)),
            ..tokens(&fx, &id, "a", Some("r"))
        };
        fx.store.grants().store_tokens(&id, set).await.unwrap();
        ids.push(id);
    }
    for (index, state) in [(4, AccountState::NeedsReauth), (5, AccountState::Disabled)] {
        let transition = Transition {
            to: state,
            last_error: None,
            event: None,
        };
        fx.store
            .accounts()
            .transition(&ids[index], transition)
            .await
            .unwrap();
    }
    let no_expiry = fx.oauth_account(&app.id, "forever@gmail.com").await;
    let unknown_expiry = TokenSet {
        access_expires_at: None,
        ..tokens(&fx, &no_expiry, "a", Some("r"))
    };
    fx.store
        .grants()
        .store_tokens(&no_expiry, unknown_expiry)
        .await
        .unwrap();

    let due = fx
        .store
        .grants()
        .expiring_before(now + Duration::minutes(10))
        .await
        .unwrap();

    assert_eq!(due, vec![ids[3].clone(), ids[1].clone()], "soonest first");
}
