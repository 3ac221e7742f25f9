//! The service's management operations: validation, secrets, updates, deletion, test events.

use std::time::Duration;

use postern_events::{NewWebhookInput, WebhookError, WebhookUpdateInput};
use postern_store::{AccountAuth, AccountId, AccountState, Endpoint, NewAccount, Security};
use secrecy::{ExposeSecret, SecretString};

use crate::receiver::Receiver;
use crate::{Harness, PATIENCE};

fn input(url: &str, events: &[&str]) -> NewWebhookInput {
    NewWebhookInput {
        url: url.to_owned(),
        events: events.iter().map(|e| e.to_string()).collect(),
        account_ids: None,
        secret: None,
        enabled: None,
    }
}

fn field_errors(result: Result<impl std::fmt::Debug, WebhookError>) -> Vec<String> {
    match result {
        Err(WebhookError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

async fn account(harness: &Harness) -> AccountId {
    let endpoint = Endpoint {
        host: "mail.example.org".into(),
        port: 993,
        security: Security::Tls,
        ca_file: None,
    };
    let new = NewAccount {
        id: AccountId::generate(),
        email: "ada@example.org".into(),
        name: None,
        imap: endpoint.clone(),
        smtp: endpoint,
        auth: AccountAuth::Password { username: None },
        state: AccountState::Connecting,
    };
    harness.store.accounts().create(new, None).await.unwrap().id
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once_and_nothing_is_stored() {
    let harness = Harness::new(crate::test_config()).await;
    let result = harness
        .service
        .create(NewWebhookInput {
            url: "ftp://example.com/".into(),
            events: vec!["message.new".into(), "Not A Pattern".into()],
            account_ids: Some(vec!["not-a-uuid".into(), AccountId::generate().to_string()]),
            secret: Some(SecretString::from("short")),
            enabled: None,
        })
        .await;
    assert_eq!(
        field_errors(result),
        [
            "url",
            "events[1]",
            "account_ids[0]",
            "account_ids[1]",
            "secret"
        ]
    );
    assert!(
        field_errors(
            harness
                .service
                .create(input("https://example.com/", &[]))
                .await
        )
        .contains(&"events".to_owned())
    );
    assert!(harness.service.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_caller_chosen_secret_is_sealed_and_kept_out_of_debug_output_and_the_url_normalized() {
    let harness = Harness::new(crate::test_config()).await;
    let created = harness
        .service
        .create(NewWebhookInput {
            secret: Some(SecretString::from("my-own-secret-0123456789")),
            ..input("HTTP://127.0.0.1:9/hook", &["*"])
        })
        .await
        .unwrap();
    assert_eq!(
        created.webhook.url, "http://127.0.0.1:9/hook",
        "stored normalized"
    );
    assert_eq!(created.secret.expose_secret(), "my-own-secret-0123456789");
    assert!(!format!("{created:?}").contains("my-own-secret"));

    let reference = created.webhook.id.signing_secret_ref();
    let sealed = harness
        .store
        .secrets()
        .get(&reference)
        .await
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(sealed.as_bytes()).contains("my-own-secret"));
    let opened = harness
        .vault
        .open_str(&reference.context(), &sealed)
        .unwrap();
    assert_eq!(opened.expose_secret(), "my-own-secret-0123456789");
}

#[tokio::test]
async fn update_changes_only_the_given_fields_and_can_rotate_the_secret() {
    let harness = Harness::new(crate::test_config()).await;
    let bound_to = account(&harness).await;
    let created = harness
        .service
        .create(input("http://127.0.0.1:9/hook", &["message.new"]))
        .await
        .unwrap();
    let id = created.webhook.id.to_string();

    let updated = harness
        .service
        .update(
            &id,
            WebhookUpdateInput {
                events: Some(vec!["account.*".into()]),
                account_ids: Some(Some(vec![bound_to.to_string().to_uppercase()])),
                secret: Some(SecretString::from("rotated-secret-0123456789")),
                ..WebhookUpdateInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.url, created.webhook.url);
    assert_eq!(updated.events, ["account.*"]);
    assert_eq!(
        updated.account_ids,
        Some(vec![bound_to.to_string()]),
        "canonical ids"
    );
    assert!(updated.enabled);
    let reference = created.webhook.id.signing_secret_ref();
    let sealed = harness
        .store
        .secrets()
        .get(&reference)
        .await
        .unwrap()
        .unwrap();
    let opened = harness
        .vault
        .open_str(&reference.context(), &sealed)
        .unwrap();
    assert_eq!(opened.expose_secret(), "rotated-secret-0123456789");

    let unbound = harness
        .service
        .update(
            &id,
            WebhookUpdateInput {
                account_ids: Some(None),
                enabled: Some(false),
                ..WebhookUpdateInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(unbound.account_ids, None);
    assert!(!unbound.enabled);
    assert_eq!(unbound.events, ["account.*"]);

    let refused = harness
        .service
        .update(
            &id,
            WebhookUpdateInput {
                url: Some("nope".into()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(field_errors(refused), ["url"]);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_both_not_found() {
    let harness = Harness::new(crate::test_config()).await;
    for id in [
        "not-a-uuid",
        &postern_store::WebhookId::generate().to_string(),
    ] {
        assert!(matches!(
            harness.service.get(id).await,
            Err(WebhookError::NotFound { .. })
        ));
        assert!(matches!(
            harness.service.delete(id).await,
            Err(WebhookError::NotFound { .. })
        ));
        assert!(matches!(
            harness.service.deliveries(id, None, 10).await,
            Err(WebhookError::NotFound { .. })
        ));
        assert!(matches!(
            harness.service.send_test(id).await,
            Err(WebhookError::NotFound { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_reaches_only_its_webhook() {
    let harness = Harness::started().await;
    let target = Receiver::start().await;
    let bystander = Receiver::start().await;
    let created = harness.webhook(&target, &["message.new"]).await;
    harness.webhook(&bystander, &["*"]).await;

    let event = harness
        .service
        .send_test(created.webhook.id.as_str())
        .await
        .unwrap();
    let requests = target.wait_for_successes(1, PATIENCE).await;
    assert_eq!(requests[0].id, event.id.0);
    assert_eq!(requests[0].kind, "webhook.test");
    assert!(requests[0].signature_ok);
    assert_eq!(
        requests[0].body["data"]["webhook_id"],
        created.webhook.id.as_str()
    );

    // The bystander gets the next ordinary event but never saw the test.
    harness.append(Some("acc-a"), "message.new", 1).await;
    let seen = bystander.wait_for_successes(1, PATIENCE).await;
    assert!(seen.iter().all(|r| r.kind != "webhook.test"), "{seen:#?}");

    harness
        .service
        .update(
            created.webhook.id.as_str(),
            WebhookUpdateInput {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        harness.service.send_test(created.webhook.id.as_str()).await,
        Err(WebhookError::Disabled { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_bound_webhook_receives_only_its_accounts_events() {
    let harness = Harness::started().await;
    let receiver = Receiver::start().await;
    let mine = account(&harness).await;
    harness
        .webhook_for(&receiver, &["*"], Some(vec![mine.to_string()]))
        .await;
    harness.append(Some("someone-else"), "message.new", 1).await;
    harness.append(None, "server.notice", 2).await;
    let wanted = harness.append(Some(mine.as_str()), "message.new", 3).await;
    let requests = receiver.wait_for_successes(1, PATIENCE).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.requests().len(), 1, "{requests:#?}");
    assert_eq!(requests[0].id, wanted.id.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_pauses_and_deleting_stops_deliveries() {
    let harness = Harness::started().await;
    let receiver = Receiver::start().await;
    let created = harness.webhook(&receiver, &["*"]).await;
    let id = created.webhook.id.to_string();
    let pause = WebhookUpdateInput {
        enabled: Some(false),
        ..Default::default()
    };
    harness.service.update(&id, pause).await.unwrap();
    harness.append(Some("acc-a"), "message.new", 1).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(receiver.requests().is_empty(), "paused");

    let resume = WebhookUpdateInput {
        enabled: Some(true),
        ..Default::default()
    };
    harness.service.update(&id, resume).await.unwrap();
    receiver.wait_for_successes(1, PATIENCE).await;

    harness.service.delete(&id).await.unwrap();
    let reference = created.webhook.id.signing_secret_ref();
    assert!(
        harness
            .store
            .secrets()
            .get(&reference)
            .await
            .unwrap()
            .is_none()
    );
    harness.append(Some("acc-a"), "message.new", 2).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(receiver.requests().len(), 1, "deleted");
    assert!(harness.service.list().await.unwrap().is_empty());
}
