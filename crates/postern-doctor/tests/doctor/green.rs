//! Healthy setups: every step passes, and the dry send leaves nothing at the relay.

use postern_doctor::{HostPort, Protocol, Status, StepName, diagnose_account, diagnose_endpoints};
use postern_store::SaslMechanism;

use crate::support::{World, assert_all_pass, dovecot, options, sink, step, unique};
use crate::within;

const ACCOUNT_STEPS: [StepName; 14] = [
    StepName::ImapDns,
    StepName::ImapTcp,
    StepName::ImapTls,
    StepName::ImapCapabilities,
    StepName::Token,
    StepName::TokenExpiry,
    StepName::ImapLogin,
    StepName::ImapMailbox,
    StepName::SmtpDns,
    StepName::SmtpTcp,
    StepName::SmtpEhlo,
    StepName::SmtpTls,
    StepName::SmtpAuth,
    StepName::SmtpSendPath,
];

#[tokio::test]
async fn a_healthy_xoauth2_account_passes_every_step_in_order_and_sends_nothing() {
    within(async {
        let world = World::new().await;
        let email = format!("{}@example.test", unique("green"));
        let account = world.oauth_account(&email, SaslMechanism::XOAuth2).await;

        let report = diagnose_account(&account, &world.deps()).await;

        assert_all_pass(&report);
        let names: Vec<StepName> = report.steps.iter().map(|step| step.name).collect();
        assert_eq!(names, ACCOUNT_STEPS);
        assert!(
            step(&report, StepName::Token)
                .summary
                .starts_with("refreshing works")
        );
        // A generic provider has no expiry rule, and no secret expiry was recorded.
        assert_eq!(
            step(&report, StepName::TokenExpiry).summary,
            "no known expiry"
        );
        let tls = step(&report, StepName::ImapTls);
        assert!(
            tls.evidence.iter().any(|line| line.contains("days left")),
            "{tls:?}"
        );
        assert!(
            tls.evidence
                .iter()
                .any(|line| line.contains("trusted by the CA file"))
        );
        let capabilities = step(&report, StepName::ImapCapabilities);
        assert!(
            capabilities
                .evidence
                .iter()
                .any(|line| line.contains("XOAUTH2"))
        );
        let send_path = step(&report, StepName::SmtpSendPath);
        assert!(
            send_path
                .evidence
                .iter()
                .any(|line| line.starts_with("C: RSET")),
            "{send_path:?}"
        );
        assert!(
            sink()
                .messages()
                .iter()
                .all(|message| message.mail_from != email),
            "the dry send must not deliver anything"
        );
        let text = report.render_text();
        assert!(text.contains("Overall: PASS"), "{text}");
    })
    .await;
}

#[tokio::test]
async fn a_healthy_oauthbearer_account_passes_every_step() {
    within(async {
        let world = World::new().await;
        let email = format!("{}@example.test", unique("bearer"));
        let account = world
            .oauth_account(&email, SaslMechanism::OAuthBearer)
            .await;

        let report = diagnose_account(&account, &world.deps()).await;

        assert_all_pass(&report);
        assert!(
            step(&report, StepName::SmtpAuth)
                .summary
                .contains("OAUTHBEARER")
        );
    })
    .await;
}

#[tokio::test]
async fn a_healthy_password_account_passes_and_skips_only_the_token() {
    within(async {
        let world = World::new().await;
        let email = format!("{}@example.test", unique("pw"));
        let account = world
            .password_account(&email, "right-pw-1", "right-pw-1")
            .await;

        let report = diagnose_account(&account, &world.deps()).await;

        assert_eq!(report.overall, Status::Pass, "{}", report.render_text());
        assert_eq!(step(&report, StepName::Token).status, Status::Skip);
        assert_eq!(step(&report, StepName::TokenExpiry).status, Status::Skip);
        assert_eq!(step(&report, StepName::ImapLogin).status, Status::Pass);
        assert!(step(&report, StepName::SmtpAuth).summary.contains("PLAIN"));
    })
    .await;
}

#[tokio::test]
async fn servers_are_checked_before_an_account_exists() {
    within(async {
        let imap = HostPort::parse(
            &format!("localhost:{}", dovecot().imaps_addr().port()),
            Protocol::Imap,
        )
        .unwrap();
        let submission = dovecot().submission_addr().unwrap().port();
        let mut smtp = HostPort::parse(&format!("localhost:{submission}"), Protocol::Smtp).unwrap();
        smtp.security = postern_store::Security::StartTls;

        let report = diagnose_endpoints(
            Some(imap),
            Some(smtp),
            Some("someone@example.test"),
            Some(dovecot().ca_file()),
            &options(),
        )
        .await;

        assert_all_pass(&report);
        let names: Vec<StepName> = report.steps.iter().map(|step| step.name).collect();
        assert_eq!(
            names,
            [
                StepName::ImapDns,
                StepName::ImapTcp,
                StepName::ImapTls,
                StepName::ImapCapabilities,
                StepName::SmtpDns,
                StepName::SmtpTcp,
                StepName::SmtpEhlo,
                StepName::SmtpTls,
            ]
        );
    })
    .await;
}
