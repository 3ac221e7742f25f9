//! The table itself: read top to bottom, first match wins, so specific entries stand above generic ones.
//!
//! Non-goal: completeness. An unknown response is reported as it is, with no advice, rather than with
//! a guess. Key decision: every text fragment here is copied from a real response (PROVIDERS.md, the
//! providers' documentation, or the test rig's Dovecot); `tests.rs` replays each one.

use super::{Condition, Entry, Matcher, Provider};

const ENTRA_ERROR_CODES: &str =
    "https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes";
const MICROSOFT_OAUTH_MAIL: &str = "https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth";
const GOOGLE_TOKEN_EXPIRY: &str =
    "https://developers.google.com/identity/protocols/oauth2#expiration";
const GOOGLE_OFFLINE: &str =
    "https://developers.google.com/identity/protocols/oauth2/web-server#offline";
const RFC_5530: &str = "https://www.rfc-editor.org/rfc/rfc5530";
const RFC_7628: &str = "https://www.rfc-editor.org/rfc/rfc7628#section-3.2.2";

const fn oauth_error(error: &'static str) -> Matcher {
    Matcher::OAuth {
        error: Some(error),
        aadsts: None,
        min_status: None,
        text: &[],
    }
}

const fn aadsts(code: u32) -> Matcher {
    Matcher::OAuth {
        error: None,
        aadsts: Some(code),
        min_status: None,
        text: &[],
    }
}

const fn imap(code: Option<&'static str>, text: &'static [&'static str]) -> Matcher {
    Matcher::Imap { code, text }
}

const fn smtp(
    code: Option<u16>,
    enhanced: Option<&'static str>,
    text: &'static [&'static str],
) -> Matcher {
    Matcher::Smtp {
        code,
        enhanced,
        text,
    }
}

/// The catalogue, in matching order.
pub(super) static ENTRIES: &[Entry] = &[
    // ---- Microsoft token endpoint: AADSTS codes say more than the `error` they come with. ----
    Entry {
        id: "microsoft.aadsts700082",
        provider: Provider::Microsoft,
        matcher: aadsts(700_082),
        cause: "The refresh token expired because it went unused for 90 days (AADSTS700082).",
        fix: "The user must authorize Postern again. Postern refreshes every grant at least daily to \
              prevent this; a grant that still idled 90 days was disabled or unreachable that long.",
        transient: false,
        docs: Some(ENTRA_ERROR_CODES),
    },
    Entry {
        id: "microsoft.aadsts7000222",
        provider: Provider::Microsoft,
        matcher: aadsts(7_000_222),
        cause: "The app's client secret has expired (AADSTS7000222). Every account using this app \
                fails until it is replaced: an app-level problem, not the user's.",
        fix: "In the Entra admin center (App registrations > the app > Certificates & secrets) create a \
              new client secret and store its Value in the app's Postern settings. Note the new \
              expiry date (at most 24 months).",
        transient: false,
        docs: Some(ENTRA_ERROR_CODES),
    },
    Entry {
        id: "microsoft.aadsts7000215",
        provider: Provider::Microsoft,
        matcher: aadsts(7_000_215),
        cause: "The client secret is wrong (AADSTS7000215); often the secret's ID was pasted instead \
                of its Value. Every account using this app fails.",
        fix: "Copy the secret's Value (shown once, at creation) into the app's Postern settings; if it \
              is lost, create a new secret.",
        transient: false,
        docs: Some(ENTRA_ERROR_CODES),
    },
    Entry {
        id: "microsoft.aadsts700016",
        provider: Provider::Microsoft,
        matcher: aadsts(700_016),
        cause: "No application with this client id exists in the directory (AADSTS700016): a wrong \
                client id, or the request went to the wrong tenant.",
        fix: "Check the app's client id (Application (client) ID in Entra) and its tenant: a \
              single-tenant app must use its tenant id, not `common`.",
        transient: false,
        docs: Some(ENTRA_ERROR_CODES),
    },
    Entry {
        id: "microsoft.aadsts28000",
        provider: Provider::Microsoft,
        matcher: aadsts(28_000),
        cause: "The requested scopes span more than one resource (AADSTS28000), e.g. \
                outlook.office.com mail scopes together with graph.microsoft.com ones: one token \
                cannot serve two resources.",
        fix: "Request only https://outlook.office.com/IMAP.AccessAsUser.All, \
              https://outlook.office.com/SMTP.Send and offline_access in the app's scopes.",
        transient: false,
        docs: Some(MICROSOFT_OAUTH_MAIL),
    },
    Entry {
        id: "microsoft.aadsts70011",
        provider: Provider::Microsoft,
        matcher: aadsts(70_011),
        cause: "A requested scope is not valid (AADSTS70011): misspelled, in the wrong format, or \
                mixing resources.",
        fix: "Use exactly https://outlook.office.com/IMAP.AccessAsUser.All, \
              https://outlook.office.com/SMTP.Send and offline_access (app-only: \
              https://outlook.office365.com/.default).",
        transient: false,
        docs: Some(MICROSOFT_OAUTH_MAIL),
    },
    Entry {
        id: "microsoft.aadsts50173",
        provider: Provider::Microsoft,
        matcher: aadsts(50_173),
        cause: "The grant was revoked, typically because the user changed or reset their password \
                (AADSTS50173).",
        fix: "The user must authorize Postern again.",
        transient: false,
        docs: Some(ENTRA_ERROR_CODES),
    },
    Entry {
        id: "microsoft.aadsts65001",
        provider: Provider::Microsoft,
        matcher: aadsts(65_001),
        cause: "The user or an administrator has not consented to the app's permissions \
                (AADSTS65001).",
        fix: "Authorize again; if the tenant requires it, an administrator grants consent for the \
              organisation (Enterprise applications > the app > Permissions).",
        transient: false,
        docs: Some(ENTRA_ERROR_CODES),
    },
    Entry {
        id: "microsoft.aadsts53003",
        provider: Provider::Microsoft,
        matcher: aadsts(53_003),
        cause: "A Conditional Access policy of the tenant blocks this sign-in (AADSTS53003).",
        fix: "A tenant administrator must allow the app (or Postern's network location) in the \
              Conditional Access policy.",
        transient: false,
        docs: Some(ENTRA_ERROR_CODES),
    },
    Entry {
        id: "microsoft.interaction_required",
        provider: Provider::Microsoft,
        matcher: oauth_error("interaction_required"),
        cause: "The provider wants the user back in the browser (multi-factor authentication or a \
                new policy, e.g. AADSTS50076 / AADSTS50079).",
        fix: "The user must authorize Postern again and complete the prompt.",
        transient: false,
        docs: Some(ENTRA_ERROR_CODES),
    },
    // ---- Google and generic token endpoint answers. ----
    Entry {
        id: "google.invalid_grant",
        provider: Provider::Google,
        matcher: Matcher::OAuth {
            error: Some("invalid_grant"),
            aadsts: None,
            min_status: None,
            text: &["Token has been expired or revoked"],
        },
        cause: "Google no longer accepts the refresh token. Usual causes: the app's consent screen is \
                in \"Testing\" (refresh tokens die 7 days after consent); the grant went unused for \
                6 months; the user changed their password or revoked access; the user holds too many \
                refresh tokens for this client (the oldest are dropped).",
        fix: "The user must authorize Postern again. To stop weekly expiry, set the consent screen's \
              publishing status to \"In production\" in Google Cloud console (OAuth consent screen).",
        transient: false,
        docs: Some(GOOGLE_TOKEN_EXPIRY),
    },
    Entry {
        id: "oauth.invalid_grant",
        provider: Provider::Any,
        matcher: oauth_error("invalid_grant"),
        cause: "The provider refuses the grant (invalid_grant): it was revoked, expired, or replaced \
                by a newer refresh token.",
        fix: "The user must authorize Postern again.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "oauth.invalid_client",
        provider: Provider::Any,
        matcher: oauth_error("invalid_client"),
        cause: "The provider refuses the app itself (invalid_client): a wrong client id or secret, \
                or a deleted client. Every account using this app fails.",
        fix: "Check the app's client id and secret against the provider's console and update them \
              in Postern.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "oauth.unauthorized_client",
        provider: Provider::Any,
        matcher: oauth_error("unauthorized_client"),
        cause: "The app is not allowed to use this grant type (unauthorized_client), e.g. a client \
                registered without refresh or client-credentials rights.",
        fix: "Enable the grant type for the client in the provider's console (Microsoft: \"Allow \
              public client flows\" for the device flow; application permissions for app-only).",
        transient: false,
        docs: None,
    },
    Entry {
        id: "oauth.invalid_scope",
        provider: Provider::Any,
        matcher: oauth_error("invalid_scope"),
        cause: "The provider refuses a requested scope (invalid_scope).",
        fix: "Use the provider's mail scopes: Google https://mail.google.com/; Microsoft \
              https://outlook.office.com/IMAP.AccessAsUser.All and SMTP.Send with offline_access.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "oauth.temporarily_unavailable",
        provider: Provider::Any,
        matcher: oauth_error("temporarily_unavailable"),
        cause: "The provider's token endpoint is temporarily unavailable.",
        fix: "Nothing to change: Postern retries with back-off.",
        transient: true,
        docs: None,
    },
    Entry {
        id: "oauth.provider_unavailable",
        provider: Provider::Any,
        matcher: Matcher::OAuth {
            error: None,
            aadsts: None,
            min_status: Some(500),
            text: &[],
        },
        cause: "The provider's token endpoint is failing (HTTP 5xx).",
        fix: "Nothing to change: Postern retries with back-off. Check the provider's status page if \
              it lasts.",
        transient: true,
        docs: None,
    },
    Entry {
        id: "oauth.no_refresh_token",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::NoRefreshToken),
        cause: "The grant holds no refresh token, so the account stops working when its access token \
                expires. Google sends one only with access_type=offline and prompt=consent; \
                Microsoft only when the scopes include offline_access.",
        fix: "Add access_type=offline and prompt=consent (Google) or the offline_access scope \
              (Microsoft) to the app, then authorize the account again.",
        transient: false,
        docs: Some(GOOGLE_OFFLINE),
    },
    Entry {
        id: "oauth.token_endpoint_unreachable",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::TokenEndpointUnreachable),
        cause: "The provider's token endpoint cannot be reached from here (DNS, connection or \
                timeout): the provider or this network is down.",
        fix: "Nothing to change in Postern if it passes; otherwise check this host's outbound HTTPS \
              (proxy, firewall) and the app's token URL. Access tokens keep working until they \
              expire.",
        transient: true,
        docs: None,
    },
    // ---- SASL error challenges (decoded JSON before the tagged NO / 535). ----
    Entry {
        id: "sasl.insufficient_scope",
        provider: Provider::Any,
        matcher: Matcher::Sasl {
            status: &["400", "insufficient_scope"],
            scope: Some(true),
            token_just_refreshed: None,
        },
        cause: "The server accepted the token but not its scope: the grant lacks the mail scope the \
                server names. Google also answers this way when the login name is not the token's \
                account.",
        fix: "Add the scope the server names (Google: https://mail.google.com/) to the app and \
              authorize again; check the account's email is the address the user signed in with. \
              A refresh does not help.",
        transient: false,
        docs: Some(RFC_7628),
    },
    Entry {
        id: "sasl.fresh_token_rejected",
        provider: Provider::Any,
        matcher: Matcher::Sasl {
            status: &["401", "invalid_token"],
            scope: None,
            token_just_refreshed: Some(true),
        },
        cause: "The server rejected a token issued moments ago, so it is not expired: the token \
                belongs to another account than the login name (user= in XOAUTH2), or the account \
                lacks mail permission.",
        fix: "Make the account's email the exact address the user authorized (the consent screen's \
              account), or authorize again signed in as this mailbox.",
        transient: false,
        docs: Some(RFC_7628),
    },
    Entry {
        id: "sasl.token_rejected",
        provider: Provider::Any,
        matcher: Matcher::Sasl {
            status: &["401", "invalid_token"],
            scope: None,
            token_just_refreshed: None,
        },
        cause: "The server rejected the access token as expired, revoked or unknown.",
        fix: "Postern refreshes the token and retries once by itself; if refreshing fails too, the \
              user must authorize again.",
        transient: true,
        docs: Some(RFC_7628),
    },
    // ---- IMAP: provider-specific texts first, then the RFC 5530 codes. ----
    Entry {
        id: "google.too_many_connections",
        provider: Provider::Google,
        matcher: imap(None, &["Too many simultaneous connections"]),
        cause: "Gmail allows about 15 simultaneous IMAP connections per account; this one is over \
                the limit (other clients count too).",
        fix: "Close other IMAP clients of this mailbox or lower Postern's connections per account; \
              it passes when connections close.",
        transient: true,
        docs: Some("https://support.google.com/mail/answer/97150"),
    },
    Entry {
        id: "google.bandwidth_limit",
        provider: Provider::Google,
        matcher: imap(Some("OVERQUOTA"), &["bandwidth"]),
        cause: "Gmail's daily IMAP download or command limit for this account is used up \
                ([OVERQUOTA] Account exceeded command or bandwidth limits).",
        fix: "Wait: the limit resets within a day. Avoid full re-downloads of large mailboxes.",
        transient: true,
        docs: Some("https://support.google.com/a/answer/1071518"),
    },
    Entry {
        id: "google.imap_disabled",
        provider: Provider::Google,
        matcher: imap(None, &["not enabled for IMAP"]),
        cause: "IMAP access is turned off for this Gmail account or Workspace organisation.",
        fix: "Enable IMAP in Gmail settings (Forwarding and POP/IMAP), or ask the Workspace admin \
              to allow it.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "google.app_password_required",
        provider: Provider::Google,
        matcher: imap(None, &["Application-specific password required"]),
        cause: "The account has 2-Step Verification: Google refuses its normal password over IMAP.",
        fix: "Connect the account with OAuth2, or create an app password and store that instead.",
        transient: false,
        docs: Some("https://support.google.com/accounts/answer/185833"),
    },
    Entry {
        id: "google.web_login_required",
        provider: Provider::Google,
        matcher: imap(None, &["log in via your web browser"]),
        cause: "Google blocked the sign-in as suspicious and wants the user to confirm it in a \
                browser.",
        fix: "Connect the account with OAuth2 (recommended), or have the user sign in on the web \
              and confirm the blocked attempt.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "microsoft.authenticated_not_connected",
        provider: Provider::Microsoft,
        matcher: imap(None, &["User is authenticated but not connected"]),
        cause: "Exchange accepted the login but cannot open the mailbox: the token's user differs \
                from the mailbox named in the login, or lacks permission to it (app-only access \
                without a mailbox permission).",
        fix: "Make the account's email the mailbox the token was issued for; for app-only access \
              give the app's service principal FullAccess to the mailbox \
              (Add-MailboxPermission).",
        transient: false,
        docs: Some(MICROSOFT_OAUTH_MAIL),
    },
    Entry {
        id: "microsoft.authenticate_failed",
        provider: Provider::Microsoft,
        matcher: imap(None, &["AUTHENTICATE failed"]),
        cause: "Exchange rejected the token with no reason given. Usual causes: a token for the \
                wrong resource (graph.microsoft.com instead of outlook.office.com scopes), a token \
                of another user than the login name, IMAP disabled for the mailbox, or app-only \
                access without the Exchange service principal registered.",
        fix: "Check the app's scopes (https://outlook.office.com/IMAP.AccessAsUser.All), that the \
              account's email is the signed-in user, and that IMAP is enabled for the mailbox in \
              the Exchange admin center.",
        transient: false,
        docs: Some(MICROSOFT_OAUTH_MAIL),
    },
    Entry {
        id: "microsoft.login_failed",
        provider: Provider::Microsoft,
        matcher: imap(None, &["LOGIN failed"]),
        cause: "Exchange Online refused a password login: basic authentication is turned off for \
                IMAP.",
        fix: "Connect the account with OAuth2 instead of a password.",
        transient: false,
        docs: Some(MICROSOFT_OAUTH_MAIL),
    },
    Entry {
        id: "yahoo.invalid_credentials",
        provider: Provider::Yahoo,
        matcher: imap(Some("AUTHENTICATIONFAILED"), &["LOGIN Invalid credentials"]),
        cause: "Yahoo refused the password: its IMAP server accepts only app passwords, not the \
                account password.",
        fix: "Generate an app password in the Yahoo account's security settings and store it as \
              this account's password.",
        transient: false,
        docs: Some("https://help.yahoo.com/kb/SLN15241.html"),
    },
    Entry {
        id: "dovecot.too_many_connections",
        provider: Provider::Dovecot,
        matcher: imap(
            None,
            &["Maximum number of connections from user+IP exceeded"],
        ),
        cause: "The server limits connections per user and address (mail_max_userip_connections) \
                and this one is over it.",
        fix: "Close other connections of this mailbox, or raise mail_max_userip_connections on the \
              server; it passes when connections close.",
        transient: true,
        docs: None,
    },
    Entry {
        id: "imap.unavailable",
        provider: Provider::Any,
        matcher: imap(Some("UNAVAILABLE"), &[]),
        cause: "The server could not check the login right now ([UNAVAILABLE]): typically its OAuth \
                token check (introspection at the provider) or its user database is down. Not a \
                bad token.",
        fix: "Nothing to change: retry later. If it lasts, the server's operator must check its \
              connection to the token provider.",
        transient: true,
        docs: Some(RFC_5530),
    },
    Entry {
        id: "imap.authentication_failed",
        provider: Provider::Any,
        matcher: imap(Some("AUTHENTICATIONFAILED"), &[]),
        cause: "The server refused the user name or the password/token ([AUTHENTICATIONFAILED]).",
        fix: "Check the login name and store the right password (or an app password where the \
              provider requires one); for OAuth2, authorize the account again.",
        transient: false,
        docs: Some(RFC_5530),
    },
    Entry {
        id: "imap.expired",
        provider: Provider::Any,
        matcher: imap(Some("EXPIRED"), &[]),
        cause: "The account's password has expired ([EXPIRED]).",
        fix: "The user must set a new password, then store it in Postern.",
        transient: false,
        docs: Some(RFC_5530),
    },
    Entry {
        id: "imap.overquota",
        provider: Provider::Any,
        matcher: imap(Some("OVERQUOTA"), &[]),
        cause: "The mailbox is over its quota ([OVERQUOTA]).",
        fix: "Free space in the mailbox or raise its quota.",
        transient: false,
        docs: Some(RFC_5530),
    },
    Entry {
        id: "imap.in_use",
        provider: Provider::Any,
        matcher: imap(Some("INUSE"), &[]),
        cause: "The mailbox is locked by another operation ([INUSE]).",
        fix: "Nothing to change: retry later.",
        transient: true,
        docs: Some(RFC_5530),
    },
    // ---- SMTP: provider texts first, then generic reply codes. ----
    Entry {
        id: "google.daily_sending_limit",
        provider: Provider::Google,
        matcher: smtp(Some(550), Some("5.4.5"), &["Daily user sending"]),
        cause: "The account reached Gmail's daily sending limit (about 500 recipients a day for \
                Gmail, 2,000 for Workspace).",
        fix: "Wait until the limit resets (a rolling 24 hours); spread sending over several \
              accounts or use a sending service for bulk mail.",
        transient: true,
        docs: Some("https://support.google.com/a/answer/166852"),
    },
    Entry {
        id: "google.smtp_app_password_required",
        provider: Provider::Google,
        matcher: smtp(
            Some(534),
            Some("5.7.9"),
            &["Application-specific password required"],
        ),
        cause: "The account has 2-Step Verification: Google refuses its normal password over SMTP.",
        fix: "Connect the account with OAuth2, or create an app password and store that instead.",
        transient: false,
        docs: Some("https://support.google.com/accounts/answer/185833"),
    },
    Entry {
        id: "google.smtp_bad_credentials",
        provider: Provider::Google,
        matcher: smtp(
            Some(535),
            Some("5.7.8"),
            &["Username and Password not accepted"],
        ),
        cause: "Gmail refused the login: a wrong password, an account password where only app \
                passwords or OAuth2 are accepted, or a token for another user.",
        fix: "Connect the account with OAuth2, or store an app password.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "microsoft.smtp_auth_disabled",
        provider: Provider::Microsoft,
        matcher: smtp(
            Some(535),
            Some("5.7.139"),
            &["SmtpClientAuthentication is disabled"],
        ),
        cause: "Authenticated SMTP submission (SMTP AUTH) is turned off for the tenant or this \
                mailbox; it is off by default in newer Microsoft 365 tenants.",
        fix: "An Exchange admin enables \"Authenticated SMTP\" for the mailbox (Microsoft 365 admin \
              center > user > Mail > Manage email apps), or tenant-wide with \
              Set-TransportConfig -SmtpClientAuthenticationDisabled $false.",
        transient: false,
        docs: Some("https://aka.ms/smtp_auth_disabled"),
    },
    Entry {
        id: "microsoft.security_defaults",
        provider: Provider::Microsoft,
        matcher: smtp(Some(535), Some("5.7.139"), &["security defaults"]),
        cause: "The tenant's security defaults block SMTP AUTH for this user.",
        fix: "A tenant admin must turn off security defaults or move to Conditional Access \
              policies that allow this app; or send through another route.",
        transient: false,
        docs: Some("https://aka.ms/smtp_auth_disabled"),
    },
    Entry {
        id: "microsoft.basic_auth_disabled",
        provider: Provider::Microsoft,
        matcher: smtp(
            Some(535),
            Some("5.7.139"),
            &["basic authentication is disabled"],
        ),
        cause: "Exchange Online refused a password login over SMTP: basic authentication is off.",
        fix: "Connect the account with OAuth2 instead of a password.",
        transient: false,
        docs: Some("https://aka.ms/smtp_auth_disabled"),
    },
    Entry {
        id: "microsoft.smtp_auth_unsuccessful",
        provider: Provider::Microsoft,
        matcher: smtp(Some(535), Some("5.7.3"), &["Authentication unsuccessful"]),
        cause: "Exchange refused the SMTP login with no reason given: usually a token without the \
                SMTP.Send scope, a token of another user than the login name, or a wrong password.",
        fix: "Add https://outlook.office.com/SMTP.Send to the app's scopes and authorize again; \
              check the account's email is the signed-in user.",
        transient: false,
        docs: Some(MICROSOFT_OAUTH_MAIL),
    },
    Entry {
        id: "microsoft.invalid_xoauth2_data",
        provider: Provider::Microsoft,
        matcher: smtp(Some(501), Some("5.5.124"), &["Invalid XOAUTH2 auth data"]),
        cause: "Exchange could not read the XOAUTH2 message: the user address in it is not valid \
                for this tenant, or the message is malformed.",
        fix: "Make the account's email the mailbox's primary address (the user's UPN where they \
              differ).",
        transient: false,
        docs: Some(MICROSOFT_OAUTH_MAIL),
    },
    Entry {
        id: "microsoft.send_as_denied",
        provider: Provider::Microsoft,
        matcher: smtp(None, None, &["SendAsDenied"]),
        cause: "The logged-in user may not send as this sender address.",
        fix: "Send from the account's own address, or grant it Send As permission on the other \
              mailbox in Exchange.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "yahoo.too_many_bad_auth",
        provider: Provider::Yahoo,
        matcher: smtp(Some(535), None, &["#AUTH005"]),
        cause: "Yahoo refused the login after too many failed attempts; Yahoo accepts only app \
                passwords (or OAuth2), so an account password fails every time.",
        fix: "Generate an app password in the Yahoo account's security settings and store it; the \
              lock lifts after a while.",
        transient: false,
        docs: Some("https://help.yahoo.com/kb/SLN15241.html"),
    },
    Entry {
        id: "smtp.temporary_auth_failure",
        provider: Provider::Any,
        matcher: smtp(Some(454), None, &[]),
        cause: "The server could not check the login right now (454): its token check or user \
                database is down, or it rate-limits logins.",
        fix: "Nothing to change: retry later.",
        transient: true,
        docs: None,
    },
    Entry {
        id: "smtp.auth_failed",
        provider: Provider::Any,
        matcher: smtp(Some(535), None, &[]),
        cause: "The SMTP server refused the user name or the password/token (535).",
        fix: "Check the login name and store the right password (or an app password where the \
              provider requires one); for OAuth2, authorize the account again.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "smtp.mechanism_unsupported",
        provider: Provider::Any,
        matcher: smtp(Some(504), None, &[]),
        cause: "The SMTP server does not accept this authentication mechanism (504).",
        fix: "Use a mechanism listed in the server's EHLO AUTH line (Microsoft: XOAUTH2 only).",
        transient: false,
        docs: None,
    },
    Entry {
        id: "smtp.authentication_required",
        provider: Provider::Any,
        matcher: smtp(Some(530), None, &[]),
        cause: "The SMTP server wants authentication (or STARTTLS) before this command (530).",
        fix: "Give the account credentials the server accepts; on port 587 use STARTTLS.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "smtp.unknown_recipient",
        provider: Provider::Any,
        matcher: smtp(Some(550), Some("5.1.1"), &[]),
        cause: "The server says the address does not exist (550 5.1.1).",
        fix: "Check the account's email address.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "smtp.policy_rejected",
        provider: Provider::Any,
        matcher: smtp(None, Some("5.7.1"), &[]),
        cause: "The server refused the sender or recipient for policy reasons (5.7.1), e.g. \
                relaying not allowed or a sender address the login may not use.",
        fix: "Send from the account's own address after logging in; check the server's relay \
              rules.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "smtp.service_unavailable",
        provider: Provider::Any,
        matcher: smtp(Some(421), None, &[]),
        cause: "The SMTP server is closing the connection for now (421): overloaded, rate-limited \
                or shutting down.",
        fix: "Nothing to change: retry later.",
        transient: true,
        docs: None,
    },
    // ---- Conditions the client sees itself. ----
    Entry {
        id: "net.host_not_found",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::HostNotFound),
        cause: "The host name does not resolve.",
        fix: "Check the host name for typos (imap.gmail.com, outlook.office365.com, \
              imap.mail.yahoo.com) and this machine's DNS.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "net.connection_refused",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::ConnectionRefused),
        cause: "Nothing accepts connections on this port: a wrong port, or the server is down.",
        fix: "Check the port: IMAP 993 (TLS) or 143 (STARTTLS); SMTP 465 (TLS) or 587 \
              (STARTTLS).",
        transient: false,
        docs: None,
    },
    Entry {
        id: "net.connect_timeout",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::ConnectTimeout),
        cause: "The connection did not open in time: a firewall drops the packets, the address is \
                wrong, or the network is down.",
        fix: "Check outbound access from this host to the port (firewalls often block 25 and \
              465/587), and the host name.",
        transient: true,
        docs: None,
    },
    Entry {
        id: "net.unreachable",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::NetworkUnreachable),
        cause: "The network or host is unreachable from this machine.",
        fix: "Check this machine's network and routes (IPv6 without a route is a common case).",
        transient: true,
        docs: None,
    },
    Entry {
        id: "tls.untrusted_certificate",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::UntrustedCertificate),
        cause: "The server's certificate does not lead to a trusted root: it is self-signed or \
                issued by a private CA Postern is not told to trust.",
        fix: "Set the endpoint's ca_file to the PEM of the CA that issued the server's certificate \
              (Postern never turns verification off), or install a certificate from a public CA on \
              the server.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "tls.hostname_mismatch",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::HostnameMismatch),
        cause: "The certificate is not valid for the host name Postern connects to.",
        fix: "Use the host name the certificate names (see the evidence), or give the server a \
              certificate that includes this name.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "tls.certificate_expired",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::CertificateExpired),
        cause: "The server's certificate has expired (or this machine's clock is wrong).",
        fix: "Renew the server's certificate; check this machine's clock.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "tls.certificate_not_yet_valid",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::CertificateNotYetValid),
        cause: "The server's certificate is not valid yet: this machine's clock is behind, or the \
                certificate was issued with a future start date.",
        fix: "Check this machine's clock (NTP).",
        transient: false,
        docs: None,
    },
    Entry {
        id: "tls.handshake_failed",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::TlsHandshakeFailed),
        cause: "The TLS handshake failed for a reason other than the certificate: no common \
                protocol version (Postern requires TLS 1.2 or later) or cipher, or the server \
                aborted.",
        fix: "Enable TLS 1.2 or 1.3 on the server; see the evidence for the alert received.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "tls.plaintext_port",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::TlsOnPlainPort),
        cause: "Postern started TLS but the server answered in plain text: this port expects \
                STARTTLS (or no TLS).",
        fix: "Set the endpoint's security to starttls, or use the implicit-TLS port (IMAP 993, \
              SMTP 465).",
        transient: false,
        docs: None,
    },
    Entry {
        id: "net.no_greeting",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::NoGreeting),
        cause: "The server accepted the connection but sent no greeting: usually a port that \
                expects TLS from the first byte, spoken to in plain text.",
        fix: "Set the endpoint's security to tls for ports 993 and 465.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "tls.starttls_missing",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::StartTlsMissing),
        cause: "The server does not offer STARTTLS, so the connection would stay unencrypted; \
                Postern refuses to send credentials in clear (an attacker can strip STARTTLS).",
        fix: "Use the implicit-TLS port (IMAP 993, SMTP 465) with security tls, or enable STARTTLS \
              on the server.",
        transient: false,
        docs: None,
    },
    Entry {
        id: "sasl.mechanism_not_offered",
        provider: Provider::Any,
        matcher: Matcher::Condition(Condition::MechanismNotOffered),
        cause: "The server does not offer the login mechanism this account uses (see the evidence \
                for what it offers).",
        fix: "Pick a mechanism the server offers (Microsoft accepts only XOAUTH2; Yahoo and Dovecot \
              OAUTHBEARER), or enable the mechanism on the server (Dovecot: auth_mechanisms).",
        transient: false,
        docs: None,
    },
];
