//! One test per catalogue entry: a recorded response (from PROVIDERS.md, the providers' documentation
//! and issue trackers, or the test rig's Dovecot) must be explained by that entry, and the advice must
//! say the thing that fixes it.

use super::*;

/// `name => "entry.id", "fragment of its fix", observation;` makes one `#[test] fn name`, and lists
/// every id in `RECORDED` so a test can check that no entry is left without one.
macro_rules! recorded {
    ($($name:ident => $id:literal, $advice:literal, $observation:expr;)+) => {
        $(
            #[test]
            fn $name() {
                assert_advice(&$observation, $id, $advice);
            }
        )+
        const RECORDED: &[&str] = &[$($id),+];
    };
}

fn assert_advice(observation: &Observation<'_>, id: &str, advice: &str) {
    let entry = explain(observation).unwrap_or_else(|| panic!("nothing explains {observation:?}"));
    assert_eq!(entry.id, id, "{observation:?} explained by the wrong entry");
    let fix = entry.fix.to_ascii_lowercase();
    assert!(
        fix.contains(&advice.to_ascii_lowercase()),
        "the fix of {id} does not say {advice:?}: {}",
        entry.fix
    );
    assert!(!entry.cause.is_empty());
}

fn oauth<'a>(
    status: u16,
    error: &'a str,
    description: &'a str,
    aadsts: &'a [u32],
) -> Observation<'a> {
    Observation::OAuth {
        status,
        error: Some(error),
        description: Some(description),
        aadsts,
    }
}

fn imap(text: &str) -> Observation<'_> {
    let code = text
        .strip_prefix('[')
        .and_then(|rest| rest.split([']', ' ']).next());
    Observation::Imap { code, text }
}

fn sasl(status: &'static str, scope: Option<&'static str>, fresh: bool) -> Observation<'static> {
    Observation::SaslChallenge {
        status,
        scope,
        token_just_refreshed: fresh,
    }
}

fn condition(condition: Condition) -> Observation<'static> {
    Observation::Condition(condition)
}

recorded! {
    // Microsoft token endpoint.
    microsoft_refresh_token_idle_90_days => "microsoft.aadsts700082", "authorize Postern again",
        oauth(400, "invalid_grant", "AADSTS700082: The refresh token has expired due to inactivity. \
            The token was issued on 2019-01-28T08:58:16.7135740Z and was inactive for 90.00:00:00.",
            &[700_082]);
    microsoft_client_secret_expired => "microsoft.aadsts7000222", "new client secret",
        oauth(401, "invalid_client", "AADSTS7000222: The provided client secret keys for app \
            'f1b3…' are expired. Visit the Azure portal to create new keys for your app: \
            https://aka.ms/NewClientSecret", &[7_000_222]);
    microsoft_client_secret_invalid => "microsoft.aadsts7000215", "Value",
        oauth(401, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the \
            secret being sent in the request is the client secret value, not the client secret ID, \
            for a secret added to app 'f1b3…'.", &[7_000_215]);
    microsoft_unknown_app => "microsoft.aadsts700016", "tenant id",
        oauth(400, "unauthorized_client", "AADSTS700016: Application with identifier 'f1b3…' was \
            not found in the directory 'contoso'. You may have sent your authentication request to \
            the wrong tenant.", &[700_016]);
    microsoft_scopes_of_two_resources => "microsoft.aadsts28000", "IMAP.AccessAsUser.All",
        oauth(400, "invalid_request", "AADSTS28000: Provided value for the input parameter scope is \
            not valid because it contains more than one resource. Scope \
            https://outlook.office.com/IMAP.AccessAsUser.All https://graph.microsoft.com/User.Read \
            offline_access is not valid.", &[28_000]);
    microsoft_invalid_scope => "microsoft.aadsts70011", "offline_access",
        oauth(400, "invalid_scope", "AADSTS70011: The provided request must include a 'scope' \
            input parameter. The provided value for the input parameter 'scope' is not valid. The \
            scope email https://outlook.office.com/IMAP.AccessAsUser.All is not valid.", &[70_011]);
    microsoft_password_changed => "microsoft.aadsts50173", "authorize Postern again",
        oauth(400, "invalid_grant", "AADSTS50173: The provided grant has expired due to it being \
            revoked, a fresh auth token is needed. The user might have changed or reset their \
            password.", &[50_173]);
    microsoft_consent_missing => "microsoft.aadsts65001", "administrator grants consent",
        oauth(400, "invalid_grant", "AADSTS65001: The user or administrator has not consented to \
            use the application with ID 'f1b3…'. Send an interactive authorization request for this \
            user and resource.", &[65_001]);
    microsoft_conditional_access => "microsoft.aadsts53003", "Conditional Access",
        oauth(400, "invalid_grant", "AADSTS53003: Access has been blocked by Conditional Access \
            policies. The access policy does not allow token issuance.", &[53_003]);
    microsoft_mfa_required => "microsoft.interaction_required", "complete the prompt",
        oauth(400, "interaction_required", "AADSTS50076: Due to a configuration change made by your \
            administrator, or because you moved to a new location, you must use multi-factor \
            authentication to access 'https://outlook.office.com'.", &[50_076]);
    // Google and generic token endpoint.
    google_token_expired_or_revoked => "google.invalid_grant", "In production",
        oauth(400, "invalid_grant", "Token has been expired or revoked.", &[]);
    invalid_grant_without_known_text => "oauth.invalid_grant", "authorize Postern again",
        oauth(400, "invalid_grant", "Bad Request", &[]);
    google_client_not_found => "oauth.invalid_client", "client id and secret",
        oauth(401, "invalid_client", "The OAuth client was not found.", &[]);
    google_unauthorized_client => "oauth.unauthorized_client", "grant type",
        oauth(400, "unauthorized_client", "Unauthorized", &[]);
    google_invalid_scope => "oauth.invalid_scope", "https://mail.google.com/",
        oauth(400, "invalid_scope", "Some requested scopes were invalid. \
            {invalid=[https://mail.google.com/x]}", &[]);
    token_endpoint_temporarily_unavailable => "oauth.temporarily_unavailable", "retries",
        oauth(503, "temporarily_unavailable", "The service is temporarily unavailable", &[]);
    token_endpoint_bad_gateway => "oauth.provider_unavailable", "retries",
        Observation::OAuth { status: 502, error: None, description: None, aadsts: &[] };
    grant_without_refresh_token => "oauth.no_refresh_token", "access_type=offline",
        condition(Condition::NoRefreshToken);
    token_endpoint_unreachable => "oauth.token_endpoint_unreachable", "token URL",
        condition(Condition::TokenEndpointUnreachable);
    // SASL error challenges.
    google_wrong_scope_json => "sasl.insufficient_scope", "https://mail.google.com/",
        sasl("400", Some("https://mail.google.com/"), false);
    dovecot_rejects_a_fresh_token => "sasl.fresh_token_rejected", "account's email",
        sasl("401", Some("mail"), true);
    dovecot_rejects_an_old_token => "sasl.token_rejected", "refreshes the token",
        sasl("401", Some("mail"), false);
    rfc7628_invalid_token => "sasl.token_rejected", "refreshes the token",
        sasl("invalid_token", None, false);
    // IMAP.
    gmail_too_many_connections => "google.too_many_connections", "Close other IMAP clients",
        imap("[ALERT] Too many simultaneous connections. (Failure)");
    gmail_bandwidth_limit => "google.bandwidth_limit", "resets within a day",
        imap("[OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)");
    gmail_imap_disabled => "google.imap_disabled", "Enable IMAP",
        imap("[ALERT] Your account is not enabled for IMAP use. Please visit your Gmail settings \
            page and enable your account for IMAP access. (Failure)");
    gmail_app_password_required => "google.app_password_required", "app password",
        imap("[ALERT] Application-specific password required: \
            https://support.google.com/accounts/answer/185833 (Failure)");
    gmail_web_login_required => "google.web_login_required", "OAuth2",
        imap("[ALERT] Please log in via your web browser: \
            https://support.google.com/mail/accounts/answer/78754 (Failure)");
    outlook_authenticated_not_connected => "microsoft.authenticated_not_connected",
        "Add-MailboxPermission", imap("User is authenticated but not connected.");
    outlook_authenticate_failed => "microsoft.authenticate_failed", "IMAP.AccessAsUser.All",
        imap("AUTHENTICATE failed.");
    outlook_login_failed => "microsoft.login_failed", "OAuth2",
        imap("LOGIN failed.");
    yahoo_invalid_credentials => "yahoo.invalid_credentials", "app password",
        imap("[AUTHENTICATIONFAILED] LOGIN Invalid credentials");
    dovecot_too_many_connections => "dovecot.too_many_connections", "mail_max_userip_connections",
        imap("[UNAVAILABLE] Maximum number of connections from user+IP exceeded \
            (mail_max_userip_connections=16)");
    dovecot_token_check_down => "imap.unavailable", "retry later",
        imap("[UNAVAILABLE] Temporary authentication failure.");
    dovecot_authentication_failed => "imap.authentication_failed", "right password",
        imap("[AUTHENTICATIONFAILED] Authentication failed.");
    password_expired => "imap.expired", "new password",
        imap("[EXPIRED] That password isn't valid any more");
    mailbox_over_quota => "imap.overquota", "Free space",
        imap("[OVERQUOTA] Quota exceeded (mailbox for user is full)");
    mailbox_in_use => "imap.in_use", "retry later",
        imap("[INUSE] Mailbox in use");
    // SMTP.
    gmail_daily_sending_limit => "google.daily_sending_limit", "resets",
        Observation::smtp_reply(550, "5.4.5 Daily user sending limit exceeded. For more information \
            on Gmail sending limits go to https://support.google.com/a/answer/166852 \
            d2e1a72fcca58-76e7d551493sm9728466b3a.112 - gsmtp");
    gmail_daily_sending_quota => "google.daily_sending_limit", "resets",
        Observation::smtp_reply(550, "5.4.5 Daily user sending quota exceeded. \
            s5sm12197523qke.120 - gsmtp");
    gmail_smtp_app_password => "google.smtp_app_password_required", "app password",
        Observation::smtp_reply(534, "5.7.9 Application-specific password required. For more \
            information, go to https://support.google.com/mail/?p=InvalidSecondFactor");
    gmail_smtp_bad_credentials => "google.smtp_bad_credentials", "OAuth2",
        Observation::smtp_reply(535, "5.7.8 Username and Password not accepted. For more \
            information, go to https://support.google.com/mail/?p=BadCredentials");
    outlook_smtp_auth_disabled => "microsoft.smtp_auth_disabled", "Authenticated SMTP",
        Observation::smtp_reply(535, "5.7.139 Authentication unsuccessful, \
            SmtpClientAuthentication is disabled for the Tenant. Visit \
            https://aka.ms/smtp_auth_disabled for more information. \
            [MN2PR05CA0004.namprd05.prod.outlook.com 2023-09-12T20:59:57.214Z 08DBB276B7E699C4]");
    outlook_security_defaults => "microsoft.security_defaults", "security defaults",
        Observation::smtp_reply(535, "5.7.139 Authentication unsuccessful, user is locked by your \
            organization's security defaults policy. Contact your administrator.");
    outlook_basic_auth_disabled => "microsoft.basic_auth_disabled", "OAuth2",
        Observation::smtp_reply(535, "5.7.139 Authentication unsuccessful, basic authentication \
            is disabled. [BN9PR03CA0123.namprd03.prod.outlook.com]");
    outlook_smtp_auth_unsuccessful => "microsoft.smtp_auth_unsuccessful", "SMTP.Send",
        Observation::smtp_reply(535, "5.7.3 Authentication unsuccessful \
            [ROAP284CA0191.BRAP284.PROD.OUTLOOK.COM]");
    outlook_invalid_xoauth2_data => "microsoft.invalid_xoauth2_data", "primary address",
        Observation::smtp_reply(501, "5.5.124 Invalid XOAUTH2 auth data - User address provided is \
            not valid. Please ensure the auth d");
    outlook_send_as_denied => "microsoft.send_as_denied", "Send As",
        Observation::smtp_reply(554, "5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.\
            MapiExceptionSendAsDenied; Failed to process message due to a permanent exception");
    yahoo_too_many_bad_auth => "yahoo.too_many_bad_auth", "app password",
        Observation::smtp_reply(535, "5.7.0 (#AUTH005) Too many bad auth attempts.");
    dovecot_submission_token_check_down => "smtp.temporary_auth_failure", "retry later",
        Observation::smtp_reply(454, "4.7.0 Temporary authentication failure.");
    dovecot_submission_auth_failed => "smtp.auth_failed", "right password",
        Observation::smtp_reply(535, "5.7.8 Authentication failed.");
    exchange_mechanism_unsupported => "smtp.mechanism_unsupported", "XOAUTH2",
        Observation::smtp_reply(504, "5.7.4 Unrecognized authentication type");
    gmail_authentication_required => "smtp.authentication_required", "STARTTLS",
        Observation::smtp_reply(530, "5.7.0 Authentication Required. Learn more at \
            https://support.google.com/mail/?p=WantAuthError");
    postfix_unknown_recipient => "smtp.unknown_recipient", "email address",
        Observation::smtp_reply(550, "5.1.1 <nobody@example.com>: Recipient address rejected: User \
            unknown in virtual mailbox table");
    postfix_relay_denied => "smtp.policy_rejected", "own address",
        Observation::smtp_reply(554, "5.7.1 <someone@example.org>: Relay access denied");
    gmail_try_again_later => "smtp.service_unavailable", "retry later",
        Observation::smtp_reply(421, "4.7.0 Try again later, closing connection.");
    // Conditions.
    host_not_found => "net.host_not_found", "host name", condition(Condition::HostNotFound);
    connection_refused => "net.connection_refused", "993", condition(Condition::ConnectionRefused);
    connect_timeout => "net.connect_timeout", "firewalls", condition(Condition::ConnectTimeout);
    network_unreachable => "net.unreachable", "routes", condition(Condition::NetworkUnreachable);
    untrusted_certificate => "tls.untrusted_certificate", "ca_file",
        condition(Condition::UntrustedCertificate);
    hostname_mismatch => "tls.hostname_mismatch", "host name the certificate names",
        condition(Condition::HostnameMismatch);
    certificate_expired => "tls.certificate_expired", "Renew",
        condition(Condition::CertificateExpired);
    certificate_not_yet_valid => "tls.certificate_not_yet_valid", "clock",
        condition(Condition::CertificateNotYetValid);
    tls_handshake_failed => "tls.handshake_failed", "TLS 1.2",
        condition(Condition::TlsHandshakeFailed);
    tls_on_plaintext_port => "tls.plaintext_port", "starttls",
        condition(Condition::TlsOnPlainPort);
    no_greeting => "net.no_greeting", "security to tls", condition(Condition::NoGreeting);
    starttls_missing => "tls.starttls_missing", "993", condition(Condition::StartTlsMissing);
    mechanism_not_offered => "sasl.mechanism_not_offered", "auth_mechanisms",
        condition(Condition::MechanismNotOffered);
}

#[test]
fn every_entry_has_a_recorded_response() {
    for entry in entries() {
        assert!(
            RECORDED.contains(&entry.id),
            "{} has no recorded response in tests.rs",
            entry.id
        );
    }
}

#[test]
fn ids_are_unique_and_well_formed() {
    let mut seen = std::collections::HashSet::new();
    for entry in entries() {
        assert!(seen.insert(entry.id), "{} appears twice", entry.id);
        let (area, name) = entry.id.split_once('.').unwrap();
        assert!(!area.is_empty() && !name.is_empty(), "{}", entry.id);
        assert!(by_id(entry.id).is_some());
    }
}

#[test]
fn responses_nobody_knows_are_not_guessed_at() {
    for observation in [
        imap("[TRYCREATE] Mailbox doesn't exist: Archive"),
        Observation::smtp_reply(250, "2.1.0 Ok"),
        sasl("invalid_request", None, false),
        oauth(400, "access_denied", "The user denied the request", &[]),
    ] {
        assert!(explain(&observation).is_none(), "{observation:?}");
    }
}

#[test]
fn smtp_replies_are_split_into_enhanced_code_and_text() {
    match Observation::smtp_reply(535, "5.7.139 Authentication unsuccessful") {
        Observation::Smtp {
            code,
            enhanced,
            text,
        } => {
            assert_eq!(code, 535);
            assert_eq!(enhanced, Some("5.7.139"));
            assert_eq!(text, "Authentication unsuccessful");
        }
        other => panic!("{other:?}"),
    }
    match Observation::smtp_reply(250, "mail.example.com Hello") {
        Observation::Smtp { enhanced, text, .. } => {
            assert_eq!(enhanced, None);
            assert_eq!(text, "mail.example.com Hello");
        }
        other => panic!("{other:?}"),
    }
    assert!(!is_enhanced_code("1.2.3"));
    assert!(!is_enhanced_code("5.7"));
    assert!(!is_enhanced_code("5.7.1234"));
}

#[test]
fn an_imap_code_is_recognised_in_the_text_when_the_parser_dropped_it() {
    let observation = Observation::Imap {
        code: None,
        text: "[UNAVAILABLE] Temporary authentication failure.",
    };
    assert_eq!(explain(&observation).unwrap().id, "imap.unavailable");
}

#[test]
fn an_aadsts_code_wins_over_the_generic_error_it_comes_with() {
    let observation = oauth(
        401,
        "invalid_client",
        "AADSTS7000222: expired",
        &[7_000_222],
    );
    assert_eq!(explain(&observation).unwrap().id, "microsoft.aadsts7000222");
}

#[test]
fn entries_serialize_without_their_matcher() {
    let json = serde_json::to_value(by_id("google.invalid_grant").unwrap()).unwrap();
    assert_eq!(json["provider"], "google");
    assert_eq!(json["transient"], false);
    assert!(json.get("matcher").is_none());
}

#[test]
fn the_plain_string_helpers_agree_with_explain() {
    assert_eq!(
        explain_oauth(
            401,
            Some("invalid_client"),
            Some("AADSTS7000222: expired"),
            &[7_000_222]
        )
        .unwrap()
        .id,
        "microsoft.aadsts7000222"
    );
    assert_eq!(
        explain_imap(Some("UNAVAILABLE"), "Temporary authentication failure.")
            .unwrap()
            .id,
        "imap.unavailable"
    );
    assert_eq!(
        explain_smtp(535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.")
            .unwrap()
            .id,
        "microsoft.smtp_auth_disabled"
    );
    assert_eq!(
        explain_sasl("400", Some("https://mail.google.com/"), false)
            .unwrap()
            .id,
        "sasl.insufficient_scope"
    );
    assert_eq!(
        explain_condition(Condition::NoRefreshToken).unwrap().id,
        "oauth.no_refresh_token"
    );
    assert!(explain_imap(None, "[TRYCREATE] Mailbox doesn't exist").is_none());
}

#[test]
fn annotate_appends_cause_fix_and_id_and_leaves_unknown_errors_alone() {
    let entry = by_id("google.invalid_grant").unwrap();
    let annotated = entry.annotate("refresh failed (invalid_grant) ");
    assert!(
        annotated.starts_with("refresh failed (invalid_grant) — "),
        "{annotated}"
    );
    assert!(annotated.contains(entry.cause), "{annotated}");
    assert!(
        annotated.contains(&format!("Fix: {}", entry.fix)),
        "{annotated}"
    );
    assert!(annotated.ends_with("[google.invalid_grant]"), "{annotated}");
    assert_eq!(annotate("something new", None), "something new");
    assert_eq!(annotate("x", Some(entry)), entry.annotate("x"));
}
