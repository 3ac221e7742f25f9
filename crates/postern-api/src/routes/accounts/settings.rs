//! An account's `settings` object on the wire: read field by field into
//! [`postern_store::AccountSettings`], shown back as stored, and shown resolved.
//!
//! Purpose: [`new_account_settings`] and [`changed_settings`] turn the JSON a caller sent (in
//! `POST /v1/accounts` or `PATCH /v1/accounts/{id}`) into settings, naming every wrong field at once in the error shape
//! of the other validation errors (`details.fields`); [`SettingsView`] and [`EffectiveView`] render
//! them.
//! Non-goal: deciding what the settings mean; the sync service and the outbox resolve them.
//! Key decisions:
//! - The body is read as JSON and checked by hand rather than by serde's `deny_unknown_fields`,
//!   so an unknown key is a field error (`settings.foo`), like every other field error, and all
//!   problems come back together.
//! - A patch is a JSON merge patch (RFC 7396) of the stored settings: a key with a value sets it,
//!   `null` returns it to its default, a missing key leaves it as it is.

use std::num::NonZeroU32;

use postern_accounts::FieldError;
use postern_store::{AccountSettings, SentCopyMode};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};

use crate::error::ApiError;

/// The keys a `settings` object may hold.
pub(super) const SETTINGS_KEYS: [&str; 4] = [
    "sync_mailboxes",
    "sent_copy",
    "send_rate_per_minute",
    "send_daily_limit",
];

/// `auto`, `always`, `never` or `null` (the default): the schema of a `sent_copy` setting.
pub(super) fn sent_copy_modes() -> Schema {
    let mut values: Vec<Value> = SentCopyMode::ALL
        .iter()
        .map(|mode| Value::from(mode.as_str()))
        .collect();
    values.push(Value::Null);
    let types: SchemaType = [Type::String, Type::Null].into_iter().collect();
    let description = "`auto` (copy sent mail to Sent unless the provider files it itself, as \
                       Gmail does), `always` or `never`; `null` for the default (the server's \
                       setting).";
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(types)
            .enum_values(Some(values))
            .description(Some(description))
            .build(),
    )
}

/// An account's settings as stored: what the operator chose. `null` means "the default" (the
/// provider's preset, else the server's configuration).
#[derive(Serialize, ToSchema)]
pub(super) struct SettingsView {
    /// The mailboxes that sync: names (`INBOX` in any case) and IMAP `LIST` patterns (`*` any
    /// characters, `%` any within one hierarchy level); `null` for every mailbox.
    sync_mailboxes: Option<Vec<String>>,
    /// Described by [`sent_copy_modes`].
    #[schema(schema_with = sent_copy_modes)]
    sent_copy: Option<&'static str>,
    /// At most this many messages a minute, evenly paced.
    #[schema(minimum = 1)]
    send_rate_per_minute: Option<u32>,
    /// At most this many messages in any 24 hours; more wait in the queue.
    #[schema(minimum = 1)]
    send_daily_limit: Option<u32>,
}

impl From<&AccountSettings> for SettingsView {
    fn from(settings: &AccountSettings) -> Self {
        SettingsView {
            sync_mailboxes: settings.sync_mailboxes.clone(),
            sent_copy: settings.sent_copy.map(SentCopyMode::as_str),
            send_rate_per_minute: settings.send_rate_per_minute.map(NonZeroU32::get),
            send_daily_limit: settings.send_daily_limit.map(NonZeroU32::get),
        }
    }
}

/// The settings in force: the account's own, else its provider's preset, else the server's.
#[derive(Serialize, ToSchema)]
pub(super) struct EffectiveView {
    /// The mailboxes that sync; `null` for every mailbox.
    sync_mailboxes: Option<Vec<String>>,
    /// Whether a sent message is copied to Sent (`sent_copy` applied to this SMTP host).
    copies_to_sent: bool,
    /// The pace, in messages a minute; `null` for none.
    send_rate_per_minute: Option<u32>,
    /// Messages in any 24 hours; `null` for no limit.
    send_daily_limit: Option<u32>,
    /// The provider whose preset applies (`gmail`, `microsoft`, `yahoo`); `null` for none.
    provider_preset: Option<&'static str>,
}

impl EffectiveView {
    pub(super) fn new(
        account: &postern_store::Account,
        sync: &postern_sync::SyncConfig,
        policy: &postern_outbox::SendPolicy,
    ) -> Self {
        let sync_mailboxes = match sync.settings_for(account).sync.mailboxes {
            postern_sync::MailboxSelection::All => None,
            postern_sync::MailboxSelection::Only(entries) => Some(entries),
        };
        EffectiveView {
            sync_mailboxes,
            copies_to_sent: policy.sent_copy.wants_copy(&account.smtp.host),
            send_rate_per_minute: policy.rate.map(|rate| per_minute(rate.interval)),
            send_daily_limit: policy.daily_limit.map(NonZeroU32::get),
            provider_preset: policy.provider,
        }
    }
}

/// Messages a minute at one per `interval`, rounded down (at least 1).
fn per_minute(interval: std::time::Duration) -> u32 {
    let millis = interval.as_millis().max(1);
    u32::try_from(60_000 / millis).unwrap_or(u32::MAX).max(1)
}

/// 400 `invalid_request` naming the wrong fields, in the shape the account service's use.
fn invalid_fields(problems: Vec<FieldError>) -> ApiError {
    ApiError::from(postern_accounts::ServiceError::Invalid(problems))
}

/// The settings of a new account from the `settings` of its request (defaults when absent), or
/// 400 naming every wrong field.
pub(super) fn new_account_settings(patch: Option<&Value>) -> Result<AccountSettings, ApiError> {
    match patch {
        Some(patch) => {
            apply_patch(&AccountSettings::default(), patch, "settings").map_err(invalid_fields)
        }
        None => Ok(AccountSettings::default()),
    }
}

/// The settings after the `PATCH` body `body`, or 400 naming every wrong field.
pub(super) fn changed_settings(
    current: &AccountSettings,
    body: &Value,
) -> Result<AccountSettings, ApiError> {
    let Some(fields) = body.as_object() else {
        let wanted = "must be an object: {\"settings\": {...}}";
        return Err(invalid_fields(vec![problem("body".to_owned(), wanted)]));
    };
    let mut problems = unknown_keys(fields, &["settings"]);
    let patched = match fields.get("settings") {
        Some(patch) => apply_patch(current, patch, "settings"),
        None => Err(vec![problem(
            "settings".to_owned(),
            "required: the settings to change",
        )]),
    };
    match patched {
        Ok(settings) if problems.is_empty() => Ok(settings),
        Ok(_) => Err(invalid_fields(problems)),
        Err(more) => {
            problems.extend(more);
            Err(invalid_fields(problems))
        }
    }
}

/// The problems found in a settings patch, each naming its field.
type Problems = Vec<FieldError>;

fn problem(field: String, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Applies `patch` (the value of a `settings` key, named `field` in errors) to `base` as a JSON
/// merge patch: every wrong field is reported, and nothing is applied when one is wrong.
pub(super) fn apply_patch(
    base: &AccountSettings,
    patch: &Value,
    field: &str,
) -> Result<AccountSettings, Problems> {
    let entries = match patch {
        Value::Null => return Ok(AccountSettings::default()),
        Value::Object(entries) => entries,
        _ => {
            return Err(vec![problem(
                field.to_owned(),
                "must be an object (or null for every default)",
            )]);
        }
    };
    let mut settings = base.clone();
    let mut problems = Vec::new();
    for (key, value) in entries {
        let name = format!("{field}.{key}");
        if let Err(message) = set(&mut settings, key, value) {
            problems.push(problem(name, message));
        }
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(problems)
    }
}

/// Sets one key; the message of what is wrong otherwise.
fn set(settings: &mut AccountSettings, key: &str, value: &Value) -> Result<(), String> {
    match key {
        "sync_mailboxes" => settings.sync_mailboxes = nullable(value, mailbox_list)?,
        "sent_copy" => settings.sent_copy = nullable(value, sent_copy)?,
        "send_rate_per_minute" => settings.send_rate_per_minute = nullable(value, at_least_one)?,
        "send_daily_limit" => settings.send_daily_limit = nullable(value, at_least_one)?,
        _ => {
            return Err(format!(
                "unknown setting; the settings are {}",
                SETTINGS_KEYS.join(", ")
            ));
        }
    }
    Ok(())
}

/// `null` is the default (`None`); anything else is read by `read`.
fn nullable<T>(
    value: &Value,
    read: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if value.is_null() {
        Ok(None)
    } else {
        read(value).map(Some)
    }
}

fn mailbox_list(value: &Value) -> Result<Vec<String>, String> {
    const WANTED: &str = "must be a non-empty list of mailbox names or patterns (null for every \
                          mailbox)";
    let Some(entries) = value.as_array() else {
        return Err(WANTED.to_owned());
    };
    let names: Option<Vec<String>> = entries
        .iter()
        .map(|entry| {
            entry
                .as_str()
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
        })
        .collect();
    match names {
        Some(names) if !names.is_empty() => Ok(names),
        _ => Err(WANTED.to_owned()),
    }
}

fn sent_copy(value: &Value) -> Result<SentCopyMode, String> {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            let modes: Vec<&str> = SentCopyMode::ALL.iter().map(|m| m.as_str()).collect();
            format!("must be one of {} (or null)", modes.join(", "))
        })
}

fn at_least_one(value: &Value) -> Result<NonZeroU32, String> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .and_then(NonZeroU32::new)
        .ok_or_else(|| format!("must be a whole number from 1 to {} (or null)", u32::MAX))
}

/// The request body's top-level keys other than `allowed`, as field errors.
fn unknown_keys(body: &Map<String, Value>, allowed: &[&str]) -> Problems {
    body.keys()
        .filter(|key| !allowed.contains(&key.as_str()))
        .map(|key| {
            problem(
                key.clone(),
                format!("unknown field; the fields are {}", allowed.join(", ")),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(problems: &[FieldError]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn a_full_object_sets_every_setting() {
        let patch = json!({
            "sync_mailboxes": ["INBOX", "Projects/%"],
            "sent_copy": "never",
            "send_rate_per_minute": 30,
            "send_daily_limit": 2000,
        });
        let settings = apply_patch(&AccountSettings::default(), &patch, "settings").unwrap();
        assert_eq!(
            settings,
            AccountSettings {
                sync_mailboxes: Some(vec!["INBOX".into(), "Projects/%".into()]),
                sent_copy: Some(SentCopyMode::Never),
                send_rate_per_minute: NonZeroU32::new(30),
                send_daily_limit: NonZeroU32::new(2000),
            }
        );
        let view = serde_json::to_value(SettingsView::from(&settings)).unwrap();
        assert_eq!(view, patch, "shown as it was given");
    }

    #[test]
    fn a_patch_keeps_what_it_does_not_name_and_null_resets() {
        let base = AccountSettings {
            sent_copy: Some(SentCopyMode::Always),
            send_daily_limit: NonZeroU32::new(3),
            ..AccountSettings::default()
        };
        let patched = apply_patch(
            &base,
            &json!({"send_daily_limit": null, "send_rate_per_minute": 5}),
            "settings",
        )
        .unwrap();
        assert_eq!(patched.sent_copy, Some(SentCopyMode::Always));
        assert_eq!(patched.send_daily_limit, None);
        assert_eq!(patched.send_rate_per_minute, NonZeroU32::new(5));
        assert!(
            apply_patch(&base, &json!(null), "settings")
                .unwrap()
                .is_default()
        );
        assert_eq!(apply_patch(&base, &json!({}), "settings").unwrap(), base);
    }

    #[test]
    fn every_wrong_field_is_named_at_once() {
        let patch = json!({
            "sync_mailbox": ["INBOX"],
            "sync_mailboxes": [],
            "sent_copy": "sometimes",
            "send_rate_per_minute": 0,
            "send_daily_limit": -5,
        });
        let problems = apply_patch(&AccountSettings::default(), &patch, "settings").unwrap_err();
        let mut named = fields(&problems);
        named.sort_unstable();
        assert_eq!(
            named,
            [
                "settings.send_daily_limit",
                "settings.send_rate_per_minute",
                "settings.sent_copy",
                "settings.sync_mailbox",
                "settings.sync_mailboxes",
            ]
        );
        let unknown = problems
            .iter()
            .find(|p| p.field == "settings.sync_mailbox")
            .unwrap();
        assert!(unknown.message.contains("unknown setting"), "{problems:?}");
    }

    #[test]
    fn rates_must_fit_and_lists_must_hold_names() {
        let base = AccountSettings::default();
        for wrong in [
            json!({"send_rate_per_minute": 1.5}),
            json!({"send_rate_per_minute": "30"}),
            json!({"send_daily_limit": 4_294_967_296_u64}),
            json!({"sync_mailboxes": "INBOX"}),
            json!({"sync_mailboxes": ["INBOX", ""]}),
            json!({"sync_mailboxes": [1]}),
        ] {
            assert!(apply_patch(&base, &wrong, "settings").is_err(), "{wrong}");
        }
        let limits = json!({"send_rate_per_minute": 1, "send_daily_limit": 4_294_967_295_u64});
        assert!(apply_patch(&base, &limits, "settings").is_ok());
        let problems = apply_patch(&base, &json!([1]), "settings").unwrap_err();
        assert_eq!(fields(&problems), ["settings"]);
    }

    #[test]
    fn unknown_top_level_keys_are_field_errors() {
        let body = json!({"settings": {}, "name": "x"});
        let problems = unknown_keys(body.as_object().unwrap(), &["settings"]);
        assert_eq!(fields(&problems), ["name"]);
    }

    #[test]
    fn a_patch_body_needs_its_settings_and_nothing_else() {
        let current = AccountSettings::default();
        let good = json!({"settings": {"send_daily_limit": 7}});
        let changed = changed_settings(&current, &good).unwrap();
        assert_eq!(changed.send_daily_limit, NonZeroU32::new(7));
        for wrong in [
            json!({}),
            json!([1]),
            json!({"settings": {}, "name": "x"}),
            json!({"settings": {"send_daily_limit": 0}}),
        ] {
            let error = changed_settings(&current, &wrong).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{wrong}");
            assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn the_sent_copy_schema_admits_every_mode_and_null() {
        let schema = serde_json::to_value(sent_copy_modes()).unwrap();
        assert_eq!(
            schema["enum"],
            json!(["auto", "always", "never", null]),
            "{schema}"
        );
        assert_eq!(schema["type"], json!(["string", "null"]));
    }

    #[test]
    fn a_pace_is_shown_in_messages_a_minute() {
        assert_eq!(per_minute(std::time::Duration::from_secs(2)), 30);
        assert_eq!(per_minute(std::time::Duration::from_millis(10)), 6000);
        assert_eq!(per_minute(std::time::Duration::from_secs(3600)), 1);
    }
}
