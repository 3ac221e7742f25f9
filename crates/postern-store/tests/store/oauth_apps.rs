//! OAuth apps: created with their client secret in one transaction, protected while in use.

use postern_store::{AppId, AppStatus, StoreError};

use crate::fixtures::{Fixture, new_app, new_oauth_account};

#[tokio::test]
async fn an_app_and_its_client_secret_are_stored_together() {
    let fx = Fixture::new().await;
    let new = new_app("mail-sync");
    let secret_ref = new.id.client_secret_ref();
    let sealed = fx.seal(&secret_ref, "GOCSPX-s3cret");

    let app = fx
        .store
        .oauth_apps()
        .create(new.clone(), Some(&sealed))
        .await
        .unwrap();

    assert_eq!(app.id, new.id);
    assert_eq!(app.scopes, new.scopes);
    assert_eq!(app.extra_params, new.extra_params);
    assert_eq!((app.imap_port, app.smtp_port), (Some(993), Some(465)));
    assert_eq!(app.secret_expires_at, new.secret_expires_at);
    assert_eq!(
        (app.status, app.last_error.as_deref()),
        (AppStatus::Active, None)
    );
    assert_eq!(secret_ref.owner_kind, "oauth_app");
    assert_eq!(
        fx.stored(&secret_ref).await.as_deref(),
        Some("GOCSPX-s3cret")
    );
    assert_eq!(
        fx.store.oauth_apps().get(&app.id).await.unwrap(),
        Some(app.clone())
    );
    assert_eq!(fx.store.oauth_apps().list().await.unwrap(), vec![app]);
}

#[tokio::test]
async fn an_app_whose_secret_cannot_be_stored_is_not_created_either() {
    let fx = Fixture::new().await;
    let new = new_app("broken");
    let stray = fx.seal_with_unknown_key(&new.id.client_secret_ref(), "s3cret");

    let err = fx
        .store
        .oauth_apps()
        .create(new.clone(), Some(&stray))
        .await
        .unwrap_err();

    assert!(matches!(err, StoreError::UnknownKey { id: 9 }), "{err:?}");
    assert_eq!(fx.store.oauth_apps().get(&new.id).await.unwrap(), None);
    assert!(fx.store.oauth_apps().list().await.unwrap().is_empty());
    assert_eq!(fx.store.secrets().count().await.unwrap(), 0);
}

#[tokio::test]
async fn an_app_without_a_secret_is_fine_for_public_clients() {
    let fx = Fixture::new().await;
    let app = fx
        .store
        .oauth_apps()
        .create(new_app("public"), None)
        .await
        .unwrap();
    assert_eq!(fx.stored(&app.id.client_secret_ref()).await, None);
}

#[tokio::test]
async fn deleting_an_app_is_refused_while_accounts_use_it() {
    let fx = Fixture::new().await;
    let app = fx.app("shared").await;
    let first = fx.oauth_account(&app.id, "a@example.com").await;
    let second = fx.oauth_account(&app.id, "b@example.com").await;

    let err = fx.store.oauth_apps().delete(&app.id).await.unwrap_err();

    assert!(
        matches!(err, StoreError::InUse { count: 2, ref what } if what.contains(app.id.as_str())),
        "{err:?}"
    );
    assert!(err.to_string().contains("2 account"), "{err}");
    assert!(fx.store.oauth_apps().get(&app.id).await.unwrap().is_some());
    assert!(fx.stored(&app.id.client_secret_ref()).await.is_some());

    assert!(fx.store.accounts().delete(&first).await.unwrap());
    let err = fx.store.oauth_apps().delete(&app.id).await.unwrap_err();
    assert!(matches!(err, StoreError::InUse { count: 1, .. }), "{err:?}");
    assert!(fx.store.accounts().delete(&second).await.unwrap());

    assert!(fx.store.oauth_apps().delete(&app.id).await.unwrap());
    assert_eq!(fx.store.oauth_apps().get(&app.id).await.unwrap(), None);
    assert_eq!(fx.stored(&app.id.client_secret_ref()).await, None);
    assert!(
        !fx.store.oauth_apps().delete(&app.id).await.unwrap(),
        "deleting twice"
    );
}

#[tokio::test]
async fn an_account_of_an_unknown_app_is_refused() {
    let fx = Fixture::new().await;
    let new = new_oauth_account(&AppId::generate(), "ghost@example.com");
    let err = fx.store.accounts().create(new, None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(fx.store.accounts().list().await.unwrap().is_empty());
}

#[tokio::test]
async fn set_status_reports_only_real_changes() {
    let fx = Fixture::new().await;
    let app = fx.app("ms").await;
    let apps = fx.store.oauth_apps();
    let expired = Some("AADSTS7000222: the client secret expired");

    assert!(
        apps.set_status(&app.id, AppStatus::Failed, expired)
            .await
            .unwrap()
    );
    assert!(
        !apps
            .set_status(&app.id, AppStatus::Failed, expired)
            .await
            .unwrap()
    );
    let failed = apps.get(&app.id).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.last_error.as_deref()),
        (AppStatus::Failed, expired)
    );
    assert!(failed.updated_at >= app.updated_at);

    let other = Some("AADSTS7000215: invalid client secret");
    assert!(
        apps.set_status(&app.id, AppStatus::Failed, other)
            .await
            .unwrap()
    );
    assert!(
        apps.set_status(&app.id, AppStatus::Active, None)
            .await
            .unwrap()
    );
    assert!(
        !apps
            .set_status(&app.id, AppStatus::Active, None)
            .await
            .unwrap()
    );
    let active = apps.get(&app.id).await.unwrap().unwrap();
    assert_eq!(
        (active.status, active.last_error),
        (AppStatus::Active, None)
    );

    let unknown = AppId::generate();
    assert!(
        !apps
            .set_status(&unknown, AppStatus::Failed, None)
            .await
            .unwrap()
    );
}
