//! What the account service writes to the audit log (with the actor it acts for), the publishing
//! status setting, and the known-error catalogue in the `last_error` of a refused login.

use postern_store::{
    AccountState, AuditAction, AuditEntry, AuditOutcome, AuditQuery, PublishingStatus,
    SaslMechanism, TokenSet,
};
use secrecy::{ExposeSecret, SecretString};

use crate::support::{World, provider, unique};

async fn audit(world: &World) -> Vec<AuditEntry> {
    let query = AuditQuery {
        limit: 1000,
        ..AuditQuery::default()
    };
    let mut entries = world.store.audit().list(query).await.unwrap();
    entries.reverse();
    entries
}

fn summary(entries: &[AuditEntry]) -> Vec<(AuditAction, String, AuditOutcome)> {
    entries
        .iter()
        .map(|entry| (entry.action, entry.actor.clone(), entry.outcome))
        .collect()
}

fn step(action: AuditAction, actor: &str) -> (AuditAction, String, AuditOutcome) {
    (action, actor.to_owned(), AuditOutcome::Ok)
}

#[tokio::test]
async fn the_life_of_an_account_is_audited_under_the_actor_of_each_step() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("audit"));
    let deploy = world.service.with_actor("deploy-token");
    assert_eq!(deploy.actor(), "deploy-token");
    assert_eq!(world.service.actor(), postern_accounts::DEFAULT_ACTOR);
    let created = deploy
        .create_account(world.oauth_input(&email, SaslMechanism::XOAuth2))
        .await
        .unwrap();
    let id = created.account.id.clone();
    let callback = crate::support::follow(created.authorization.unwrap().url.as_str()).await;
    world
        .service
        .complete_authorization(callback)
        .await
        .unwrap();
    world
        .service
        .with_actor("cli")
        .reauthorize(id.as_str())
        .await
        .unwrap();
    deploy.remove_account(id.as_str()).await.unwrap();
    deploy.remove_app(&world.app_id).await.unwrap();

    let entries = audit(&world).await;
    assert_eq!(
        summary(&entries),
        [
            step(AuditAction::AppCreated, "api"),
            step(AuditAction::AuthorizeStarted, "deploy-token"),
            step(AuditAction::AccountCreated, "deploy-token"),
            step(AuditAction::AuthorizeCompleted, "browser"),
            step(AuditAction::AuthorizeStarted, "cli"),
            step(AuditAction::Reauthorize, "cli"),
            step(AuditAction::Revoke, "deploy-token"),
            step(AuditAction::AccountRemoved, "deploy-token"),
            step(AuditAction::AppRemoved, "deploy-token"),
        ]
    );
    let about_account = &entries[1..8];
    assert!(
        about_account
            .iter()
            .all(|e| e.account_id.as_ref() == Some(&id))
    );
    assert!(
        entries
            .iter()
            .all(|e| e.app_id.as_ref().map(|a| a.as_str()) == Some(world.app_id.as_str()))
    );
    assert!(entries[2].detail.contains(&email), "{}", entries[2].detail);
    assert!(
        !entries
            .iter()
            .any(|e| e.detail.contains(&world.client_secret)),
        "the client secret reached the audit log"
    );
}

#[tokio::test]
async fn an_account_that_fails_verification_is_audited_as_not_kept() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("badpass"));
    let input = postern_accounts::NewAccountInput {
        email: email.clone(),
        name: None,
        imap: Some(World::imap()),
        smtp: Some(World::smtp()),
        auth: postern_accounts::AuthInput::Password {
            username: None,
            password: SecretString::from("wrong-password"),
        },
    };
    assert!(world.service.create_account(input).await.is_err());
    let entries = audit(&world).await;
    let created = entries
        .iter()
        .find(|e| e.action == AuditAction::AccountCreated)
        .unwrap();
    assert_eq!(created.outcome, AuditOutcome::Failed);
    assert!(created.detail.contains("not kept"), "{}", created.detail);
    assert!(
        !created.detail.contains("wrong-password"),
        "{}",
        created.detail
    );
}

#[tokio::test]
async fn the_publishing_status_is_a_setting_of_the_app() {
    let world = World::new().await;
    let status = world
        .service
        .publishing_status(&world.app_id)
        .await
        .unwrap();
    assert_eq!(status, PublishingStatus::Production);
    world
        .service
        .set_publishing_status(&world.app_id, PublishingStatus::Testing)
        .await
        .unwrap();
    let status = world
        .service
        .publishing_status(&world.app_id)
        .await
        .unwrap();
    assert_eq!(status, PublishingStatus::Testing);
    let unknown = postern_store::AppId::generate().to_string();
    assert!(
        world
            .service
            .set_publishing_status(&unknown, PublishingStatus::Testing)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_token_of_another_user_is_explained_by_the_catalogue_in_last_error() {
    let world = World::new().await;
    let email = format!("{}@example.test", unique("owner"));
    let someone_else = format!("{}@example.test", unique("intruder"));
    let created = world.pending(&email, SaslMechanism::XOAuth2).await;
    let id = created.account.id.clone();
    let issued = provider()
        .mint_tokens(&world.client_id, &someone_else, &["mail"], None)
        .unwrap();
    let tokens = TokenSet {
        access: world.vault.seal_str(
            &id.access_token_ref().context(),
            &SecretString::from(issued.access_token.expose_secret().to_owned()),
        ),
        refresh: Some(world.vault.seal_str(
            &id.refresh_token_ref().context(),
            &SecretString::from(issued.refresh_token.expose_secret().to_owned()),
        )),
        access_expires_at: Some(chrono::Utc::now() + chrono::TimeDelta::hours(1)),
        scope: None,
        consented: true,
    };
    world
        .store
        .grants()
        .store_tokens(&id, tokens)
        .await
        .unwrap();

    assert!(world.service.verify(&created.account).await.is_err());
    let account = world.reload(&id).await;
    assert_eq!(account.state, AccountState::Error);
    let last_error = account.last_error.unwrap();
    let entry = postern_catalogue::by_id("sasl.fresh_token_rejected").unwrap();
    assert!(last_error.contains(entry.fix), "{last_error}");
    assert!(
        last_error.ends_with("[sasl.fresh_token_rejected]"),
        "{last_error}"
    );
}
