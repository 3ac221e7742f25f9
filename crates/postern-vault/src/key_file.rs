//! Finding the master key at start-up: the `POSTERN_MASTER_KEY` environment variable, else the
//! key file, else a key file created on first start.
//!
//! Purpose: the only file I/O of the vault, and the permission policy for the key file.
//! Non-goal: key management services, passphrase-derived keys, or replacing an existing key file
//! (`create_key_file` never overwrites).
//! Key decision: the file is created with mode 0600 in the same `open` call (`create_new`, so no
//! window where it is readable and no overwrite of an existing key), and an existing file that
//! others may read is refused rather than silently fixed: the operator must learn that the key
//! may already have leaked.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{MalformedKeyProblem, VaultError};
use crate::master_key::MasterKey;

/// The environment variable holding the master key as 64 hex characters.
pub const MASTER_KEY_ENV: &str = "POSTERN_MASTER_KEY";

/// Permission bits the key file may have: read and write for its owner.
const OWNER_READ_WRITE: u32 = 0o600;

/// A key file is 65 bytes; reading stops here so a wrong path cannot make us load a huge file.
const MAX_KEY_FILE_LEN: usize = 256;

/// Where [`load_master_key`] found the master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterKeyOrigin {
    /// From the `POSTERN_MASTER_KEY` environment variable; the key file was not consulted.
    Environment,
    /// Read from this existing key file.
    File(PathBuf),
    /// Nothing was configured: a new key was generated and written to this file.
    Created(PathBuf),
}

impl fmt::Display for MasterKeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => write!(f, "master key read from {MASTER_KEY_ENV}"),
            Self::File(path) => write!(f, "master key read from {}", path.display()),
            Self::Created(path) => write!(
                f,
                "created a new master key in {}; back it up: without it the stored secrets \
                 cannot be decrypted",
                path.display()
            ),
        }
    }
}

/// Loads the master key: from `env_hex` (the value of `POSTERN_MASTER_KEY`, if set), else from
/// `key_file`, else by creating `key_file` (and its folder) with a new random key.
pub fn load_master_key(
    env_hex: Option<&SecretString>,
    key_file: &Path,
) -> Result<(MasterKey, MasterKeyOrigin), VaultError> {
    if let Some(hex) = env_hex {
        let key = MasterKey::parse(hex.expose_secret(), MASTER_KEY_ENV)?;
        return Ok((key, MasterKeyOrigin::Environment));
    }
    if let Some(key) = read_key_file(key_file)? {
        return Ok((key, MasterKeyOrigin::File(key_file.to_owned())));
    }
    let key = MasterKey::generate();
    create_key_file(key_file, &key)?;
    Ok((key, MasterKeyOrigin::Created(key_file.to_owned())))
}

/// Writes `key` to a new file at `path` with mode 0600, creating missing parent folders
/// (mode 0700). Fails if the file already exists.
pub fn create_key_file(path: &Path, key: &MasterKey) -> Result<(), VaultError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(|source| io_error(parent, source))?;
    }
    let mut file = open_new_private_file(path).map_err(|source| io_error(path, source))?;
    if let Err(source) = write_key(&mut file, key) {
        // A half-written key file would be refused as malformed on the next start; remove it so
        // that start simply creates a fresh one. Nothing was encrypted with this key yet.
        drop(file);
        let _ = fs::remove_file(path);
        return Err(io_error(path, source));
    }
    Ok(())
}

/// Reads and checks an existing key file; `Ok(None)` when there is no file.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, VaultError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error(path, source)),
    };
    // Checked on the open handle, so the file checked is the file read.
    check_permissions(&file, path)?;
    let contents = read_limited(file).map_err(|source| io_error(path, source))?;
    let origin = path.display().to_string();
    let text = std::str::from_utf8(&contents).map_err(|err| VaultError::MalformedMasterKey {
        origin: origin.clone(),
        problem: MalformedKeyProblem::NotHex {
            position: err.valid_up_to(),
        },
    })?;
    MasterKey::parse(text, &origin).map(Some)
}

/// Reads at most [`MAX_KEY_FILE_LEN`] bytes into a buffer that is wiped when dropped.
fn read_limited(mut file: File) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; MAX_KEY_FILE_LEN]);
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

fn write_key(file: &mut File, key: &MasterKey) -> io::Result<()> {
    file.write_all(key.to_hex().expose_secret().as_bytes())?;
    file.write_all(b"\n")?;
    // The key must survive a crash: secrets encrypted under it are useless without it.
    file.sync_all()
}

#[cfg(unix)]
fn check_permissions(file: &File, path: &Path) -> Result<(), VaultError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|source| io_error(path, source))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & !OWNER_READ_WRITE != 0 {
        return Err(VaultError::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_file: &File, _path: &Path) -> Result<(), VaultError> {
    Ok(())
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn open_new_private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, OWNER_READ_WRITE);
    options.open(path)
}

fn io_error(path: &Path, source: io::Error) -> VaultError {
    VaultError::KeyFileIo {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    #[cfg(unix)]
    fn first_start_creates_a_0600_file_that_reloads_to_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("master.key");

        let (created, origin) = load_master_key(None, &path).unwrap();
        assert_eq!(origin, MasterKeyOrigin::Created(path.clone()));
        assert!(origin.to_string().contains("back it up"));
        assert_eq!(mode_of(&path), 0o600);
        let on_disk = fs::read_to_string(&path).unwrap();
        assert_eq!(on_disk.len(), 65);
        assert!(on_disk.ends_with('\n'));

        let (reloaded, origin) = load_master_key(None, &path).unwrap();
        assert_eq!(origin, MasterKeyOrigin::File(path.clone()));
        assert_eq!(reloaded.bytes(), created.bytes());
    }

    #[test]
    #[cfg(unix)]
    fn a_world_readable_key_file_is_refused_with_the_fix() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .unwrap();
        writeln!(file, "{HEX}").unwrap();
        drop(file);
        assert_eq!(mode_of(&path), 0o644, "umask must not hide the test case");

        let err = load_master_key(None, &path).unwrap_err();
        assert!(matches!(
            err,
            VaultError::KeyFilePermissions { mode: 0o644, .. }
        ));
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
        assert!(message.contains("0644"), "{message}");
    }

    #[test]
    fn the_environment_wins_and_no_file_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let env = SecretString::from(HEX);
        let (key, origin) = load_master_key(Some(&env), &path).unwrap();
        assert_eq!(origin, MasterKeyOrigin::Environment);
        assert_eq!(key.to_hex().expose_secret(), HEX);
        assert!(!path.exists());
    }

    #[test]
    fn a_malformed_environment_key_names_the_variable_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let value = &HEX[..40];
        let err =
            load_master_key(Some(&SecretString::from(value)), &dir.path().join("k")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(MASTER_KEY_ENV), "{message}");
        assert!(!message.contains(value), "{message}");
    }

    #[test]
    #[cfg(unix)]
    fn a_malformed_key_file_names_the_path() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        file.write_all(b"not a key\n").unwrap();
        drop(file);
        let err = load_master_key(None, &path).unwrap_err();
        assert!(matches!(
            err,
            VaultError::MalformedMasterKey {
                problem: MalformedKeyProblem::WrongLength { found: 9 },
                ..
            }
        ));
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn create_key_file_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        create_key_file(&path, &MasterKey::generate()).unwrap();
        let before = fs::read(&path).unwrap();
        let err = create_key_file(&path, &MasterKey::generate()).unwrap_err();
        assert!(matches!(err, VaultError::KeyFileIo { .. }));
        assert_eq!(fs::read(&path).unwrap(), before);
    }
}
