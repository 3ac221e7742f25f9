//! A real browser for tests of Postern's web pages: Debian's Chromium, headless.
//!
//! [`load_page`] navigates to a URL the way a person's browser would (following the provider's
//! redirects back to Postern, running the page) and returns the document as rendered, plus a
//! screenshot when asked. Tests assert on that DOM rather than on the HTML a plain HTTP client
//! fetched, so what is checked is what a user sees.
//!
//! Non-goal: scripting clicks and forms (no page needs them yet); when one does, drive Chromium
//! over the DevTools protocol from here.
//!
//! Key decision: the flags the workplace needs for a closed network (no background networking,
//! no component updates, no sync) and a throw-away profile per call, so runs never share state.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where Debian's package installs Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Occurs when the page could not be loaded in the browser.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// Occurs when Chromium is not installed; the message says how to install it.
    #[error(
        "chromium is not installed at {CHROMIUM}: run scripts/test (it installs what the tests need) \
         or `apt-get install chromium`"
    )]
    Missing,
    /// Occurs when Chromium cannot be started or its profile directory cannot be made.
    #[error("cannot run chromium: {0}")]
    Io(#[from] std::io::Error),
    /// Occurs when Chromium exits with an error.
    #[error("chromium failed ({status}): {stderr}")]
    Failed {
        /// The exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        stderr: String,
    },
}

/// Loads `url` in headless Chromium and returns the rendered DOM; with `screenshot`, also writes a
/// PNG of the page there.
pub fn load_page(url: &str, screenshot: Option<&Path>) -> Result<String, BrowserError> {
    if !Path::new(CHROMIUM).is_file() {
        return Err(BrowserError::Missing);
    }
    let profile = tempfile::tempdir()?;
    // One navigation for both: pages like the OAuth callback are single-use, so a second visit
    // would show a different page than the one whose DOM is returned.
    let mut extra = vec!["--dump-dom".to_owned()];
    if let Some(path) = screenshot {
        extra.push(format!("--screenshot={}", path.display()));
        extra.push("--window-size=900,600".to_owned());
    }
    run(url, profile.path(), &extra)
}

fn run(url: &str, profile: &Path, extra: &[String]) -> Result<String, BrowserError> {
    let output = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!(
            "--virtual-time-budget={}",
            Duration::from_secs(5).as_millis()
        ))
        .args(extra)
        .arg(url)
        .output()?;
    if !output.status.success() {
        return Err(BrowserError::Failed {
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A path for a screenshot under the system temp dir.
pub fn screenshot_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("postern-{name}.png"))
}
