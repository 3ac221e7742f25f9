//! The SSRF guard, end to end: refused at creation and update, and at delivery time when a
//! stored target turns out to be internal.

use postern_events::{NewWebhookInput, WebhookConfig, WebhookError, WebhookUpdateInput};
use postern_store::DeliveryStatus;

use crate::receiver::Receiver;
use crate::{Harness, test_config};

fn strict() -> WebhookConfig {
    WebhookConfig {
        allow_private_targets: false,
        ..test_config()
    }
}

fn input(url: &str) -> NewWebhookInput {
    NewWebhookInput {
        url: url.to_owned(),
        events: vec!["*".into()],
        account_ids: None,
        secret: None,
        enabled: None,
    }
}

fn url_error(result: Result<impl std::fmt::Debug, WebhookError>) -> String {
    match result {
        Err(WebhookError::Invalid(errors)) if errors.len() == 1 && errors[0].field == "url" => {
            errors[0].message.clone()
        }
        other => panic!("expected a url error, got {other:?}"),
    }
}

#[tokio::test]
async fn internal_targets_are_refused_at_creation_unless_allowed() {
    let strict = Harness::new(strict()).await;
    let lenient = Harness::new(test_config()).await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fc00::1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://localhost:8080/hook",
    ] {
        let message = url_error(strict.service.create(input(url)).await);
        assert!(
            message.contains("allow_private_targets"),
            "{url}: {message}"
        );
        assert!(lenient.service.create(input(url)).await.is_ok(), "{url}");
    }
    assert!(strict.service.list().await.unwrap().is_empty());
    let message = url_error(strict.service.create(input("http://localhost/hook")).await);
    assert!(message.contains("loopback"), "{message}");
}

#[tokio::test]
async fn internal_targets_are_refused_at_update() {
    let strict = Harness::new(strict()).await;
    // Stored by a lenient service, changed through a strict one.
    let lenient = postern_events::WebhookService::new(
        strict.store.clone(),
        strict.vault.clone(),
        test_config(),
        strict.wake.clone(),
    )
    .unwrap();
    let created = lenient
        .create(input("http://127.0.0.1:9/hook"))
        .await
        .unwrap();
    let change = WebhookUpdateInput {
        url: Some("http://192.168.0.10/hook".into()),
        ..Default::default()
    };
    url_error(
        strict
            .service
            .update(created.webhook.id.as_str(), change)
            .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_internal_target_is_refused_at_delivery_time() {
    let mut strict = Harness::new(WebhookConfig {
        max_age: std::time::Duration::from_millis(200),
        ..strict()
    })
    .await;
    let lenient = postern_events::WebhookService::new(
        strict.store.clone(),
        strict.vault.clone(),
        test_config(),
        strict.wake.clone(),
    )
    .unwrap();
    let receiver = Receiver::start().await;
    // One by IP literal (checked before sending), one by name (checked by the resolver).
    let literal = lenient.create(input(&receiver.url())).await.unwrap();
    let by_name = receiver.url().replace("127.0.0.1", "localhost");
    let named = lenient.create(input(&by_name)).await.unwrap();
    strict.start();
    strict.append(Some("acc-a"), "message.new", 1).await;

    for webhook in [&literal.webhook, &named.webhook] {
        let dead = strict
            .deliveries_when(webhook.id.as_str(), "a refused delivery", |d| {
                d.len() == 1 && d[0].status == DeliveryStatus::Dead
            })
            .await;
        let error = dead[0].last_error.clone().unwrap();
        assert!(error.contains("loopback"), "{error}");
        assert!(!error.contains("/hook"), "the URL is not repeated: {error}");
        assert_eq!(dead[0].last_status_code, None);
    }
    assert!(receiver.requests().is_empty(), "no request left Postern");
}
