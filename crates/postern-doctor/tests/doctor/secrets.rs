//! No secret in any report: not in the text, not in the JSON, not in `Debug`.

use postern_doctor::{Report, diagnose_account};
use postern_store::SaslMechanism;

use crate::support::{World, provider, unique};
use crate::within;

/// Asserts that no secret appears in the report's text, JSON or `Debug`.
pub fn assert_no_secret(report: &Report, secrets: &[String]) {
    let outputs = [
        report.render_text(),
        serde_json::to_string(report).unwrap(),
        format!("{report:?}"),
    ];
    for secret in secrets {
        assert!(
            secret.len() >= 8,
            "a test secret too short to search for: {secret:?}"
        );
        for output in &outputs {
            assert!(
                !output.contains(secret.as_str()),
                "a secret leaked into the report:\n{output}"
            );
        }
    }
}

#[tokio::test]
async fn reports_of_working_and_failing_accounts_hold_no_secret() {
    within(async {
        let world = World::new().await;
        let green = world
            .oauth_account(
                &format!("{}@example.test", unique("s-green")),
                SaslMechanism::XOAuth2,
            )
            .await;
        let bearer = world
            .oauth_account(
                &format!("{}@example.test", unique("s-bearer")),
                SaslMechanism::OAuthBearer,
            )
            .await;
        let other_owner = format!("{}@example.test", unique("s-owner"));
        let mismatched = world
            .oauth_account_with(
                provider(),
                &format!("{}@example.test", unique("s-mailbox")),
                &other_owner,
                SaslMechanism::XOAuth2,
            )
            .await;
        let revoked_address = format!("{}@example.test", unique("s-revoked"));
        let revoked = world
            .oauth_account(&revoked_address, SaslMechanism::OAuthBearer)
            .await;
        provider().revoke_grants_of(&revoked_address);
        let wrong_password = world
            .password_account(
                &format!("{}@example.test", unique("s-pw")),
                "the-real-password-3",
                "a-wrong-password-3",
            )
            .await;

        let mut reports = Vec::new();
        for account in [&green, &bearer, &mismatched, &revoked, &wrong_password] {
            reports.push(diagnose_account(account, &world.deps()).await);
        }

        // Includes the tokens the doctor itself obtained by refreshing.
        let secrets = world
            .all_secrets(&[&green, &bearer, &mismatched, &revoked])
            .await;
        assert!(secrets.len() >= 10, "{}", secrets.len());
        for report in &reports {
            assert_no_secret(report, &secrets);
        }
    })
    .await;
}
