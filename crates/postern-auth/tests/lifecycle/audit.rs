//! The audit log written by the flows: who started an authorization, how the browser's return went
//! (declined, refused, a stray state, tokens obtained), and never a secret.

use std::time::Duration;

use postern_auth::flows::Callback;
use postern_store::{AuditAction, AuditOutcome};
use secrecy::ExposeSecret as _;
use url::Url;

use super::{World, unique};

/// Plays the browser at the provider: returns where it sends the user back to.
async fn consent_at_provider(link: &Url) -> Url {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let response = browser.get(link.clone()).send().await.unwrap();
    let location = response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap();
    Url::parse(location).unwrap()
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[tokio::test]
async fn a_code_flow_is_audited_from_the_link_to_the_tokens_without_a_secret() {
    let world = World::new().await;
    let (app, _client_id) = world.live_app().await;
    let email = format!("{}@example.test", unique("audited"));
    let account_id = world.account(&app.id, &email).await;
    let account = world
        .store
        .accounts()
        .get(&account_id)
        .await
        .unwrap()
        .unwrap();

    let flows = world.flows.acting_as("deploy-token");
    assert_eq!(flows.actor(), "deploy-token");
    let link = flows.start(&account).await.unwrap();
    let back = consent_at_provider(&link.url).await;
    let code = query(&back, "code").unwrap();
    let state = query(&back, "state").unwrap();
    let callback = Callback {
        state: Some(state.clone()),
        code: Some(code.clone()),
        ..Callback::default()
    };
    world.flows.complete(callback).await.unwrap();

    let audit = world.audit().await;
    let actions: Vec<(AuditAction, &str, AuditOutcome)> = audit
        .iter()
        .rev()
        .map(|entry| (entry.action, entry.actor.as_str(), entry.outcome))
        .collect();
    assert_eq!(
        actions,
        [
            (
                AuditAction::AuthorizeStarted,
                "deploy-token",
                AuditOutcome::Ok
            ),
            (AuditAction::AuthorizeCompleted, "browser", AuditOutcome::Ok),
        ]
    );
    assert!(
        audit
            .iter()
            .all(|entry| entry.account_id.as_ref() == Some(&account_id))
    );
    assert!(
        audit
            .iter()
            .all(|entry| entry.app_id.as_ref() == Some(&app.id))
    );
    assert!(
        audit[0].detail.contains("with a refresh token"),
        "{}",
        audit[0].detail
    );

    // Nothing secret in any entry: not the code, the state, nor either token.
    let (access, refresh) = world
        .store
        .grants()
        .load_tokens(&account_id)
        .await
        .unwrap()
        .unwrap();
    let open = |secret: postern_store::SecretRef, sealed| {
        let opened = world.vault.open_str(&secret.context(), &sealed).unwrap();
        opened.expose_secret().to_owned()
    };
    let secrets = [
        code,
        state,
        open(account_id.access_token_ref(), access),
        open(account_id.refresh_token_ref(), refresh.unwrap()),
    ];
    for entry in &audit {
        let text = format!("{entry:?}");
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret in {text}");
        }
    }
}

#[tokio::test]
async fn a_decline_and_a_stray_state_are_audited_as_failures() {
    let world = World::new().await;
    let (app, _client_id) = world.live_app().await;
    let email = format!("{}@example.test", unique("declined"));
    let account_id = world.account(&app.id, &email).await;
    let account = world
        .store
        .accounts()
        .get(&account_id)
        .await
        .unwrap()
        .unwrap();
    let link = world.flows.start(&account).await.unwrap();
    let state = query(&link.url, "state").unwrap();

    let declined = Callback {
        state: Some(state),
        error: Some("access_denied".to_owned()),
        ..Callback::default()
    };
    assert!(world.flows.complete(declined).await.is_err());
    let stray = Callback {
        state: Some("never-issued".to_owned()),
        code: Some("whatever".to_owned()),
        ..Callback::default()
    };
    assert!(world.flows.complete(stray).await.is_err());

    let audit = world.audit().await;
    let (stray, denied, started) = (&audit[0], &audit[1], &audit[2]);
    assert_eq!(started.action, AuditAction::AuthorizeStarted);
    assert_eq!(started.actor, "system");
    assert_eq!(denied.action, AuditAction::AuthorizeDenied);
    assert_eq!(denied.actor, "browser");
    assert_eq!(denied.outcome, AuditOutcome::Failed);
    assert_eq!(denied.account_id.as_ref(), Some(&account_id));
    assert!(denied.detail.contains("access_denied"), "{}", denied.detail);
    assert_eq!(stray.action, AuditAction::AuthorizeCompleted);
    assert_eq!(stray.outcome, AuditOutcome::Failed);
    assert_eq!(stray.account_id, None);
    assert!(stray.detail.contains("not known"), "{}", stray.detail);
    assert!(!stray.detail.contains("never-issued"), "{}", stray.detail);
}
