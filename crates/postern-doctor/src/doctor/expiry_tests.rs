//! The expiry step's verdicts on a fake clock: Google "Testing" grants, Microsoft grants unused (and
//! renewed by the doctor's own refresh), client secrets, and the cases where nothing is known.

use chrono::TimeDelta;
use chrono::TimeZone as _;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 10, 12, 0, 0).unwrap()
}

fn app(provider: &str, secret_expires_at: Option<DateTime<Utc>>) -> OAuthApp {
    OAuthApp {
        id: postern_store::AppId::generate(),
        name: "mail app".into(),
        provider: provider.into(),
        client_id: "client".into(),
        redirect_uri: None,
        scopes: vec![],
        tenant: None,
        authorize_url: "https://example.test/authorize".into(),
        token_url: "https://example.test/token".into(),
        revoke_url: None,
        device_authorization_url: None,
        extra_params: Default::default(),
        imap_host: None,
        imap_port: None,
        smtp_host: None,
        smtp_port: None,
        secret_expires_at,
        status: postern_store::AppStatus::Active,
        last_error: None,
        created_at: now(),
        updated_at: now(),
    }
}

fn lifetime(
    app: &OAuthApp,
    publishing_status: PublishingStatus,
    consented: Option<TimeDelta>,
    obtained: TimeDelta,
) -> GrantLifetime {
    GrantLifetime {
        account_id: AccountId::generate(),
        app_id: app.id.clone(),
        provider: app.provider.clone(),
        publishing_status,
        state: AccountState::Connected,
        consented_at: consented.map(|ago| now() - ago),
        obtained_at: now() - obtained,
    }
}

fn facts(app: OAuthApp, grant: GrantFacts) -> Facts {
    Facts {
        account_id: AccountId::generate(),
        app,
        grant,
    }
}

/// A grant the token step left as it found it.
fn unchanged(grant: GrantLifetime) -> GrantFacts {
    GrantFacts::Stored {
        before: Some(grant.clone()),
        after: grant,
    }
}

fn run(facts: &Facts) -> Step {
    assess(facts, &ForecastPolicy::default(), now(), Duration::ZERO)
}

fn testing_app_consented(ago: TimeDelta) -> Facts {
    let app = app("google", None);
    let grant = lifetime(
        &app,
        PublishingStatus::Testing,
        Some(ago),
        TimeDelta::hours(1),
    );
    facts(app, unchanged(grant))
}

#[test]
fn a_google_testing_grant_two_days_from_its_seventh_day_warns_with_the_date_and_the_fix() {
    let facts = testing_app_consented(TimeDelta::days(5));
    let step = run(&facts);
    assert_eq!(step.name, StepName::TokenExpiry);
    assert_eq!(step.status, Status::Warn);
    assert_eq!(
        step.summary,
        "Google Testing-mode app: this grant stops working in 2 days (7 days after consent on \
         2026-08-05, on 2026-08-12 12:00 UTC)"
    );
    let fix = step.fix.unwrap();
    assert!(fix.contains("OAuth consent screen > Publish app"), "{fix}");
    assert!(
        fix.contains(&format!("PATCH /v1/oauth-apps/{}", facts.app.id)),
        "{fix}"
    );
    assert!(
        fix.contains(&format!("/v1/accounts/{}/reauthorize", facts.account_id)),
        "{fix}"
    );
    assert!(
        step.evidence
            .contains(&"grant: Google Testing-mode app: 7 days after consent on 2026-08-05, ends on 2026-08-12 12:00 UTC (2 days left)".to_owned()),
        "{:?}",
        step.evidence
    );
}

#[test]
fn a_google_testing_grant_is_counted_in_days_as_the_events_count_them() {
    let one = run(&testing_app_consented(TimeDelta::days(6)));
    assert!(
        one.summary.contains("stops working in 1 day ("),
        "{}",
        one.summary
    );
    let hours = run(&testing_app_consented(
        TimeDelta::days(6) + TimeDelta::hours(20),
    ));
    assert!(hours.summary.contains("within a day"), "{}", hours.summary);
    assert!(
        hours.evidence[0].ends_with("(less than a day left)"),
        "{:?}",
        hours.evidence
    );
    let past = run(&testing_app_consented(TimeDelta::days(9)));
    assert_eq!(past.status, Status::Warn);
    assert!(
        past.summary
            .contains("by the forecast this grant stopped working on 2026-08-08 12:00 UTC"),
        "{}",
        past.summary
    );
}

#[test]
fn a_fresh_google_testing_grant_passes_with_its_date_until_the_horizon() {
    let step = run(&testing_app_consented(TimeDelta::days(1)));
    assert_eq!(step.status, Status::Pass);
    assert_eq!(
        step.summary,
        "no expiry within the warning horizon: the grant lasts until 2026-08-16 12:00 UTC \
         (Google Testing-mode app)"
    );
    assert!(step.fix.is_none());

    // The horizon is the policy's, as for the events.
    let wide = ForecastPolicy {
        account_warning: Duration::from_secs(7 * 24 * 3600),
        ..ForecastPolicy::default()
    };
    let step = assess(
        &testing_app_consented(TimeDelta::days(1)),
        &wide,
        now(),
        Duration::ZERO,
    );
    assert_eq!(step.status, Status::Warn, "{}", step.summary);
    assert!(
        step.evidence
            .contains(&"warning horizon: 7 days for grants, 14 days for client secrets".to_owned()),
        "{:?}",
        step.evidence
    );
}

#[test]
fn a_published_google_app_or_a_generic_one_has_no_known_expiry() {
    for (provider, status) in [
        ("google", PublishingStatus::Production),
        ("generic", PublishingStatus::Production),
        // Only Google's Testing mode kills grants after 7 days.
        ("yahoo", PublishingStatus::Testing),
    ] {
        let app = app(provider, None);
        let grant = lifetime(&app, status, Some(TimeDelta::days(6)), TimeDelta::days(6));
        let step = run(&facts(app, unchanged(grant)));
        assert_eq!(step.status, Status::Pass, "{provider}");
        assert_eq!(step.summary, "no known expiry", "{provider}");
        assert!(
            step.evidence[0].starts_with(&format!("grant: no known expiry ({provider} app")),
            "{:?}",
            step.evidence
        );
    }
}

#[test]
fn a_microsoft_grant_unused_for_88_days_warns_that_the_daily_refresh_did_not_run() {
    let app = app("microsoft", None);
    let unused = |days| {
        lifetime(
            &app,
            PublishingStatus::Production,
            None,
            TimeDelta::days(days),
        )
    };
    let step = run(&facts(app.clone(), unchanged(unused(88))));
    assert_eq!(step.status, Status::Warn);
    assert_eq!(
        step.summary,
        "Microsoft: this grant stops working in 2 days (90 days unused since 2026-05-14, on \
         2026-08-12 12:00 UTC)"
    );
    let fix = step.fix.unwrap();
    assert!(
        fix.contains("refreshes every grant at least daily"),
        "{fix}"
    );

    // 85 days unused leaves 5: outside the default 3-day horizon, inside a 7-day one.
    let five_left = facts(app.clone(), unchanged(unused(85)));
    assert_eq!(run(&five_left).status, Status::Pass);
    let wide = ForecastPolicy {
        account_warning: Duration::from_secs(7 * 24 * 3600),
        ..ForecastPolicy::default()
    };
    let step = assess(&five_left, &wide, now(), Duration::ZERO);
    assert_eq!(step.status, Status::Warn);
    assert!(step.summary.contains("in 5 days"), "{}", step.summary);
}

#[test]
fn a_microsoft_grant_the_doctor_just_renewed_still_warns_when_it_had_come_close() {
    let app = app("microsoft", None);
    let before = lifetime(
        &app,
        PublishingStatus::Production,
        None,
        TimeDelta::days(88),
    );
    let after = GrantLifetime {
        obtained_at: now(),
        ..before.clone()
    };
    let close = facts(
        app.clone(),
        GrantFacts::Stored {
            before: Some(before.clone()),
            after: after.clone(),
        },
    );
    let step = run(&close);
    assert_eq!(step.status, Status::Warn);
    assert_eq!(
        step.summary,
        "Microsoft: this grant was due to stop working in 2 days (90 days unused since \
         2026-05-14); the doctor's refresh renewed it until 2026-11-08 12:00 UTC"
    );

    // Refreshed the day before by the keep-alive: nothing to say but the date.
    let daily = GrantLifetime {
        obtained_at: now() - TimeDelta::days(1),
        ..before
    };
    let fine = facts(
        app,
        GrantFacts::Stored {
            before: Some(daily),
            after,
        },
    );
    let step = run(&fine);
    assert_eq!(step.status, Status::Pass, "{}", step.summary);
    assert!(
        step.summary
            .contains("the grant lasts until 2026-11-08 12:00 UTC (Microsoft)")
    );
}

#[test]
fn a_client_secret_expiring_in_three_days_warns_and_one_far_away_passes() {
    let soon = app("microsoft", Some(now() + TimeDelta::days(3)));
    let step = run(&facts(soon, GrantFacts::AppOnly));
    assert_eq!(step.status, Status::Warn);
    assert_eq!(
        step.summary,
        "the client secret of app \"mail app\" expires in 3 days (on 2026-08-13 12:00 UTC): \
         every account of the app will fail from then on"
    );
    let fix = step.fix.unwrap();
    assert!(
        fix.contains("Entra admin center (App registrations > the app > Certificates & secrets)"),
        "{fix}"
    );
    assert!(fix.contains("secret_expires_at"), "{fix}");

    let later = app("generic", Some(now() + TimeDelta::days(60)));
    let step = run(&facts(later, GrantFacts::AppOnly));
    assert_eq!(step.status, Status::Pass);
    assert_eq!(
        step.summary,
        "no expiry within the warning horizon: the client secret lasts until 2026-10-09 12:00 UTC"
    );
    assert!(
        step.evidence.contains(
            &"client secret of app \"mail app\": ends on 2026-10-09 12:00 UTC (60 days left)"
                .to_owned()
        ),
        "{:?}",
        step.evidence
    );

    let expired = app("google", Some(now() - TimeDelta::days(1)));
    let step = run(&facts(expired, GrantFacts::None));
    assert_eq!(step.status, Status::Warn);
    assert!(
        step.summary.contains("expired on 2026-08-09"),
        "{}",
        step.summary
    );
    assert!(step.fix.unwrap().starts_with("In Google Cloud console"));
}

#[test]
fn a_dying_grant_and_a_dying_secret_are_both_named_with_both_fixes() {
    let app = app("google", Some(now() + TimeDelta::days(2)));
    let grant = lifetime(
        &app,
        PublishingStatus::Testing,
        Some(TimeDelta::days(5)),
        TimeDelta::hours(1),
    );
    let step = run(&facts(app, unchanged(grant)));
    assert_eq!(step.status, Status::Warn);
    let (grant_part, secret_part) = step.summary.split_once("; ").unwrap();
    assert!(
        grant_part.starts_with("Google Testing-mode app"),
        "{grant_part}"
    );
    assert!(
        secret_part.starts_with("the client secret"),
        "{secret_part}"
    );
    let fix = step.fix.unwrap();
    assert!(
        fix.contains("Publish app") && fix.contains("new client secret"),
        "{fix}"
    );
}

#[test]
fn nothing_known_passes_with_no_known_expiry_and_says_why() {
    for (grant, line) in [
        (GrantFacts::AppOnly, "grant: none (app-only account"),
        (GrantFacts::None, "grant: none stored yet"),
        (GrantFacts::Dead, "grant: already refused"),
    ] {
        let step = run(&facts(app("microsoft", None), grant));
        assert_eq!(step.status, Status::Pass);
        assert_eq!(step.summary, "no known expiry");
        assert!(step.evidence[0].starts_with(line), "{:?}", step.evidence);
        assert_eq!(
            step.evidence[1],
            "client secret of app \"mail app\": no expiry recorded"
        );
    }
}
