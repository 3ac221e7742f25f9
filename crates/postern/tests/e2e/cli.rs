//! The `postern` commands that do not serve: configuration, vault rotation.

use crate::support::{Postern, run_postern};
use postern_store::{SecretRef, Store};
use postern_vault::{KeyId, Vault, load_master_key};
use secrecy::{ExposeSecret, SecretString};

#[test]
fn config_show_prints_the_effective_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let key = "ab".repeat(32);
    let output = run_postern(
        dir.path(),
        &["config", "show", "--listen", "127.0.0.1:9999"],
        &[("POSTERN_MASTER_KEY", &key), ("POSTERN_LOG", "debug")],
    );
    assert!(output.status.success(), "{output:?}");
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(shown.contains("listen = \"127.0.0.1:9999\""), "{shown}");
    assert!(shown.contains("log = \"debug\""), "{shown}");
    assert!(shown.contains("master_key = \"<redacted>\""), "{shown}");
    assert!(!shown.contains(&key));
}

#[test]
fn a_bad_config_file_names_the_file_line_and_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("postern.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7080\"\n[store]\nurl = \"sqlite://x\"\ncolour = \"red\"\n",
    )
    .unwrap();
    let output = run_postern(
        dir.path(),
        &["--config", file.to_str().unwrap(), "serve"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(stderr.contains("colour"), "{stderr}");
}

#[test]
fn an_unknown_environment_setting_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_postern(dir.path(), &["config", "show"], &[("POSTERN_LISTN", "x")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("POSTERN_LISTN: no such setting"));
}

#[tokio::test]
async fn rotate_key_reencrypts_stored_secrets_under_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    Postern::start(dir.path(), &[]).await.stop().await;
    let secret_ref = SecretRef {
        owner_kind: "account".into(),
        owner_id: "a1".into(),
        name: "refresh_token".into(),
    };
    let plaintext = SecretString::from("refresh-token-for-rotation-test");
    {
        let (store, vault) = open(dir.path()).await;
        let sealed = vault.seal_str(&secret_ref.context(), &plaintext);
        store.secrets().put(&secret_ref, &sealed).await.unwrap();
        store.close().await;
    }
    let output = run_postern(dir.path(), &["vault", "rotate-key"], &[]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 secret(s) re-encrypted under key 2")
    );

    let (store, vault) = open(dir.path()).await;
    let sealed = store.secrets().get(&secret_ref).await.unwrap().unwrap();
    assert_eq!(sealed.key_id(), KeyId(2));
    let opened = vault.open_str(&secret_ref.context(), &sealed).unwrap();
    assert_eq!(opened.expose_secret(), plaintext.expose_secret());
    let keys = store.vault_keys().list().await.unwrap();
    assert_eq!(keys.len(), 1, "old keys are erased");
}

async fn open(dir: &std::path::Path) -> (Store, Vault) {
    let store = Store::open_sqlite(&dir.join("postern.db")).await.unwrap();
    let (master, _) = load_master_key(None, &dir.join("master.key")).unwrap();
    let keys = store.vault_keys().list().await.unwrap();
    let active = keys.iter().find(|key| key.active).unwrap().id;
    let wrapped: Vec<_> = keys.into_iter().map(|key| key.wrapped).collect();
    let vault = Vault::unlock(&master, &wrapped, active).unwrap();
    (store, vault)
}
