//! The device flow (RFC 8628) and app-only access (client credentials), end to end through Dovecot.

use crate::support::{World, WorldOptions, provider, unique};
use postern_accounts::{AuthInput, NewAccountInput};
use postern_store::{AccountState, SaslMechanism};
use std::time::Duration;

#[tokio::test]
async fn the_device_flow_connects_an_account_after_the_user_approves() {
    let mut options = WorldOptions::new();
    options.client.device_poll_interval = Duration::from_millis(200);
    let world = World::with(options).await;
    let email = format!("{}@example.test", unique("device"));
    let created = world.pending(&email, SaslMechanism::XOAuth2).await;
    let id = created.account.id.to_string();
    let device = world.service.start_device(&id).await.unwrap();
    assert!(!device.user_code.is_empty() && device.verification_uri.starts_with("http"));

    // The user approves on another device a little later, while Postern polls.
    let user_code = device.user_code.clone();
    let approver = email.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        provider().approve_device(&user_code, &approver).unwrap();
    });
    let account = world.service.complete_device(&id, &device).await.unwrap();
    assert_eq!(account.state, AccountState::Connected);
    let polls = provider().counters_for(&world.client_id).token_device_code;
    assert!(
        (1..=6).contains(&polls),
        "{polls} polls for a 0.7 s wait at a 1 s interval"
    );
}

#[tokio::test]
async fn app_only_access_gets_its_token_from_client_credentials_and_logs_in() {
    let mailbox = format!("{}@example.test", unique("app-only"));
    let mut options = WorldOptions::new();
    options.client.app_mailbox = Some(mailbox.clone());
    options.scopes = vec!["https://mail.example.test/.default".into()];
    let world = World::with(options).await;
    let input = NewAccountInput {
        email: mailbox,
        name: Some("Shared mailbox".into()),
        imap: Some(World::imap()),
        smtp: Some(World::smtp()),
        auth: AuthInput::OAuth2App {
            app_id: world.app_id.clone(),
            mechanism: None,
        },
    };
    let created = world.service.create_account(input).await.unwrap();
    assert!(
        created.authorization.is_none(),
        "no user consent for app-only access"
    );
    assert_eq!(created.account.state, AccountState::Connected);
    assert_eq!(
        provider()
            .counters_for(&world.client_id)
            .token_client_credentials,
        1
    );

    // Refreshing an app-only token is another client-credentials grant.
    world.expire_in_store(&created.account.id).await;
    world
        .service
        .tokens()
        .access_token(&created.account.id)
        .await
        .unwrap();
    assert_eq!(
        provider()
            .counters_for(&world.client_id)
            .token_client_credentials,
        2
    );
}

#[tokio::test]
async fn an_app_only_account_the_server_refuses_is_not_kept() {
    // No mailbox granted to the app: the token is valid but Dovecot refuses it for this user.
    let mut options = WorldOptions::new();
    options.scopes = vec!["https://mail.example.test/.default".into()];
    let world = World::with(options).await;
    let input = NewAccountInput {
        email: format!("{}@example.test", unique("app-refused")),
        name: None,
        imap: Some(World::imap()),
        smtp: Some(World::smtp()),
        auth: AuthInput::OAuth2App {
            app_id: world.app_id.clone(),
            mechanism: None,
        },
    };
    // Dovecot answers a token whose introspection names no user with `[UNAVAILABLE]`.
    let error = world.service.create_account(input).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("rejected the AUTHENTICATE XOAUTH2 login"),
        "{error}"
    );
    assert!(world.service.accounts().await.unwrap().is_empty());
}
