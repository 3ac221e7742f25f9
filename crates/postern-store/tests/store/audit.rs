//! The audit log and the expiry repository (migrations 0006 and 0007): entries come back newest
//! first with every filter applied before the limit; expiries are announced once.

use chrono::{Duration, Utc};
use postern_store::{
    AccountId, AccountState, AppId, AuditAction, AuditId, AuditOutcome, AuditQuery, ExpiryNotice,
    NewAuditEntry, NewEvent, NoticeSubject, PublishingStatus, TokenSet, Transition,
};

use crate::fixtures::Fixture;

fn entry(account: Option<&AccountId>, action: AuditAction, detail: &str) -> NewAuditEntry {
    let entry = NewAuditEntry::new("deploy-token", action, AuditOutcome::Ok).with_detail(detail);
    match account {
        Some(id) => entry.with_account(id),
        None => entry,
    }
}

fn query(limit: u32) -> AuditQuery {
    AuditQuery {
        limit,
        ..AuditQuery::default()
    }
}

fn details(entries: &[postern_store::AuditEntry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.detail.as_str()).collect()
}

#[tokio::test]
async fn audit_entries_page_newest_first_with_filters_applied_before_the_limit() {
    let fx = Fixture::new().await;
    let audit = fx.store.audit();
    let (a, b) = (AccountId::generate(), AccountId::generate());
    let app = AppId::generate();
    audit
        .record(entry(Some(&a), AuditAction::AuthorizeStarted, "a1"))
        .await
        .unwrap();
    audit
        .record(entry(Some(&b), AuditAction::RefreshOk, "b1"))
        .await
        .unwrap();
    let failed = audit
        .record(
            NewAuditEntry::new("system", AuditAction::RefreshFailed, AuditOutcome::Failed)
                .with_account(&a)
                .with_app(&app)
                .with_detail("invalid_grant"),
        )
        .await
        .unwrap();
    audit
        .record(entry(None, AuditAction::TokenCreated, "token"))
        .await
        .unwrap();
    audit
        .record(entry(Some(&a), AuditAction::RefreshOk, "a2"))
        .await
        .unwrap();

    assert_eq!(failed.actor, "system");
    assert_eq!(failed.outcome, AuditOutcome::Failed);
    assert_eq!(failed.app_id.as_ref(), Some(&app));
    assert!((Utc::now() - failed.at).num_seconds() < 5);

    let all = audit.list(query(100)).await.unwrap();
    assert_eq!(details(&all), ["a2", "token", "invalid_grant", "b1", "a1"]);
    assert!(all.windows(2).all(|pair| pair[0].id > pair[1].id));

    let first_page = audit.list(query(2)).await.unwrap();
    assert_eq!(details(&first_page), ["a2", "token"]);
    let next = AuditQuery {
        before: Some(first_page[1].id),
        ..query(2)
    };
    assert_eq!(
        details(&audit.list(next).await.unwrap()),
        ["invalid_grant", "b1"]
    );

    let of_a = AuditQuery {
        account_id: Some(a.clone()),
        ..query(100)
    };
    assert_eq!(
        details(&audit.list(of_a).await.unwrap()),
        ["a2", "invalid_grant", "a1"]
    );
    let refreshes = AuditQuery {
        action: Some(AuditAction::RefreshOk),
        ..query(1)
    };
    assert_eq!(details(&audit.list(refreshes).await.unwrap()), ["a2"]);

    // A token bound to account b sees b's entries only: not a's, not server-wide ones, and the
    // limit counts only what it may see.
    let bound = AuditQuery {
        visible_accounts: Some(vec![b.clone()]),
        ..query(1)
    };
    assert_eq!(details(&audit.list(bound).await.unwrap()), ["b1"]);
    let bound_to_nothing = AuditQuery {
        visible_accounts: Some(Vec::new()),
        ..query(100)
    };
    assert!(audit.list(bound_to_nothing).await.unwrap().is_empty());
    assert!(audit.list(query(0)).await.unwrap().is_empty());
    let before_everything = AuditQuery {
        before: Some(AuditId(1)),
        ..query(100)
    };
    assert!(audit.list(before_everything).await.unwrap().is_empty());
}

#[tokio::test]
async fn audit_entries_outlive_the_account_they_name() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let id = fx.oauth_account(&app.id, "ada@gmail.com").await;
    fx.store
        .audit()
        .record(entry(Some(&id), AuditAction::AccountRemoved, "removed"))
        .await
        .unwrap();
    assert!(fx.store.accounts().delete(&id).await.unwrap());
    let of_account = AuditQuery {
        account_id: Some(id.clone()),
        ..query(10)
    };
    let kept = fx.store.audit().list(of_account).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].action, AuditAction::AccountRemoved);
}

#[tokio::test]
async fn the_publishing_status_defaults_to_production_and_can_be_set() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let expiry = fx.store.expiry();
    assert_eq!(
        expiry.publishing_status(&app.id).await.unwrap(),
        Some(PublishingStatus::Production)
    );
    assert!(
        expiry
            .set_publishing_status(&app.id, PublishingStatus::Testing)
            .await
            .unwrap()
    );
    assert_eq!(
        expiry.publishing_status(&app.id).await.unwrap(),
        Some(PublishingStatus::Testing)
    );
    let unknown = AppId::generate();
    assert!(
        !expiry
            .set_publishing_status(&unknown, PublishingStatus::Testing)
            .await
            .unwrap()
    );
    assert_eq!(expiry.publishing_status(&unknown).await.unwrap(), None);
    // The app itself still reads as before, only marked as changed.
    let reread = fx.store.oauth_apps().get(&app.id).await.unwrap().unwrap();
    assert!(reread.updated_at >= app.updated_at);
    let updated_at = app.updated_at;
    assert_eq!(
        postern_store::OAuthApp {
            updated_at,
            ..reread
        },
        app
    );
}

async fn grant(fx: &Fixture, id: &AccountId) {
    let tokens = TokenSet {
        access: fx.seal(&id.access_token_ref(), "access"),
        refresh: Some(fx.seal(&id.refresh_token_ref(), "refresh")),
        access_expires_at: Some(Utc::now() + Duration::hours(1)),
        scope: None,
        consented: true,
    };
    fx.store.grants().store_tokens(id, tokens).await.unwrap();
}

async fn set_state(fx: &Fixture, id: &AccountId, to: AccountState) {
    let transition = Transition {
        to,
        last_error: None,
        event: None,
    };
    fx.store
        .accounts()
        .transition(id, transition)
        .await
        .unwrap();
}

#[tokio::test]
async fn user_grants_and_idle_grants_leave_out_dead_and_disabled_accounts() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let live = fx.oauth_account(&app.id, "live@gmail.com").await;
    let dead = fx.oauth_account(&app.id, "dead@gmail.com").await;
    let disabled = fx.oauth_account(&app.id, "off@gmail.com").await;
    let no_grant = fx.oauth_account(&app.id, "new@gmail.com").await;
    for id in [&live, &dead, &disabled] {
        grant(&fx, id).await;
    }
    set_state(&fx, &dead, AccountState::NeedsReauth).await;
    set_state(&fx, &disabled, AccountState::Disabled).await;

    let lifetimes = fx.store.expiry().user_grants().await.unwrap();
    let mut ids: Vec<&AccountId> = lifetimes.iter().map(|l| &l.account_id).collect();
    ids.sort();
    let mut expected = vec![&live, &disabled];
    expected.sort();
    assert_eq!(ids, expected);
    let of_live = lifetimes.iter().find(|l| l.account_id == live).unwrap();
    assert_eq!(of_live.provider, "google");
    assert_eq!(of_live.app_id, app.id);
    assert_eq!(of_live.publishing_status, PublishingStatus::Production);
    assert!(of_live.consented_at.is_some());

    let later = Utc::now() + Duration::seconds(5);
    assert_eq!(
        fx.store.expiry().idle_grants(later).await.unwrap(),
        vec![live.clone()]
    );
    let earlier = Utc::now() - Duration::hours(1);
    assert!(
        fx.store
            .expiry()
            .idle_grants(earlier)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!ids.contains(&&no_grant));
}

#[tokio::test]
async fn an_expiry_is_announced_once_with_its_event_and_a_new_expiry_again() {
    let fx = Fixture::new().await;
    let app = fx.app("google").await;
    let notice = ExpiryNotice {
        subject: NoticeSubject::App(app.id.clone()),
        reason: "client_secret".to_owned(),
        expires_at: Utc::now() + Duration::days(10),
    };
    let event = || NewEvent {
        account_id: None,
        kind: "app.secret_expiring".to_owned(),
        payload: serde_json::json!({ "app_id": app.id.as_str() }),
    };
    let expiry = fx.store.expiry();
    assert!(expiry.announce_once(&notice, event()).await.unwrap());
    assert!(!expiry.announce_once(&notice, event()).await.unwrap());
    let renewed = ExpiryNotice {
        expires_at: notice.expires_at + Duration::days(365),
        ..notice.clone()
    };
    assert!(expiry.announce_once(&renewed, event()).await.unwrap());

    let events = fx.store.events().list_after(0, 10, None).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["app.secret_expiring", "app.secret_expiring"]);
}

#[tokio::test]
async fn pruning_deletes_only_the_named_action_and_outcome_recorded_before_the_time() {
    let fx = Fixture::new().await;
    let audit = fx.store.audit();
    let account = AccountId::generate();
    for detail in ["refreshed 1", "refreshed 2"] {
        audit
            .record(entry(Some(&account), AuditAction::RefreshOk, detail))
            .await
            .unwrap();
    }
    let failed = NewAuditEntry::new("system", AuditAction::RefreshFailed, AuditOutcome::Failed)
        .with_account(&account)
        .with_detail("invalid_grant");
    audit.record(failed).await.unwrap();
    audit
        .record(entry(Some(&account), AuditAction::AuthorizeStarted, "link"))
        .await
        .unwrap();

    let earlier = Utc::now() - Duration::hours(1);
    let prune = |before| audit.prune(AuditAction::RefreshOk, AuditOutcome::Ok, before);
    assert_eq!(prune(earlier).await.unwrap(), 0, "nothing is that old");
    let later = Utc::now() + Duration::seconds(1);
    assert_eq!(prune(later).await.unwrap(), 2);
    let left = audit.list(query(10)).await.unwrap();
    assert_eq!(details(&left), ["link", "invalid_grant"]);
}
