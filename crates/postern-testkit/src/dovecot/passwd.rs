//! Password users for Dovecot's `passwd-file` passdb: one file per user under `passwd.d/`.
//!
//! Non-goal: password hashing; the scheme is `{PLAIN}` because these are throw-away test users.
//!
//! Key decision: one file per user, written with write-then-rename. Dovecot's `passwd_file_sync()`
//! stats a file at most once per second and only notices a changed mtime or size, so users appended
//! to one shared file can stay invisible to a login in the same second. A new user's file has never
//! been read and is always fresh; only changing an existing user's password has to wait out the
//! once-a-second rule (see [`write_user`]).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::HarnessError;
use super::config::Identity;
use super::setup::chown_to;

/// Writes `user`'s passwd-file into `dir`. Returns at once for a new user or an unchanged password;
/// a changed password returns only once Dovecot is certain to see it (up to ~2 s).
pub(crate) fn write_user(
    dir: &Path,
    identity: &Identity,
    user: &str,
    password: &str,
) -> Result<(), HarnessError> {
    validate_user(user)?;
    validate_password(user, password)?;
    // Dovecot lower-cases user names (`auth_username_format = %Lu`) before looking up the file.
    let user = user.to_ascii_lowercase();
    let path = dir.join(&user);
    let line = format!("{user}:{{PLAIN}}{password}::::::\n");
    let previous = std::fs::metadata(&path)
        .and_then(|meta| meta.modified())
        .ok();
    if previous.is_some() && std::fs::read_to_string(&path).is_ok_and(|text| text == line) {
        return Ok(());
    }
    if let Some(previous) = previous {
        // The new file must differ from the old one in mtime, whatever its size.
        sleep_past_second_of(previous);
    }
    let staging = dir.join(format!(".{user}.new"));
    std::fs::write(&staging, line).map_err(|source| HarnessError::io(&staging, source))?;
    chown_to(&staging, identity)?;
    std::fs::rename(&staging, &path).map_err(|source| HarnessError::io(&path, source))?;
    if previous.is_some() {
        // A lookup earlier in this second may have cached the old file until the next second.
        sleep_past_second_of(SystemTime::now());
    }
    Ok(())
}

/// Sleeps until the wall clock has left the whole second `instant` falls in.
fn sleep_past_second_of(instant: SystemTime) {
    let since_epoch = instant.duration_since(UNIX_EPOCH).unwrap_or_default();
    let next_second = UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs() + 1);
    if let Ok(remaining) = next_second.duration_since(SystemTime::now()) {
        std::thread::sleep(remaining + Duration::from_millis(10));
    }
}

fn validate_user(user: &str) -> Result<(), HarnessError> {
    let reason = if user.starts_with('.') {
        Some("starts with '.'")
    } else if user.contains('/') {
        Some("contains '/'")
    } else {
        common_problem(user)
    };
    reason.map_or(Ok(()), |reason| Err(invalid(user, reason)))
}

fn validate_password(user: &str, password: &str) -> Result<(), HarnessError> {
    common_problem(password).map_or(Ok(()), |reason| Err(invalid(user, reason)))
}

/// What makes a value unusable as a passwd-file field.
fn common_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("empty")
    } else if value.contains(':') {
        Some("contains ':'")
    } else if value.contains(['\n', '\r']) {
        Some("contains a line break")
    } else {
        None
    }
}

fn invalid(user: &str, reason: &'static str) -> HarnessError {
    HarnessError::InvalidPasswordUser {
        user: user.to_owned(),
        reason,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            user: String::new(),
            group: String::new(),
            uid: 0,
            gid: 0,
            switch_user: false,
        }
    }

    #[test]
    fn fields_reject_separators_line_breaks_and_paths() {
        assert!(validate_user("alice@example.test").is_ok());
        assert!(validate_password("u", "good pass").is_ok());
        for bad in ["", "a:b", "a\nb", "a\rb", "../x", ".hidden"] {
            assert!(validate_user(bad).is_err(), "{bad:?}");
        }
        assert!(validate_password("u", "a:b").is_err());
    }

    #[test]
    fn writes_one_lower_cased_file_per_user() {
        let dir = tempfile::tempdir().unwrap();
        write_user(dir.path(), &identity(), "Alice@Example.test", "pw").unwrap();
        let text = std::fs::read_to_string(dir.path().join("alice@example.test")).unwrap();
        assert_eq!(text, "alice@example.test:{PLAIN}pw::::::\n");
    }

    #[test]
    fn an_unchanged_password_returns_at_once() {
        let dir = tempfile::tempdir().unwrap();
        write_user(dir.path(), &identity(), "bob", "pw").unwrap();
        let started = std::time::Instant::now();
        write_user(dir.path(), &identity(), "bob", "pw").unwrap();
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
