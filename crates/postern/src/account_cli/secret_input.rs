//! Secrets handed to the command line: read from a file, an environment variable or standard input.
//!
//! Never from an argument: arguments land in the shell history and in `ps`, where every user of the
//! machine can read them.
//!
//! Non-goal: prompting on a terminal. Pipe the secret in, or point at a file or a variable.
//!
//! Key decision: only the final line break is dropped (files and `echo` end with one); anything else
//! is part of the secret, since a password may begin or end with spaces.

use anyhow::{Context, bail};
use secrecy::SecretString;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

/// Where a secret comes from.
pub enum SecretSource {
    /// A file holding the secret.
    File(PathBuf),
    /// An environment variable holding the secret.
    Env(String),
    /// Standard input, read to its end.
    Stdin,
}

impl SecretSource {
    /// The source the flags name, if any; `stdin` says whether standard input was asked for.
    pub fn from_flags(file: Option<PathBuf>, env: Option<String>, stdin: bool) -> Option<Self> {
        match (file, env) {
            (Some(file), _) => Some(SecretSource::File(file)),
            (None, Some(variable)) => Some(SecretSource::Env(variable)),
            (None, None) => stdin.then_some(SecretSource::Stdin),
        }
    }

    /// Standard input, when it is a pipe or a file rather than a terminal.
    pub fn stdin_if_redirected() -> Option<Self> {
        (!std::io::stdin().is_terminal()).then_some(SecretSource::Stdin)
    }

    /// Reads the secret; `what` names it in errors ("the client secret"). An empty secret is
    /// `None`, for the caller to refuse or to take as "no secret".
    pub fn read(&self, what: &str) -> anyhow::Result<Option<SecretString>> {
        let mut text = match self {
            SecretSource::File(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {what} from {}", path.display()))?,
            SecretSource::Env(variable) => match std::env::var(variable) {
                Ok(text) => text,
                Err(std::env::VarError::NotPresent) => {
                    bail!("cannot read {what}: the environment variable {variable} is not set")
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    bail!("cannot read {what}: the environment variable {variable} is not UTF-8")
                }
            },
            SecretSource::Stdin => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .with_context(|| format!("cannot read {what} from standard input"))?;
                text
            }
        };
        let kept = text.strip_suffix('\n').unwrap_or(&text);
        let kept = kept.strip_suffix('\r').unwrap_or(kept).len();
        text.truncate(kept);
        Ok((!text.is_empty()).then(|| SecretString::from(text)))
    }

    /// Reads a secret that must not be empty.
    pub fn read_required(&self, what: &str) -> anyhow::Result<SecretString> {
        match self.read(what)? {
            Some(secret) => Ok(secret),
            None => bail!("{what} is empty ({})", self.describe()),
        }
    }

    fn describe(&self) -> String {
        match self {
            SecretSource::File(path) => format!("file {}", path.display()),
            SecretSource::Env(variable) => format!("environment variable {variable}"),
            SecretSource::Stdin => "standard input".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn only_the_final_line_break_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        for (written, read) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            (" spaced \n\n", " spaced \n"),
            ("no newline", "no newline"),
        ] {
            let path = dir.path().join("secret");
            std::fs::write(&path, written).unwrap();
            let secret = SecretSource::File(path)
                .read("the secret")
                .unwrap()
                .unwrap();
            assert_eq!(secret.expose_secret(), read, "{written:?}");
        }
    }

    #[test]
    fn an_empty_or_missing_secret_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, "\n").unwrap();
        let error = SecretSource::File(path.clone())
            .read_required("the password")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("the password is empty (file {})", path.display())
        );
        let error = SecretSource::Env("POSTERN_TEST_SURELY_UNSET_VARIABLE".into())
            .read("the password")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("POSTERN_TEST_SURELY_UNSET_VARIABLE is not set")
        );
    }
}
