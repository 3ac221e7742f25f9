use super::*;
use crate::oauth::ClientAuth;

fn input(provider: &str) -> AppInput {
    AppInput {
        provider: provider.to_owned(),
        client_id: "client-1".to_owned(),
        ..AppInput::default()
    }
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn errors_of(input: AppInput) -> Vec<FieldError> {
    input.resolve().unwrap_err()
}

/// The one error on `field`, asserting there is exactly one.
fn only_error(input: AppInput, field: &str) -> String {
    let errors = errors_of(input);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, field, "{errors:?}");
    errors[0].message.clone()
}

#[test]
fn google_is_filled_from_the_preset() {
    let app = input("google").resolve().unwrap();
    assert_eq!(app.provider, Provider::Google);
    assert_eq!(
        app.authorize_url.as_str(),
        "https://accounts.google.com/o/oauth2/v2/auth"
    );
    assert_eq!(
        app.token_url.as_str(),
        "https://oauth2.googleapis.com/token"
    );
    assert_eq!(
        app.revoke_url.unwrap().as_str(),
        "https://oauth2.googleapis.com/revoke"
    );
    assert_eq!(
        app.device_authorization_url.unwrap().as_str(),
        "https://oauth2.googleapis.com/device/code"
    );
    assert_eq!(app.scopes, ["https://mail.google.com/"]);
    assert_eq!(
        app.extra_params,
        params(&[("access_type", "offline"), ("prompt", "consent")])
    );
    assert_eq!(app.tenant, None);
    assert!(app.warnings.is_empty(), "{:?}", app.warnings);
}

#[test]
fn explicit_values_win_over_the_preset() {
    let app = AppInput {
        token_url: Some(" http://127.0.0.1:9/token ".to_owned()),
        scopes: vec![
            "https://mail.google.com/ openid".to_owned(),
            "openid".to_owned(),
        ],
        extra_params: params(&[("prompt", "consent select_account"), ("hd", "example.com")]),
        redirect_uri: Some("https://postern.example.com/oauth/callback".to_owned()),
        ..input("google")
    }
    .resolve()
    .unwrap();
    assert_eq!(app.token_url.as_str(), "http://127.0.0.1:9/token");
    assert_eq!(app.scopes, ["https://mail.google.com/", "openid"]);
    assert_eq!(app.extra_params["prompt"], "consent select_account");
    assert_eq!(app.extra_params["hd"], "example.com");
    assert_eq!(app.extra_params["access_type"], "offline");
    assert_eq!(
        app.redirect_uri.as_deref(),
        Some("https://postern.example.com/oauth/callback")
    );
    assert!(app.warnings.is_empty(), "{:?}", app.warnings);
}

#[test]
fn google_access_type_is_forced_to_offline_with_a_warning() {
    let app = AppInput {
        extra_params: params(&[("access_type", "online"), ("prompt", "select_account")]),
        ..input("google")
    }
    .resolve()
    .unwrap();
    assert_eq!(app.extra_params["access_type"], "offline");
    let fields: Vec<&str> = app.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["extra_params.access_type", "extra_params.prompt"]);
    assert!(app.warnings[0].message.contains("no refresh token"));
}

#[test]
fn google_without_the_mail_scope_is_refused() {
    let message = only_error(
        AppInput {
            scopes: vec!["https://www.googleapis.com/auth/gmail.readonly".to_owned()],
            ..input("google")
        },
        "scopes",
    );
    assert!(message.contains("https://mail.google.com/"), "{message}");
}

#[test]
fn microsoft_defaults_to_the_common_tenant_and_outlook_scopes() {
    let app = input("microsoft").resolve().unwrap();
    assert_eq!(app.tenant.as_deref(), Some("common"));
    assert_eq!(
        app.token_url.as_str(),
        "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    );
    assert_eq!(
        app.scopes,
        [
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send",
            "offline_access"
        ]
    );
    assert_eq!(app.revoke_url, None);
    assert!(app.extra_params.is_empty());
    assert_eq!(
        app.preset().app_only_scope,
        Some("https://outlook.office365.com/.default")
    );
}

#[test]
fn microsoft_urls_use_the_given_tenant() {
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let app = AppInput {
        tenant: Some(tenant.to_owned()),
        ..input("microsoft")
    }
    .resolve()
    .unwrap();
    assert_eq!(
        app.authorize_url.as_str(),
        format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize")
    );
    assert_eq!(
        app.device_authorization_url.unwrap().as_str(),
        format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode")
    );
}

#[test]
fn microsoft_graph_scopes_are_refused_with_the_outlook_ones_named() {
    let message = only_error(
        AppInput {
            scopes: vec![
                "https://graph.microsoft.com/IMAP.AccessAsUser.All".to_owned(),
                "offline_access".to_owned(),
            ],
            ..input("microsoft")
        },
        "scopes",
    );
    assert!(message.contains("Graph"), "{message}");
    assert!(
        message.contains("https://outlook.office.com/IMAP.AccessAsUser.All"),
        "{message}"
    );
    assert!(
        message.contains("https://outlook.office.com/SMTP.Send"),
        "{message}"
    );
}

#[test]
fn microsoft_bare_exchange_scopes_are_refused() {
    let message = only_error(
        AppInput {
            scopes: vec!["IMAP.AccessAsUser.All offline_access".to_owned()],
            ..input("microsoft")
        },
        "scopes",
    );
    assert!(
        message.contains("https://outlook.office.com/IMAP.AccessAsUser.All"),
        "{message}"
    );
}

#[test]
fn microsoft_without_offline_access_is_refused_because_no_refresh_token_would_come() {
    let message = only_error(
        AppInput {
            scopes: vec![
                "https://outlook.office.com/IMAP.AccessAsUser.All".to_owned(),
                "https://outlook.office.com/SMTP.Send".to_owned(),
            ],
            ..input("microsoft")
        },
        "scopes",
    );
    assert!(message.contains("offline_access"), "{message}");
    assert!(message.contains("no refresh token"), "{message}");
}

#[test]
fn microsoft_scopes_of_two_resources_are_refused() {
    let message = only_error(
        AppInput {
            scopes: vec![
                "https://outlook.office.com/IMAP.AccessAsUser.All".to_owned(),
                "https://outlook.office365.com/.default".to_owned(),
                "offline_access".to_owned(),
            ],
            ..input("microsoft")
        },
        "scopes",
    );
    assert!(message.contains("AADSTS28000"), "{message}");
}

#[test]
fn generic_needs_endpoints_and_scopes() {
    let errors = errors_of(input("generic"));
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["authorize_url", "token_url", "scopes"]);
    assert!(errors[0].message.contains("required"));
}

#[test]
fn a_complete_generic_app_resolves_with_basic_client_auth() {
    let app = AppInput {
        authorize_url: Some("https://id.example.com/authorize".to_owned()),
        token_url: Some("https://id.example.com/token".to_owned()),
        scopes: vec!["mail".to_owned()],
        ..input("generic")
    }
    .resolve()
    .unwrap();
    assert_eq!(app.revoke_url, None);
    assert!(app.extra_params.is_empty());
    let settings = app.client_settings(None);
    assert_eq!(settings.client_auth, ClientAuth::Basic);
    assert_eq!(settings.token_url.as_str(), "https://id.example.com/token");
    assert_eq!(settings.scopes, ["mail"]);
}

#[test]
fn urls_must_parse_and_use_https_except_on_loopback() {
    let errors = errors_of(AppInput {
        authorize_url: Some("not a url".to_owned()),
        token_url: Some("http://id.example.com/token".to_owned()),
        revoke_url: Some("http://localhost:8080/revoke".to_owned()),
        redirect_uri: Some("http://postern.example.com/cb".to_owned()),
        scopes: vec!["mail".to_owned()],
        ..input("generic")
    });
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["redirect_uri", "authorize_url", "token_url"]);
    assert!(errors[0].message.contains("https"));
    assert!(errors[1].message.contains("not a URL"));
}

#[test]
fn a_tenant_is_for_microsoft_only_and_must_be_a_name() {
    let message = only_error(
        AppInput {
            tenant: Some("contoso".to_owned()),
            ..input("google")
        },
        "tenant",
    );
    assert!(message.contains("Microsoft"));
    only_error(
        AppInput {
            tenant: Some("common/../evil".to_owned()),
            ..input("microsoft")
        },
        "tenant",
    );
}

#[test]
fn reserved_and_empty_extra_params_are_refused() {
    let errors = errors_of(AppInput {
        extra_params: params(&[("state", "x"), ("code_challenge", "y"), ("hd", " ")]),
        ..input("yahoo")
    });
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "extra_params.code_challenge",
            "extra_params.hd",
            "extra_params.state"
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = errors_of(AppInput {
        provider: "hotmail".to_owned(),
        client_id: " ".to_owned(),
        token_url: Some("ftp://x".to_owned()),
        ..AppInput::default()
    });
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["provider", "client_id", "token_url"]);
    assert!(errors[0].message.contains("hotmail"));
}

#[test]
fn client_settings_carry_the_resolved_app() {
    let app = AppInput {
        redirect_uri: Some("http://127.0.0.1:9/cb".to_owned()),
        ..input("google")
    }
    .resolve()
    .unwrap();
    let settings = app.client_settings(Some(SecretString::from("s3cret")));
    assert_eq!(settings.client_id, "client-1");
    assert_eq!(settings.client_auth, ClientAuth::RequestBody);
    assert_eq!(settings.extra_params, app.extra_params);
    assert_eq!(settings.revoke_url, app.revoke_url);
    assert!(!format!("{settings:?}").contains("s3cret"));
}
