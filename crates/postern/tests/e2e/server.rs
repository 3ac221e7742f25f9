//! End-to-end tests of the `postern` binary: the real process, a temp data dir, HTTP on loopback.

use crate::support::{Postern, run_postern};

#[tokio::test]
async fn first_start_prints_where_everything_is_and_the_admin_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let banner = server.banner.join("\n");
    assert!(
        banner.contains(&format!(
            "data dir:     {}",
            dir.path().canonicalize().unwrap().display()
        )),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("API:          http://{}/v1", server.address)),
        "{banner}"
    );
    assert!(banner.contains("created now, mode 0600"), "{banner}");
    let token = server
        .admin_token
        .clone()
        .expect("first start prints an admin token");
    assert!(token.starts_with("pst_"));

    let mode = std::fs::metadata(dir.path().join("master.key"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    let health = server.get("/v1/health", None).await;
    assert_eq!(health.status(), 200);
    let listed = server.get("/v1/tokens", Some(&token)).await;
    assert_eq!(listed.status(), 200);
    let body: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(body["tokens"][0]["name"], "admin");
    assert!(
        !body.to_string().contains(&token),
        "the API never returns a token's secret"
    );

    let stderr = server.stop().await;
    assert!(
        !stderr.contains(&token),
        "the admin token reached a log line:\n{stderr}"
    );
}

#[tokio::test]
async fn v1_routes_refuse_missing_malformed_and_unknown_tokens_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let cases: [(&str, Option<&str>); 4] = [
        ("/v1/tokens", None),
        ("/v1/tokens", Some("pst_not-a-real-token")),
        ("/v1/no-such-route", None),
        ("/v1/tokens", Some("")),
    ];
    for (path, token) in cases {
        let response = server.get(path, token).await;
        assert_eq!(response.status(), 401, "{path} with {token:?}");
        assert!(response.headers().contains_key("x-request-id"));
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let scheme = server
        .client
        .get(server.url("/v1/tokens"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(scheme.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn the_store_survives_a_restart_and_no_second_admin_token_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let first = Postern::start(dir.path(), &[]).await;
    let token = first.admin_token.clone().unwrap();
    first.stop().await;

    let second = Postern::start(dir.path(), &[]).await;
    assert!(
        second.admin_token.is_none(),
        "an admin token was printed again"
    );
    assert!(second.banner.join("\n").contains(&format!(
        "master key:   {}",
        dir.path().join("master.key").display()
    )));
    assert_eq!(second.get("/v1/tokens", Some(&token)).await.status(), 200);
    second.stop().await;
}

#[tokio::test]
async fn token_create_works_on_the_data_dir_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let output = run_postern(
        dir.path(),
        &["token", "create", "--name", "ci", "--scope", "admin"],
        &[],
    );
    assert!(output.status.success(), "{output:?}");
    let created = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(created.starts_with("pst_"));
    assert_eq!(server.get("/v1/tokens", Some(&created)).await.status(), 200);

    let unknown_scope = run_postern(
        dir.path(),
        &["token", "create", "--name", "x", "--scope", "root"],
        &[],
    );
    assert!(!unknown_scope.status.success());
    assert!(String::from_utf8_lossy(&unknown_scope.stderr).contains("unknown scope \"root\""));
    server.stop().await;
}

#[tokio::test]
async fn a_scope_other_than_admin_cannot_list_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let output = run_postern(
        dir.path(),
        &[
            "token",
            "create",
            "--name",
            "reader",
            "--scope",
            "accounts:read",
        ],
        &[],
    );
    let reader = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let response = server.get("/v1/tokens", Some(&reader)).await;
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_master_key_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    Postern::start(dir.path(), &[]).await.stop().await;
    let wrong = "11".repeat(32);
    let output = run_postern(dir.path(), &["serve"], &[("POSTERN_MASTER_KEY", &wrong)]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot decrypt: master key does not match this data dir"),
        "{stderr}"
    );
    assert!(!stderr.contains(&wrong), "the key was echoed: {stderr}");
}

#[tokio::test]
async fn a_lost_key_file_is_an_error_not_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    Postern::start(dir.path(), &[]).await.stop().await;
    std::fs::remove_file(dir.path().join("master.key")).unwrap();
    let output = run_postern(dir.path(), &["serve"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("master key file") && stderr.contains("is missing"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("master.key").exists(),
        "a new key was generated over old secrets"
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[("POSTERN_LOG_FORMAT", "json")]).await;
    server.get("/v1/health", None).await;
    let stderr = server.stop().await;
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert!(!lines.is_empty());
    for line in lines {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(parsed["level"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused_and_a_killed_one_leaves_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let first = Postern::start(dir.path(), &[]).await;
    let output = run_postern(dir.path(), &["serve", "--listen", "127.0.0.1:0"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another `postern serve` is already running on the data dir"),
        "{stderr}"
    );
    first.kill_hard().await;
    // The kernel dropped the lock with the process: a new server starts.
    Postern::start(dir.path(), &[]).await.stop().await;
}
