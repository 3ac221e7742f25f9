//! The expiry step against a real store and the test provider: grants aged in the store, apps made
//! from the Google and Microsoft presets, a recorded client secret expiry. A forecast warns; it never
//! fails the run, and it never shows a secret.

use std::time::Duration;

use chrono::Utc;
use postern_doctor::{Report, Status, StepName, diagnose_account};
use postern_store::{PublishingStatus, SaslMechanism};

use crate::secrets::assert_no_secret;
use crate::support::{World, step, unique};
use crate::within;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn email(prefix: &str) -> String {
    format!("{}@example.test", unique(prefix))
}

/// Asserts the expiry step warns, right after the token step, and every other step passes: the
/// report is a warning, not a failure (the CLI exits 0).
fn assert_only_the_forecast_warns(report: &Report) {
    let text = report.render_text();
    for found in &report.steps {
        let expected = if found.name == StepName::TokenExpiry {
            Status::Warn
        } else {
            Status::Pass
        };
        assert_eq!(found.status, expected, "{}: {text}", found.name.as_str());
    }
    let names: Vec<StepName> = report.steps.iter().map(|found| found.name).collect();
    let token = names.iter().position(|name| *name == StepName::Token);
    assert_eq!(
        names.get(token.unwrap() + 1),
        Some(&StepName::TokenExpiry),
        "{text}"
    );
    assert_eq!(report.overall, Status::Warn, "{text}");
    assert!(!report.has_failures());
    assert!(text.contains("WARN  token.expiry"), "{text}");
    assert!(text.contains("Overall: WARN"), "{text}");
}

#[tokio::test]
async fn a_google_testing_grant_consented_six_days_ago_warns_with_the_date_and_the_fix() {
    within(async {
        let world = World::with_app("google", None).await;
        world.set_publishing_status(PublishingStatus::Testing).await;
        let account = world
            .oauth_account(&email("testing"), SaslMechanism::XOAuth2)
            .await;
        world.age_grant(&account, 6 * DAY, Duration::ZERO).await;
        let consent_day = (Utc::now() - chrono::Duration::days(6)).format("%Y-%m-%d");

        let report = diagnose_account(&account, &world.deps()).await;

        assert_only_the_forecast_warns(&report);
        let expiry = step(&report, StepName::TokenExpiry);
        assert!(
            expiry.summary.starts_with(&format!(
                "Google Testing-mode app: this grant stops working within a day (7 days after \
                 consent on {consent_day}, on "
            )),
            "{}",
            expiry.summary
        );
        let fix = expiry.fix.as_deref().unwrap();
        assert!(fix.contains("OAuth consent screen > Publish app"), "{fix}");
        assert!(
            fix.contains(&format!("/v1/accounts/{}/reauthorize", account.id)),
            "{fix}"
        );
        let json = serde_json::to_value(&report).unwrap();
        let step_json = json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|found| found["name"] == "token.expiry")
            .unwrap();
        assert_eq!(step_json["status"], "warn");
        assert_eq!(step_json["fix"], fix);
        let secrets = world.all_secrets(&[&account]).await;
        assert_no_secret(&report, &secrets);
    })
    .await;
}

#[tokio::test]
async fn a_microsoft_grant_unused_for_88_days_warns_even_after_the_doctor_renewed_it() {
    within(async {
        let world = World::with_app("microsoft", None).await;
        let account = world
            .oauth_account(&email("idle"), SaslMechanism::XOAuth2)
            .await;
        world.age_grant(&account, 88 * DAY, 88 * DAY).await;

        let report = diagnose_account(&account, &world.deps()).await;

        assert_only_the_forecast_warns(&report);
        let expiry = step(&report, StepName::TokenExpiry);
        assert!(
            expiry.summary.starts_with(
                "Microsoft: this grant was due to stop working in 1 day (90 days unused since"
            ),
            "{}",
            expiry.summary
        );
        assert!(
            expiry
                .summary
                .contains("the doctor's refresh renewed it until"),
            "{}",
            expiry.summary
        );
        assert!(
            expiry
                .fix
                .as_deref()
                .unwrap()
                .contains("refreshes every grant at least daily")
        );
        // The renewal is real: the stored grant was obtained just now.
        let grant = world.ctx.store.grants().get(&account.id).await.unwrap();
        assert!(Utc::now() - grant.unwrap().obtained_at < chrono::Duration::minutes(1));
        let secrets = world.all_secrets(&[&account]).await;
        assert_no_secret(&report, &secrets);
    })
    .await;
}

#[tokio::test]
async fn a_published_google_app_with_a_recent_grant_passes_with_no_known_expiry() {
    within(async {
        let world = World::with_app("google", None).await;
        let account = world
            .oauth_account(&email("published"), SaslMechanism::XOAuth2)
            .await;
        world.age_grant(&account, 6 * DAY, Duration::ZERO).await;

        let report = diagnose_account(&account, &world.deps()).await;

        let expiry = step(&report, StepName::TokenExpiry);
        assert_eq!(expiry.status, Status::Pass, "{}", report.render_text());
        assert_eq!(expiry.summary, "no known expiry");
        assert!(expiry.fix.is_none());
        assert!(
            expiry
                .evidence
                .iter()
                .any(|line| line
                    == "grant: no known expiry (google app, publishing status production)"),
            "{:?}",
            expiry.evidence
        );
        assert_eq!(report.overall, Status::Pass, "{}", report.render_text());
    })
    .await;
}

#[tokio::test]
async fn a_client_secret_expiring_in_three_days_warns_and_the_secret_stays_out_of_the_report() {
    within(async {
        let expires_at = Utc::now() + chrono::Duration::days(3) + chrono::Duration::hours(1);
        let world = World::with_app("generic", Some(expires_at)).await;
        let account = world
            .oauth_account(&email("secret"), SaslMechanism::OAuthBearer)
            .await;

        let report = diagnose_account(&account, &world.deps()).await;

        assert_only_the_forecast_warns(&report);
        let expiry = step(&report, StepName::TokenExpiry);
        assert_eq!(
            expiry.summary,
            format!(
                "the client secret of app \"doctor test app\" expires in 3 days (on {}): every \
                 account of the app will fail from then on",
                expires_at.format("%Y-%m-%d %H:%M UTC")
            )
        );
        let fix = expiry.fix.as_deref().unwrap();
        assert!(
            fix.starts_with("Create a new client secret at the provider"),
            "{fix}"
        );
        // The client secret itself is among the secrets searched for.
        let secrets = world.all_secrets(&[&account]).await;
        assert!(
            secrets
                .iter()
                .any(|secret| secret.starts_with("client-secret"))
        );
        assert_no_secret(&report, &secrets);
    })
    .await;
}

#[tokio::test]
async fn a_client_secret_far_away_passes_with_its_date() {
    within(async {
        let expires_at = Utc::now() + chrono::Duration::days(200);
        let world = World::with_app("generic", Some(expires_at)).await;
        let account = world
            .oauth_account(&email("far"), SaslMechanism::XOAuth2)
            .await;

        let report = diagnose_account(&account, &world.deps()).await;

        let expiry = step(&report, StepName::TokenExpiry);
        assert_eq!(expiry.status, Status::Pass, "{}", report.render_text());
        assert_eq!(
            expiry.summary,
            format!(
                "no expiry within the warning horizon: the client secret lasts until {}",
                expires_at.format("%Y-%m-%d %H:%M UTC")
            )
        );
    })
    .await;
}
