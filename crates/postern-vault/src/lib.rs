//! Encryption at rest for every secret Postern stores: passwords, OAuth client secrets, access
//! and refresh tokens are kept only as ciphertext.
//!
//! Envelope encryption: a 256-bit **master key** (from `POSTERN_MASTER_KEY` or a key file, see
//! [`load_master_key`]) wraps random 256-bit **data keys**, and the data keys seal secrets with
//! XChaCha20-Poly1305. The store persists only [`WrappedKey`]s and [`Sealed`] blobs; at start-up
//! it hands the wrapped keys to [`Vault::unlock`]. Each sealed secret is bound to a context such
//! as `b"account:42:refresh_token"`, so a blob copied to another row does not open.
//!
//! ```
//! use postern_vault::{KeyId, MasterKey, Vault};
//! use secrecy::{ExposeSecret, SecretString};
//!
//! let master = MasterKey::generate();
//! let (wrapped, _key) = Vault::new_data_key(&master, KeyId(1));
//! // ... the store persists `wrapped` and remembers that key 1 is active ...
//! let vault = Vault::unlock(&master, &[wrapped], KeyId(1))?;
//! let sealed = vault.seal_str(b"account:42:password", &SecretString::from("hunter2"));
//! let opened = vault.open_str(b"account:42:password", &sealed)?;
//! assert_eq!(opened.expose_secret(), "hunter2");
//! assert!(vault.open_str(b"account:43:password", &sealed).is_err());
//! # Ok::<(), postern_vault::VaultError>(())
//! ```
//!
//! Non-goals: persistence (the store's job), and any I/O beyond the master key file.
//! Key decision: the master key only ever encrypts data keys, so rotating the master key
//! re-wraps a few keys ([`Vault::rewrap_all`]) while rotating a data key ([`Vault::reseal`])
//! can proceed secret by secret with old keys still able to open what they sealed.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cipher;
mod data_key;
mod error;
mod key_file;
mod master_key;
mod sealed;
mod vault;

pub use data_key::{DataKey, KeyId, WrappedKey};
pub use error::{MalformedKeyProblem, VaultError};
pub use key_file::{MASTER_KEY_ENV, MasterKeyOrigin, create_key_file, load_master_key};
pub use master_key::MasterKey;
pub use sealed::Sealed;
pub use vault::Vault;
