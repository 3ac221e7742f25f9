use super::*;
use secrecy::ExposeSecret;
use std::io::Write;

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn with_file(file: &tempfile::NamedTempFile) -> Overrides {
    Overrides {
        config_file: Some(file.path().to_owned()),
        ..Overrides::default()
    }
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

#[test]
fn defaults_work_with_no_file_and_no_environment() {
    let config = Config::load_from(&Overrides::default(), no_env()).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert_eq!(config.listen.to_string(), "127.0.0.1:7080");
    assert_eq!(config.master_key_file, PathBuf::from("./data/master.key"));
    assert_eq!(config.store.url, "sqlite://./data/postern.db");
    assert_eq!(config.api.public_url, None);
    assert_eq!(
        config.public_url_for(config.listen),
        "http://127.0.0.1:7080"
    );
    assert_eq!(config.log_format, LogFormat::Text);
}

#[test]
fn environment_overrides_file_and_flags_override_environment() {
    let file =
        write_config("listen = \"127.0.0.1:1000\"\ndata_dir = \"/from/file\"\nlog = \"warn\"\n");
    let env = vec![
        ("POSTERN_LISTEN".to_owned(), "127.0.0.1:2000".to_owned()),
        ("POSTERN_DATA_DIR".to_owned(), "/from/env".to_owned()),
    ];
    let overrides = Overrides {
        listen: Some("127.0.0.1:3000".to_owned()),
        ..with_file(&file)
    };
    let config = Config::load_from(&overrides, env).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:3000");
    assert_eq!(config.data_dir, PathBuf::from("/from/env"));
    assert_eq!(config.log, "warn");
    assert_eq!(config.store.url, "sqlite:///from/env/postern.db");
}

#[test]
fn an_unknown_key_names_the_file_the_line_and_the_key() {
    let file = write_config("listen = \"127.0.0.1:7080\"\n\n[api]\npublik_url = \"http://x\"\n");
    let error = Config::load_from(&with_file(&file), no_env())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&file.path().display().to_string()),
        "{error}"
    );
    assert!(error.contains("line 4"), "{error}");
    assert!(error.contains("publik_url"), "{error}");
}

#[test]
fn malformed_toml_names_the_file_and_the_line() {
    let file = write_config("data_dir = \"/x\"\nlisten = 127.0.0.1:7080\n");
    let error = Config::load_from(&with_file(&file), no_env())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&file.path().display().to_string()),
        "{error}"
    );
    assert!(error.contains("line 2"), "{error}");
}

#[test]
fn a_missing_explicit_file_is_an_error_not_a_silent_default() {
    let overrides = Overrides {
        config_file: Some(PathBuf::from("/nonexistent/postern.toml")),
        ..Overrides::default()
    };
    let error = Config::load_from(&overrides, no_env())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cannot read config file /nonexistent/postern.toml"),
        "{error}"
    );
}

#[test]
fn every_resolution_problem_is_reported_at_once() {
    let file = write_config(
        "listen = \"nowhere\"\n[api]\nrequest_timeout_secs = 0\n[store]\nurl = \"mysql://x\"\n",
    );
    let errors = Config::load_from(&with_file(&file), no_env()).unwrap_err();
    assert_eq!(errors.0.len(), 3, "{errors}");
}

#[test]
fn config_show_redacts_the_master_key() {
    let key = "ab".repeat(32);
    let env = vec![("POSTERN_MASTER_KEY".to_owned(), key.clone())];
    let config = Config::load_from(&Overrides::default(), env).unwrap();
    assert_eq!(config.master_key.as_ref().unwrap().expose_secret(), key);
    let shown = config.to_redacted_toml();
    assert!(!shown.contains(&key), "{shown}");
    assert!(shown.contains("master_key = \"<redacted>\""), "{shown}");
    assert!(shown.contains("listen = \"127.0.0.1:7080\""), "{shown}");
}
