//! Schemas of the bodies the account routes read or return as types of the crates below
//! ([`postern_accounts::NewAccountInput`], [`postern_doctor::Report`]) or read as plain JSON (the
//! `settings` object, checked field by field in `settings.rs`), which stay free of OpenAPI.
//!
//! Non-goal: being used on the wire; the handlers read and write the real types. Key decision: the
//! tests below hold each description to its real type (an example of the description parses as the
//! real request; a real report's fields are all described), so the two cannot drift apart silently.
#![allow(dead_code)] // the fields only describe

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

/// `POST /v1/accounts`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "email": "alice@example.com",
    "imap": {"host": "imap.example.com", "port": 993, "security": "tls"},
    "smtp": {"host": "smtp.example.com", "port": 587, "security": "starttls"},
    "auth": {"type": "password", "password": "app-password"},
    "settings": {"sync_mailboxes": ["INBOX", "Projects/*"], "send_daily_limit": 500}
}))]
pub(super) struct AccountRequest {
    /// The mailbox address.
    email: String,
    /// A display name.
    name: Option<String>,
    /// The IMAP server; default: the OAuth app's provider preset.
    imap: Option<EndpointRequest>,
    /// The SMTP server; default: the OAuth app's provider preset.
    smtp: Option<EndpointRequest>,
    /// How the account authenticates.
    auth: AuthRequest,
    /// The account's own settings; omit for the defaults.
    settings: Option<SettingsRequest>,
}

/// An account's settings. Each one is optional: omitted (or `null`), it takes its default — the
/// provider's preset for the SMTP host (Gmail: 500 messages a day; Microsoft 365 and Outlook.com:
/// 30 a minute and 10,000 a day; Yahoo: 500 a day), else the server's configuration.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sync_mailboxes": ["INBOX", "Projects/%"], "sent_copy": "never", "send_daily_limit": 2000}))]
pub(super) struct SettingsRequest {
    /// The mailboxes that sync: names as the server spells them (`INBOX` in any case) and IMAP
    /// `LIST` patterns (`*` matches any characters, `%` any within one hierarchy level). At least
    /// one; `null` for every mailbox. A mailbox that stops being selected is dropped from the
    /// store with its messages.
    #[schema(min_items = 1)]
    sync_mailboxes: Option<Vec<String>>,
    /// Described by `sent_copy_modes`.
    #[schema(schema_with = super::settings::sent_copy_modes)]
    sent_copy: Option<String>,
    /// At most this many messages a minute, evenly paced; more wait in the queue.
    #[schema(minimum = 1, maximum = 4_294_967_295_u64)]
    send_rate_per_minute: Option<u32>,
    /// At most this many messages in any 24 hours; more wait in the queue (not failed) until the
    /// oldest send leaves the window. Counted from the store, so it survives restarts.
    #[schema(minimum = 1, maximum = 4_294_967_295_u64)]
    send_daily_limit: Option<u32>,
}

/// `PATCH /v1/accounts/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"settings": {"send_daily_limit": 2000, "sent_copy": null}}))]
pub(super) struct AccountChange {
    /// The settings to change, as a JSON merge patch (RFC 7396): a setting given is set, `null`
    /// returns it to its default, an omitted one stays as it is. `null` for the whole object
    /// returns every setting to its default.
    #[schema(required = true)]
    settings: Option<SettingsRequest>,
}

/// A mail server.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EndpointRequest {
    /// Host name or address.
    host: String,
    /// Port, 1 to 65535.
    #[schema(minimum = 1, maximum = 65535)]
    port: u16,
    /// `tls` (implicit), `starttls`, or `none` (loopback hosts only).
    #[schema(schema_with = super::securities)]
    security: String,
    /// A PEM file of CA certificates to trust instead of the system's (self-hosted servers).
    ca_file: Option<String>,
}

/// How an account authenticates, by `type`.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", deny_unknown_fields)]
enum AuthRequest {
    /// A user's OAuth2 grant: the answer carries the link to consent.
    #[serde(rename = "oauth2")]
    OAuth2 {
        /// The OAuth app.
        app_id: String,
        /// `xoauth2` (default) or `oauthbearer`.
        #[schema(schema_with = super::mechanisms)]
        mechanism: Option<String>,
    },
    /// App-only access (client credentials), e.g. a Microsoft 365 tenant.
    #[serde(rename = "oauth2_app")]
    OAuth2App {
        /// The OAuth app.
        app_id: String,
        /// `xoauth2` (default) or `oauthbearer`.
        #[schema(schema_with = super::mechanisms)]
        mechanism: Option<String>,
    },
    /// A password (or app password), over TLS only.
    #[serde(rename = "password")]
    Password {
        /// The login name; default: the email address.
        username: Option<String>,
        /// The password: sealed at once, never returned.
        password: String,
    },
}

/// The doctor's report.
#[derive(ToSchema)]
pub(super) struct Diagnosis {
    /// What was diagnosed: `account_id`, `email`, and `imap` / `smtp` as `host:port (security)`.
    #[schema(value_type = Object)]
    target: (),
    /// When the diagnosis started.
    started_at: DateTime<Utc>,
    /// How long it took in all, in milliseconds.
    duration_ms: u64,
    /// The worst status of any step (`pass` when every step passed or was skipped).
    #[schema(schema_with = step_statuses)]
    overall: String,
    /// The steps, in the order they ran.
    steps: Vec<DiagnosisStep>,
}

/// One step of a diagnosis.
#[derive(ToSchema)]
struct DiagnosisStep {
    /// Which check, e.g. `imap.tls`.
    name: String,
    /// Its verdict.
    #[schema(schema_with = step_statuses)]
    status: String,
    /// How long it took, in milliseconds.
    duration_ms: u64,
    /// One line: what was found.
    summary: String,
    /// What was seen: server replies, certificate facts, capabilities.
    evidence: Option<Vec<String>>,
    /// What to do, when something needs doing.
    fix: Option<String>,
    /// The catalogue's explanation (`id`, `provider`, `cause`, `transient`, `docs`), when it knows
    /// the response.
    #[schema(value_type = Option<Object>)]
    known_error: (),
}

fn step_statuses() -> utoipa::openapi::schema::Schema {
    crate::openapi::one_of(["skip", "pass", "warn", "fail"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use utoipa::PartialSchema;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    fn properties(schema: RefOr<Schema>) -> BTreeSet<String> {
        match schema {
            RefOr::T(Schema::Object(object)) => object.properties.into_keys().collect(),
            _ => panic!("not an object schema"),
        }
    }

    #[test]
    fn the_documented_example_is_a_valid_account_request() {
        let schema = serde_json::to_value(AccountRequest::schema()).unwrap();
        let example = schema["example"].clone();
        assert!(example.is_object(), "{schema}");
        serde_json::from_value::<AccountRequest>(example.clone()).unwrap();
        let body: super::super::CreateAccountBody = serde_json::from_value(example).unwrap();
        let settings = body.settings.expect("the example shows settings");
        super::super::settings::apply_patch(&Default::default(), &settings, "settings").unwrap();
    }

    #[test]
    fn the_documented_settings_are_the_ones_read() {
        let described = properties(SettingsRequest::schema());
        let read: BTreeSet<String> = super::super::settings::SETTINGS_KEYS
            .iter()
            .map(|key| (*key).to_owned())
            .collect();
        assert_eq!(described, read);
        let shown = properties(super::super::settings::SettingsView::schema());
        assert_eq!(shown, read);
        for schema in [SettingsRequest::schema(), AccountChange::schema()] {
            let example = serde_json::to_value(schema).unwrap()["example"].clone();
            let settings = example.get("settings").cloned().unwrap_or(example);
            super::super::settings::apply_patch(&Default::default(), &settings, "settings")
                .unwrap();
        }
    }

    #[test]
    fn every_field_of_a_real_report_is_described() {
        use postern_doctor::{Report, Status, Step, StepName, Target};
        let step = Step::new(
            StepName::ImapDns,
            Status::Fail,
            std::time::Duration::from_millis(3),
            "no such host",
        )
        .with_fix("check the host name");
        let report = Report::new(
            Target::default(),
            Utc::now(),
            std::time::Duration::from_millis(5),
            vec![step],
        );
        let json = serde_json::to_value(&report).unwrap();
        let report_fields: BTreeSet<String> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(report_fields, properties(Diagnosis::schema()));
        let step_fields: BTreeSet<String> = json["steps"][0]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let described = properties(DiagnosisStep::schema());
        assert!(
            step_fields.is_subset(&described),
            "{step_fields:?} vs {described:?}"
        );
        assert_eq!(json["overall"], "fail");
    }
}
