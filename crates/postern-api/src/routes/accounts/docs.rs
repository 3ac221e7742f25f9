//! Schemas of the bodies the account routes read or return as types of the crates below
//! ([`postern_accounts::NewAccountInput`], [`postern_doctor::Report`]), which stay free of OpenAPI.
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
    "auth": {"type": "password", "password": "app-password"}
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
        serde_json::from_value::<postern_accounts::NewAccountInput>(example).unwrap();
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
