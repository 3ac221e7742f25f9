//! No secret this suite used ever appears in clear text in the database files or the logs.

use crate::support::{World, captured_logs, dovecot, unique};
use postern_accounts::{AuthInput, NewAccountInput};
use postern_store::SaslMechanism;
use secrecy::SecretString;

#[tokio::test]
async fn tokens_passwords_and_client_secrets_stay_out_of_the_database_and_the_logs() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("secrets"));
    let account = world.connected(&email, SaslMechanism::XOAuth2).await;
    let (first_access, first_refresh) = world.stored_tokens(&account.id).await;
    world.expire_in_store(&account.id).await;
    world
        .service
        .tokens()
        .access_token(&account.id)
        .await
        .unwrap();
    let (second_access, second_refresh) = world.stored_tokens(&account.id).await;

    let password_user = format!("{}@example.test", unique("secret-password"));
    let password = format!("pw-{}", unique("plain"));
    dovecot()
        .add_password_user(&password_user, &password)
        .unwrap();
    world
        .service
        .create_account(NewAccountInput {
            email: password_user,
            name: None,
            imap: Some(World::imap()),
            smtp: Some(World::smtp()),
            auth: AuthInput::Password {
                username: None,
                password: SecretString::from(password.clone()),
            },
        })
        .await
        .unwrap();
    world.store.close().await;

    let mut secrets = vec![
        first_access,
        second_access,
        password,
        world.client_secret.clone(),
    ];
    secrets.extend(first_refresh);
    secrets.extend(second_refresh);
    assert!(secrets.len() >= 5);

    let logs = captured_logs();
    assert!(
        logs.contains(account.id.as_str()),
        "the log capture is not working"
    );
    let mut files = Vec::new();
    for entry in std::fs::read_dir(world.dir.path()).unwrap() {
        files.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret reached the logs");
        for bytes in &files {
            let found = bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes());
            assert!(!found, "a secret is in clear text in the database files");
        }
    }
}
