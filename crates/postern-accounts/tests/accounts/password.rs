//! Password accounts: verified by a real login before they are kept.

use crate::support::{World, dovecot, unique};
use postern_accounts::{AuthInput, NewAccountInput, ServiceError};
use postern_store::{AccountState, Security};
use secrecy::SecretString;

fn input(email: &str, password: &str) -> NewAccountInput {
    NewAccountInput {
        email: email.to_owned(),
        name: None,
        imap: Some(World::imap()),
        smtp: Some(World::smtp()),
        auth: AuthInput::Password {
            username: None,
            password: SecretString::from(password.to_owned()),
        },
    }
}

#[tokio::test]
async fn a_password_account_is_verified_and_connected() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("password"));
    dovecot()
        .add_password_user(&email, "correct horse")
        .unwrap();
    let created = world
        .service
        .create_account(input(&email, "correct horse"))
        .await
        .unwrap();
    assert_eq!(created.account.state, AccountState::Connected);
    assert_eq!(
        world
            .events(&created.account.id, "account.connected")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_the_servers_words_and_nothing_is_kept() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("wrong-password"));
    dovecot().add_password_user(&email, "right").unwrap();
    let error = world
        .service
        .create_account(input(&email, "wrong"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ServiceError::LoginRefused { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("AUTHENTICATIONFAILED"),
        "{error}"
    );
    assert!(world.service.accounts().await.unwrap().is_empty());
    assert_eq!(
        world.store.secrets().count().await.unwrap(),
        1,
        "only the app's client secret remains"
    );
}

#[tokio::test]
async fn bad_fields_are_all_named_and_nothing_is_stored() {
    let world = World::new().await;
    let mut bad = input("not-an-address", "x");
    bad.imap = Some(postern_accounts::EndpointInput {
        host: "imap.example.com".into(),
        port: 143,
        security: Security::None,
        ca_file: None,
    });
    bad.smtp = None;
    let ServiceError::Invalid(fields) = world.service.create_account(bad).await.unwrap_err() else {
        panic!("expected field errors");
    };
    let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["email", "imap.security", "smtp"]);
    assert!(world.service.accounts().await.unwrap().is_empty());
}
