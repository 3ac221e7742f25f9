//! Behaviour of the unlocked vault, end to end through wrapping and sealing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::MasterKeyOrigin;

const CONTEXT: &[u8] = b"account:42:refresh_token";

/// A master key, one data key (id 1, active) and the vault unlocked from its wrapped form.
fn setup() -> (MasterKey, WrappedKey, Vault) {
    let master = MasterKey::generate();
    let (wrapped, _) = Vault::new_data_key(&master, KeyId(1));
    let vault = Vault::unlock(&master, std::slice::from_ref(&wrapped), KeyId(1)).unwrap();
    (master, wrapped, vault)
}

fn hex_of(key: &DataKey) -> String {
    hex::encode(key.bytes())
}

#[test]
fn round_trip_bytes_and_text() {
    let (_, _, vault) = setup();
    let sealed = vault.seal(CONTEXT, b"\x00binary\xff");
    assert_eq!(sealed.key_id(), KeyId(1));
    assert_eq!(
        vault.open(CONTEXT, &sealed).unwrap().expose_secret(),
        b"\x00binary\xff"
    );

    let secret = SecretString::from("p\u{e4}ssw\u{f6}rd");
    let sealed = vault.seal_str(CONTEXT, &secret);
    let stored = Sealed::from_bytes(sealed.as_bytes().to_vec()).unwrap();
    assert_eq!(
        vault.open_str(CONTEXT, &stored).unwrap().expose_secret(),
        secret.expose_secret()
    );
}

#[test]
fn sealing_twice_gives_different_blobs() {
    let (_, _, vault) = setup();
    assert_ne!(vault.seal(CONTEXT, b"same"), vault.seal(CONTEXT, b"same"));
}

#[test]
fn wrong_context_fails() {
    let (_, _, vault) = setup();
    let sealed = vault.seal(CONTEXT, b"token");
    let err = vault
        .open(b"account:43:refresh_token", &sealed)
        .unwrap_err();
    assert!(matches!(err, VaultError::Tampered), "{err:?}");
    assert!(matches!(
        vault.open(b"", &sealed),
        Err(VaultError::Tampered)
    ));
}

#[test]
fn any_tampered_byte_fails() {
    let (_, _, vault) = setup();
    let original = vault.seal(CONTEXT, b"token").into_bytes();
    // Every byte after the key id: nonce, ciphertext and tag.
    for index in 5..original.len() {
        let mut bytes = original.clone();
        bytes[index] ^= 0x01;
        let sealed = Sealed::from_bytes(bytes).unwrap();
        let err = vault.open(CONTEXT, &sealed).unwrap_err();
        assert!(matches!(err, VaultError::Tampered), "byte {index}: {err:?}");
    }
}

#[test]
fn an_edited_key_id_names_an_unknown_key_or_fails_authentication() {
    let master = MasterKey::generate();
    let (w1, _) = Vault::new_data_key(&master, KeyId(1));
    let (w2, _) = Vault::new_data_key(&master, KeyId(2));
    let vault = Vault::unlock(&master, &[w1, w2], KeyId(1)).unwrap();
    let mut bytes = vault.seal(CONTEXT, b"token").into_bytes();

    bytes[4] = 2; // now claims key 2, which is loaded
    let relabelled = Sealed::from_bytes(bytes.clone()).unwrap();
    assert!(matches!(
        vault.open(CONTEXT, &relabelled),
        Err(VaultError::Tampered)
    ));

    bytes[4] = 7; // a key the vault does not hold
    let unknown = Sealed::from_bytes(bytes).unwrap();
    assert!(matches!(
        vault.open(CONTEXT, &unknown),
        Err(VaultError::UnknownKey(KeyId(7)))
    ));
}

#[test]
fn wrong_master_key_gives_exactly_the_mismatch_message() {
    let (_, wrapped, _) = setup();
    let err = Vault::unlock(&MasterKey::generate(), &[wrapped], KeyId(1)).unwrap_err();
    assert!(matches!(err, VaultError::MasterKeyMismatch));
    assert_eq!(
        err.to_string(),
        "cannot decrypt: master key does not match this data dir"
    );
}

#[test]
fn one_bad_wrapped_key_among_good_ones_is_reported_as_corrupt() {
    let master = MasterKey::generate();
    let (w1, _) = Vault::new_data_key(&master, KeyId(1));
    let (w2, _) = Vault::new_data_key(&MasterKey::generate(), KeyId(2));
    let err = Vault::unlock(&master, &[w1.clone(), w2], KeyId(1)).unwrap_err();
    assert!(
        matches!(err, VaultError::CorruptWrappedKey(KeyId(2))),
        "{err:?}"
    );

    let truncated = WrappedKey {
        id: KeyId(3),
        bytes: w1.bytes[..10].to_vec(),
    };
    let err = Vault::unlock(&master, &[w1, truncated], KeyId(1)).unwrap_err();
    assert!(
        matches!(err, VaultError::CorruptWrappedKey(KeyId(3))),
        "{err:?}"
    );
}

#[test]
fn unlock_requires_the_active_key_to_be_stored() {
    let (master, wrapped, _) = setup();
    let err = Vault::unlock(&master, &[wrapped], KeyId(2)).unwrap_err();
    assert!(matches!(err, VaultError::UnknownKey(KeyId(2))));
    let err = Vault::unlock(&master, &[], KeyId(1)).unwrap_err();
    assert!(matches!(err, VaultError::UnknownKey(KeyId(1))));
}

#[test]
fn reseal_moves_to_the_active_key_and_old_blobs_open_until_the_key_is_removed() {
    let (master, _, mut vault) = setup();
    let old = vault.seal(CONTEXT, b"token");

    let (_, key2) = Vault::new_data_key(&master, KeyId(2));
    vault.add_key(KeyId(2), key2);
    assert_eq!(
        vault.active_key(),
        KeyId(1),
        "adding a key does not activate it"
    );
    vault.set_active(KeyId(2)).unwrap();
    assert_eq!(vault.active_key(), KeyId(2));

    let resealed = vault.reseal(CONTEXT, &old).unwrap();
    assert_eq!(resealed.key_id(), KeyId(2));
    assert_eq!(
        vault.open(CONTEXT, &resealed).unwrap().expose_secret(),
        b"token"
    );
    assert_eq!(vault.open(CONTEXT, &old).unwrap().expose_secret(), b"token");
    assert!(matches!(
        vault.reseal(b"other", &old),
        Err(VaultError::Tampered)
    ));

    vault.remove_key(KeyId(1)).unwrap();
    assert_eq!(vault.key_ids().collect::<Vec<_>>(), vec![KeyId(2)]);
    assert!(matches!(
        vault.open(CONTEXT, &old),
        Err(VaultError::UnknownKey(KeyId(1)))
    ));
    assert_eq!(
        vault.open(CONTEXT, &resealed).unwrap().expose_secret(),
        b"token"
    );
}

#[test]
fn the_active_key_cannot_be_removed_and_unknown_keys_cannot_be_activated() {
    let (_, _, mut vault) = setup();
    assert!(matches!(
        vault.remove_key(KeyId(1)),
        Err(VaultError::ActiveKeyInUse(KeyId(1)))
    ));
    assert!(matches!(
        vault.set_active(KeyId(9)),
        Err(VaultError::UnknownKey(KeyId(9)))
    ));
    assert!(matches!(
        vault.remove_key(KeyId(9)),
        Err(VaultError::UnknownKey(KeyId(9)))
    ));
    assert_eq!(vault.active_key(), KeyId(1));
    // The vault still seals after the refused operations.
    let sealed = vault.seal(CONTEXT, b"x");
    assert_eq!(vault.open(CONTEXT, &sealed).unwrap().expose_secret(), b"x");
}

#[test]
fn rewrap_all_output_unlocks_with_the_new_master_only() {
    let (old_master, _, mut vault) = setup();
    let (_, key2) = Vault::new_data_key(&old_master, KeyId(2));
    vault.add_key(KeyId(2), key2);
    let sealed = vault.seal(CONTEXT, b"token");

    let new_master = MasterKey::generate();
    let rewrapped = vault.rewrap_all(&new_master);
    let ids: Vec<_> = rewrapped.iter().map(|w| w.id).collect();
    assert_eq!(ids, vec![KeyId(1), KeyId(2)]);

    let err = Vault::unlock(&old_master, &rewrapped, KeyId(1)).unwrap_err();
    assert!(matches!(err, VaultError::MasterKeyMismatch));
    let reopened = Vault::unlock(&new_master, &rewrapped, KeyId(1)).unwrap();
    assert_eq!(
        reopened.open(CONTEXT, &sealed).unwrap().expose_secret(),
        b"token"
    );
}

#[test]
fn open_str_refuses_binary_secrets() {
    let (_, _, vault) = setup();
    let sealed = vault.seal(CONTEXT, b"\xff\xfe");
    assert!(matches!(
        vault.open_str(CONTEXT, &sealed),
        Err(VaultError::NotUtf8)
    ));
}

#[test]
fn debug_output_never_contains_key_material() {
    let master = MasterKey::generate();
    let master_hex = master.to_hex().expose_secret().to_owned();
    let (wrapped, data_key) = Vault::new_data_key(&master, KeyId(1));
    let data_hex = hex_of(&data_key);
    let mut vault = Vault::unlock(&master, std::slice::from_ref(&wrapped), KeyId(1)).unwrap();
    vault.add_key(KeyId(1), data_key);
    let sealed = vault.seal(CONTEXT, b"plaintext-token");
    let loaded_hex = hex_of(vault.active_data_key());
    assert_eq!(loaded_hex, data_hex);

    let outputs = [
        format!("{master:?}"),
        format!("{vault:?}"),
        format!("{wrapped:?}"),
        format!("{sealed:?}"),
        format!("{:?}", vault.open(CONTEXT, &sealed).unwrap()),
        format!("{:?}", vault.open_str(b"x", &sealed).unwrap_err()),
        format!("{:?}", MasterKey::from_hex(&master_hex[..60]).unwrap_err()),
        format!("{:?}", MasterKeyOrigin::Environment),
    ];
    let wrapped_hex = hex::encode(&wrapped.bytes);
    let sealed_hex = hex::encode(sealed.as_bytes());
    for output in &outputs {
        for secret in [&master_hex, &data_hex, &master_hex[..16], &data_hex[..16]] {
            assert!(!output.contains(secret), "key bytes in {output}");
        }
        assert!(!output.contains("plaintext-token"), "plaintext in {output}");
        assert!(
            !output.contains(&wrapped_hex[..16]),
            "wrapped bytes in {output}"
        );
        assert!(
            !output.contains(&sealed_hex[10..26]),
            "ciphertext in {output}"
        );
    }
    assert_eq!(outputs[0], "MasterKey(<redacted>)");
    assert_eq!(outputs[1], "Vault { active: KeyId(1), keys: [KeyId(1)] }");
    assert_eq!(
        outputs[3],
        format!(
            "Sealed {{ key_id: KeyId(1), len: {} }}",
            sealed.as_bytes().len()
        )
    );

    let (_, fresh) = Vault::new_data_key(&master, KeyId(2));
    let fresh_debug = format!("{fresh:?}");
    assert_eq!(fresh_debug, "DataKey(<redacted>)");
    assert!(!fresh_debug.contains(&hex_of(&fresh)));
}
