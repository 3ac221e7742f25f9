//! Key rotation reaches the secrets of the account aggregates: they all live in `secrets`.

use postern_store::{NewAuthorization, PendingAuthorization, SecretRef, TokenSet};
use postern_vault::{KeyId, Sealed, Vault};

use crate::fixtures::{Fixture, new_password_account};

#[tokio::test]
async fn rotation_reseals_app_account_token_and_verifier_secrets() {
    let mut fx = Fixture::new().await;
    let app = fx.app("google").await;
    let oauth = fx.oauth_account(&app.id, "ada@gmail.com").await;
    let new = new_password_account("ada@example.org");
    let password = fx.seal(&new.id.password_ref(), "hunter2");
    let password_account = fx
        .store
        .accounts()
        .create(new, Some(&password))
        .await
        .unwrap()
        .id;
    let tokens = TokenSet {
        access: fx.seal(&oauth.access_token_ref(), "access"),
        refresh: Some(fx.seal(&oauth.refresh_token_ref(), "refresh")),
        access_expires_at: None,
        scope: None,
        consented: true,
    };
    fx.store
        .grants()
        .store_tokens(&oauth, tokens)
        .await
        .unwrap();
    let hash = [7u8; 32];
    let verifier_ref = PendingAuthorization::verifier_ref(&hash);
    let flow = NewAuthorization {
        state_hash: hash,
        account_id: oauth.clone(),
        app_id: app.id.clone(),
        redirect_uri: "https://postern.example/oauth/callback".to_owned(),
    };
    let verifier = fx.seal(&verifier_ref, "verifier");
    fx.store
        .authorizations()
        .create(flow, &verifier)
        .await
        .unwrap();

    let expected: Vec<(SecretRef, &str)> = vec![
        (app.id.client_secret_ref(), "client-secret"),
        (password_account.password_ref(), "hunter2"),
        (oauth.access_token_ref(), "access"),
        (oauth.refresh_token_ref(), "refresh"),
        (verifier_ref, "verifier"),
    ];
    let (wrapped, key) = Vault::new_data_key(&fx.master, KeyId(2));
    fx.vault.add_key(KeyId(2), key);
    fx.vault.set_active(KeyId(2)).unwrap();
    let vault = &fx.vault;
    let reseal = |secret: &SecretRef, sealed: &Sealed| vault.reseal(&secret.context(), sealed);
    let report = fx
        .store
        .vault_keys()
        .rotate(wrapped.clone(), &reseal)
        .await
        .unwrap();

    assert_eq!(report.resealed, expected.len() as u64);
    fx.vault = Vault::unlock(&fx.master, &[wrapped], KeyId(2)).unwrap();
    for (secret, plaintext) in &expected {
        let sealed = fx.store.secrets().get(secret).await.unwrap().unwrap();
        assert_eq!(sealed.key_id(), KeyId(2), "{secret:?}");
        assert_eq!(fx.open(secret, &sealed), *plaintext, "{secret:?}");
    }
    let (access, _) = fx
        .store
        .grants()
        .load_tokens(&oauth)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fx.open(&oauth.access_token_ref(), &access), "access");
}
