//! One broken thing per test: the doctor must name the step that fails and the catalogue's cause.

use postern_doctor::{HostPort, Status, StepName, diagnose_account, diagnose_endpoints};
use postern_store::{Account, SaslMechanism, Security};
use postern_testkit::oauth_provider::{Fault, TestOAuthProvider};

use crate::support::{
    ScriptedImap, World, assert_step, closed_port, dovecot, options, provider, step, unique,
};
use crate::within;

fn email(prefix: &str) -> String {
    format!("{}@example.test", unique(prefix))
}

#[tokio::test]
async fn an_untrusted_certificate_fails_tls_and_stops_before_any_login() {
    within(async {
        let world = World::new().await;
        let mut account = world
            .oauth_account(&email("ca"), SaslMechanism::XOAuth2)
            .await;
        account.imap.ca_file = None;
        account.smtp.ca_file = None;

        let report = diagnose_account(&account, &world.deps()).await;

        assert_step(
            &report,
            StepName::ImapTls,
            Status::Fail,
            "tls.untrusted_certificate",
        );
        let tls = step(&report, StepName::ImapTls);
        assert!(
            tls.evidence.iter().any(|line| line.contains("days left")),
            "the certificate is still described"
        );
        assert!(
            tls.evidence
                .iter()
                .any(|line| line.contains("host name localhost matches"))
        );
        for skipped in [
            StepName::ImapCapabilities,
            StepName::ImapLogin,
            StepName::ImapMailbox,
        ] {
            assert_eq!(
                step(&report, skipped).status,
                Status::Skip,
                "{}",
                report.render_text()
            );
        }
        assert_step(
            &report,
            StepName::SmtpTls,
            Status::Fail,
            "tls.untrusted_certificate",
        );
        assert_eq!(step(&report, StepName::SmtpAuth).status, Status::Skip);
        assert_eq!(report.first_failure().unwrap().name, StepName::ImapTls);
        assert!(report.has_failures());
    })
    .await;
}

#[tokio::test]
async fn a_closed_port_fails_tcp_with_connection_refused() {
    within(async {
        let world = World::new().await;
        let mut account = world
            .oauth_account(&email("port"), SaslMechanism::XOAuth2)
            .await;
        account.imap.port = closed_port().await;

        let report = diagnose_account(&account, &world.deps()).await;

        assert_eq!(step(&report, StepName::ImapDns).status, Status::Pass);
        assert_step(
            &report,
            StepName::ImapTcp,
            Status::Fail,
            "net.connection_refused",
        );
        assert_eq!(step(&report, StepName::ImapTls).status, Status::Skip);
        assert_eq!(step(&report, StepName::ImapLogin).status, Status::Skip);
        // SMTP is independent and still checked.
        assert_eq!(
            step(&report, StepName::SmtpSendPath).status,
            Status::Pass,
            "{}",
            report.render_text()
        );
        assert_eq!(report.first_failure().unwrap().name, StepName::ImapTcp);
    })
    .await;
}

#[tokio::test]
async fn a_server_without_starttls_fails_tls_and_gets_no_starttls_command() {
    within(async {
        let server = ScriptedImap::start("IMAP4rev1 AUTH=PLAIN").await;
        let imap = HostPort::new("127.0.0.1", server.addr.port(), Security::StartTls);

        let report = diagnose_endpoints(Some(imap), None, None, None, &options()).await;

        assert_step(
            &report,
            StepName::ImapTls,
            Status::Fail,
            "tls.starttls_missing",
        );
        assert_eq!(
            step(&report, StepName::ImapCapabilities).status,
            Status::Skip
        );
        assert!(
            server
                .received()
                .iter()
                .all(|line| !line.contains("STARTTLS")),
            "{:?}",
            server.received()
        );
    })
    .await;
}

#[tokio::test]
async fn implicit_tls_to_a_plaintext_port_says_the_port_speaks_plain_text() {
    within(async {
        let imap = HostPort::new("localhost", dovecot().imap_addr().port(), Security::Tls);

        let report = diagnose_endpoints(
            Some(imap),
            None,
            None,
            Some(dovecot().ca_file()),
            &options(),
        )
        .await;

        assert_step(
            &report,
            StepName::ImapTls,
            Status::Fail,
            "tls.plaintext_port",
        );
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_fails_the_imap_login_and_smtp_auth() {
    within(async {
        let world = World::new().await;
        let account = world
            .password_account(&email("pw"), "right-pw-2", "wrong-pw-2")
            .await;

        let report = diagnose_account(&account, &world.deps()).await;

        assert_eq!(
            step(&report, StepName::ImapCapabilities).status,
            Status::Pass
        );
        assert_step(
            &report,
            StepName::ImapLogin,
            Status::Fail,
            "imap.authentication_failed",
        );
        assert_eq!(step(&report, StepName::ImapMailbox).status, Status::Skip);
        assert_step(
            &report,
            StepName::SmtpAuth,
            Status::Fail,
            "smtp.auth_failed",
        );
        assert!(
            step(&report, StepName::SmtpAuth)
                .evidence
                .iter()
                .any(|line| line.contains("535"))
        );
        assert_eq!(step(&report, StepName::SmtpSendPath).status, Status::Skip);
    })
    .await;
}

#[tokio::test]
async fn a_revoked_grant_fails_the_token_step_with_the_providers_words() {
    within(async {
        let world = World::new().await;
        let address = email("revoked");
        let account = world.oauth_account(&address, SaslMechanism::XOAuth2).await;
        assert_eq!(provider().revoke_grants_of(&address), 1);

        let report = diagnose_account(&account, &world.deps()).await;

        assert_step(
            &report,
            StepName::Token,
            Status::Fail,
            "google.invalid_grant",
        );
        let token = step(&report, StepName::Token);
        assert!(
            token
                .evidence
                .iter()
                .any(|line| line.contains("Token has been expired or revoked")),
            "{token:?}"
        );
        // The stored token is dead too: the server's 401 JSON is decoded, and it is not "fresh".
        assert_step(
            &report,
            StepName::ImapLogin,
            Status::Fail,
            "sasl.token_rejected",
        );
        assert!(
            step(&report, StepName::ImapLogin)
                .evidence
                .iter()
                .any(|line| line.contains("\"401\""))
        );
        assert_eq!(report.first_failure().unwrap().name, StepName::Token);
        // Diagnosis only: the account's state is the token manager's business.
        let stored = reload(&world, &account).await;
        assert_eq!(stored.state, account.state);
    })
    .await;
}

#[tokio::test]
async fn a_provider_that_is_down_is_a_transient_warning_on_the_token_step() {
    within(async {
        let own = TestOAuthProvider::start().unwrap();
        let world = World::at(&own).await;
        let address = email("down");
        let account = world
            .oauth_account_with(&own, &address, &address, SaslMechanism::XOAuth2)
            .await;
        drop(own);

        let report = diagnose_account(&account, &world.deps()).await;

        assert_step(
            &report,
            StepName::Token,
            Status::Warn,
            "oauth.token_endpoint_unreachable",
        );
        let known = step(&report, StepName::Token).known_error.clone().unwrap();
        assert!(known.transient);
    })
    .await;
}

#[tokio::test]
async fn the_mail_servers_token_check_failing_is_unavailable_not_a_bad_token() {
    within(async {
        let world = World::new().await;
        let account = world
            .oauth_account(&email("introspect"), SaslMechanism::XOAuth2)
            .await;
        provider().set_fault_for(&world.client_id, Fault::ServerError);

        let report = diagnose_account(&account, &world.deps()).await;
        provider().set_fault_for(&world.client_id, Fault::None);

        assert_step(
            &report,
            StepName::Token,
            Status::Warn,
            "oauth.provider_unavailable",
        );
        assert_step(
            &report,
            StepName::ImapLogin,
            Status::Fail,
            "imap.unavailable",
        );
        assert!(
            step(&report, StepName::ImapLogin)
                .known_error
                .as_ref()
                .unwrap()
                .transient
        );
    })
    .await;
}

#[tokio::test]
async fn a_token_of_another_user_is_named_as_such_not_as_expired() {
    within(async {
        let world = World::new().await;
        let owner = email("owner");
        let mailbox = email("mailbox");
        let account = world
            .oauth_account_with(provider(), &mailbox, &owner, SaslMechanism::XOAuth2)
            .await;

        let report = diagnose_account(&account, &world.deps()).await;

        assert_eq!(
            step(&report, StepName::Token).status,
            Status::Pass,
            "{}",
            report.render_text()
        );
        assert_step(
            &report,
            StepName::ImapLogin,
            Status::Fail,
            "sasl.fresh_token_rejected",
        );
        assert_step(
            &report,
            StepName::SmtpAuth,
            Status::Fail,
            "sasl.fresh_token_rejected",
        );
    })
    .await;
}

#[tokio::test]
async fn a_mechanism_the_server_lacks_fails_capabilities_before_anything_secret_is_sent() {
    within(async {
        let world = World::new().await;
        let server = ScriptedImap::start("IMAP4rev1 AUTH=PLAIN").await;
        let mut account = world
            .oauth_account(&email("mech"), SaslMechanism::XOAuth2)
            .await;
        account.imap.host = "127.0.0.1".into();
        account.imap.port = server.addr.port();
        account.imap.security = Security::None;
        account.imap.ca_file = None;

        let report = diagnose_account(&account, &world.deps()).await;

        assert_eq!(
            step(&report, StepName::ImapTls).status,
            Status::Skip,
            "plaintext to loopback"
        );
        assert_step(
            &report,
            StepName::ImapCapabilities,
            Status::Fail,
            "sasl.mechanism_not_offered",
        );
        assert!(
            step(&report, StepName::ImapCapabilities)
                .summary
                .contains("AUTH=XOAUTH2")
        );
        assert_eq!(step(&report, StepName::ImapLogin).status, Status::Skip);
        assert!(
            server
                .received()
                .iter()
                .all(|line| !line.contains("AUTHENTICATE")),
            "{:?}",
            server.received()
        );
    })
    .await;
}

async fn reload(world: &World, account: &Account) -> Account {
    world
        .ctx
        .store
        .accounts()
        .get(&account.id)
        .await
        .unwrap()
        .unwrap()
}
