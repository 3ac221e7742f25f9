//! `POSTERN_*` environment variables, read into the same shape as `postern.toml`.
//!
//! The rule is `POSTERN_<SECTION>_<KEY>` for a key in a `[section]`, `POSTERN_<KEY>` for a top-level
//! key (`POSTERN_DATA_DIR` is `data_dir`, `POSTERN_STORE_URL` is `[store] url`). Names are matched
//! against the configuration itself rather than a hand-kept list: each possible reading of a name is
//! tried on the real [`RawConfig`] and the one it accepts wins, so a new setting is reachable from the
//! environment the moment it is added to the struct.
//!
//! Non-goal: lists and nested tables in the environment; those settings belong in the file.

use super::ConfigError;
use super::raw::RawConfig;

/// The prefix of every variable this module reads.
const PREFIX: &str = "POSTERN_";

/// Variables with a meaning outside the settings table (the file location itself).
const NOT_SETTINGS: &[&str] = &["POSTERN_CONFIG"];

/// Shorter names documented for settings whose full names are long.
const ALIASES: &[(&str, &str)] = &[(
    "POSTERN_WEBHOOKS_ALLOW_PRIVATE",
    "POSTERN_WEBHOOKS_ALLOW_PRIVATE_TARGETS",
)];

/// Reads every `POSTERN_*` variable of `vars` into one overlay; unknown names and bad values are
/// collected, so an operator sees every mistake at once.
pub fn read(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<RawConfig, Vec<ConfigError>> {
    let mut table = toml::Table::new();
    let mut errors = Vec::new();
    for (name, value) in vars {
        let canonical = ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(name.as_str(), |(_, full)| *full);
        let Some(rest) = canonical.strip_prefix(PREFIX) else {
            continue;
        };
        if NOT_SETTINGS.contains(&name.as_str()) {
            continue;
        }
        match place(&rest.to_ascii_lowercase(), &value) {
            Ok((path, typed)) => insert(&mut table, &path, typed),
            Err(reason) => errors.push(ConfigError::Env { name, reason }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|error: toml::de::Error| {
            vec![ConfigError::Env {
                name: "POSTERN_*".into(),
                reason: error.message().to_owned(),
            }]
        })
}

/// Finds where `key` (lowercased, prefix removed) lives in the config and the typed value to put there.
fn place(key: &str, value: &str) -> Result<(Vec<String>, toml::Value), String> {
    let mut type_error = None;
    for path in candidate_paths(key) {
        for typed in candidate_values(value) {
            let mut probe = toml::Table::new();
            insert(&mut probe, &path, typed.clone());
            match toml::Value::Table(probe).try_into::<RawConfig>() {
                Ok(_) => return Ok((path, typed)),
                Err(error) if error.message().starts_with("unknown field") => break,
                Err(error) => type_error = Some(error.message().to_owned()),
            }
        }
    }
    Err(type_error.unwrap_or_else(|| "no such setting".to_owned()))
}

/// `a_b_c` may be the top-level key `a_b_c`, or `[a] b_c`, or `[a_b] c`.
fn candidate_paths(key: &str) -> Vec<Vec<String>> {
    let mut paths = vec![vec![key.to_owned()]];
    for (index, _) in key.match_indices('_') {
        let (section, rest) = (&key[..index], &key[index + 1..]);
        if !section.is_empty() && !rest.is_empty() {
            paths.push(vec![section.to_owned(), rest.to_owned()]);
        }
    }
    paths
}

/// The environment only holds text; a setting may want a number or a boolean.
fn candidate_values(value: &str) -> Vec<toml::Value> {
    let mut values = Vec::with_capacity(2);
    if let Ok(number) = value.parse::<i64>() {
        values.push(toml::Value::Integer(number));
    } else if let Ok(flag) = value.parse::<bool>() {
        values.push(toml::Value::Boolean(flag));
    }
    values.push(toml::Value::String(value.to_owned()));
    values
}

fn insert(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [key] => {
            table.insert(key.clone(), value);
        }
        [section, rest @ ..] => {
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                insert(inner, rest, value);
            }
        }
        [] => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn top_level_and_section_keys_are_found_by_name() {
        let raw = read(vars(&[
            ("POSTERN_DATA_DIR", "/srv/postern"),
            ("POSTERN_LOG_FORMAT", "json"),
            ("POSTERN_LOG", "debug"),
            ("POSTERN_STORE_URL", "sqlite:///tmp/x.db"),
            ("POSTERN_API_REQUEST_TIMEOUT_SECS", "12"),
            ("POSTERN_MASTER_KEY", "00"),
            ("HOME", "/root"),
        ]))
        .unwrap();
        assert_eq!(raw.data_dir.unwrap().to_str(), Some("/srv/postern"));
        assert_eq!(raw.log_format, Some(super::super::raw::LogFormat::Json));
        assert_eq!(raw.log.as_deref(), Some("debug"));
        assert_eq!(raw.store.url.as_deref(), Some("sqlite:///tmp/x.db"));
        assert_eq!(raw.api.request_timeout_secs, Some(12));
        assert_eq!(raw.master_key.unwrap().expose_secret(), "00");
    }

    #[test]
    fn the_short_webhook_alias_sets_the_full_setting() {
        let raw = read(vars(&[("POSTERN_WEBHOOKS_ALLOW_PRIVATE", "true")])).unwrap();
        assert_eq!(raw.webhooks.allow_private_targets, Some(true));
        let raw = read(vars(&[("POSTERN_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "false")])).unwrap();
        assert_eq!(raw.webhooks.allow_private_targets, Some(false));
    }

    #[test]
    fn a_number_for_a_text_setting_stays_text() {
        let raw = read(vars(&[("POSTERN_LISTEN", "7080")])).unwrap();
        assert_eq!(raw.listen.as_deref(), Some("7080"));
    }

    #[test]
    fn unknown_variables_and_bad_values_are_all_reported_by_name() {
        let errors = read(vars(&[
            ("POSTERN_BOGUS", "1"),
            ("POSTERN_API_REQUEST_TIMEOUT_SECS", "soon"),
            ("POSTERN_CONFIG", "/etc/postern.toml"),
        ]))
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].contains("POSTERN_BOGUS") && text[0].contains("no such setting"));
        assert!(
            text[1].contains("POSTERN_API_REQUEST_TIMEOUT_SECS"),
            "{text:?}"
        );
    }
}
