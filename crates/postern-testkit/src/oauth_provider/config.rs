//! The knobs a test turns: client registrations, refresh-token policy, faults and user decisions.
//!
//! Non-goal: a configuration file format; tests build these values in code.
//! Key decision: everything that differs between Google and Microsoft (when a refresh token is issued,
//! whether it rotates, how long tokens live) is a per-client setting, so one shared provider can play
//! both providers at once for tests running in parallel.

use std::time::Duration;

use secrecy::SecretString;

/// When the token endpoint hands out a refresh token, mirroring the real providers' rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefreshPolicy {
    /// Every user grant gets a refresh token (the convenient default for tests).
    #[default]
    Always,
    /// Google: only when the authorization request said `access_type=offline`; on re-consent of a user
    /// who already holds a live refresh token for this client, only with `prompt=consent` as well.
    /// The device flow always gets one, as at Google.
    GoogleOffline,
    /// Microsoft: only when the requested scopes include `offline_access` (code and device flows).
    MicrosoftOfflineAccess,
}

/// One registered OAuth client (an "app" in Postern's terms).
///
/// Build it with [`ClientConfig::google_like`], [`ClientConfig::microsoft_like`] or struct update syntax
/// over [`ClientConfig::default`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The `client_id` the client presents.
    pub client_id: String,
    /// The secret of a confidential client; `None` makes a public client (PKCE / device flow only).
    pub client_secret: Option<SecretString>,
    /// Exact redirect URIs accepted at `/authorize` and `/token`.
    pub redirect_uris: Vec<String>,
    /// When a refresh token is issued.
    pub refresh_policy: RefreshPolicy,
    /// Microsoft-like rotation: each refresh returns a new refresh token and invalidates the old one.
    /// Without rotation the refresh response carries no `refresh_token`, as at Google.
    pub rotation: bool,
    /// Lifetime of access tokens (`expires_in`); 3600 s by default.
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens; `None` (the default) means they never expire on their own.
    pub refresh_ttl: Option<Duration>,
    /// Lifetime of authorization codes; 60 s by default.
    pub code_ttl: Duration,
    /// Lifetime of device codes (`expires_in` of `/device/code`); 1800 s by default.
    pub device_code_ttl: Duration,
    /// Minimum time between two device-flow polls. Reported to clients rounded up to whole seconds
    /// (at least 1), enforced exactly, so tests can use sub-second intervals. 5 s by default.
    pub device_poll_interval: Duration,
    /// The mailbox this client's app-only (client-credentials) tokens open, as when a Microsoft 365
    /// admin grants an app access to a mailbox. Introspection reports it as the token's `email`, so
    /// Dovecot lets such a token log in as that mailbox; `None` (the default) opens none.
    pub app_mailbox: Option<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: None,
            redirect_uris: Vec::new(),
            refresh_policy: RefreshPolicy::Always,
            rotation: false,
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: None,
            code_ttl: Duration::from_secs(60),
            device_code_ttl: Duration::from_secs(1800),
            device_poll_interval: Duration::from_secs(5),
            app_mailbox: None,
        }
    }
}

impl ClientConfig {
    /// A confidential client that always gets refresh tokens and never rotates them.
    pub fn confidential(
        client_id: impl Into<String>,
        client_secret: &str,
        redirect_uri: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(SecretString::from(client_secret)),
            redirect_uris: vec![redirect_uri.into()],
            ..Self::default()
        }
    }

    /// A client that behaves like a Google web app: refresh tokens only for `access_type=offline`,
    /// no rotation.
    pub fn google_like(
        client_id: impl Into<String>,
        client_secret: &str,
        redirect_uri: impl Into<String>,
    ) -> Self {
        Self {
            refresh_policy: RefreshPolicy::GoogleOffline,
            ..Self::confidential(client_id, client_secret, redirect_uri)
        }
    }

    /// A client that behaves like a Microsoft Entra app: refresh tokens only with `offline_access`,
    /// rotated on every refresh.
    pub fn microsoft_like(
        client_id: impl Into<String>,
        client_secret: &str,
        redirect_uri: impl Into<String>,
    ) -> Self {
        Self {
            refresh_policy: RefreshPolicy::MicrosoftOfflineAccess,
            rotation: true,
            ..Self::confidential(client_id, client_secret, redirect_uri)
        }
    }
}

/// A failure the provider simulates on every endpoint (globally or for one client).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally.
    #[default]
    None,
    /// Answer `500` with `{"error":"server_error",...}`.
    ServerError,
    /// Wait this long, then answer normally (for client timeouts).
    Slow(Duration),
    /// Answer `503` with `{"error":"temporarily_unavailable",...}` and `Retry-After: 1`.
    Unavailable,
}

/// What a user answers on the consent screen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Decision {
    /// Grant access (the default for every user).
    #[default]
    Approve,
    /// Refuse: `/authorize` redirects with `error=access_denied`, the device flow ends in `access_denied`.
    Deny,
}

/// Tokens minted by [`TestOAuthProvider::mint_tokens`](super::TestOAuthProvider::mint_tokens).
#[derive(Clone, Debug)]
pub struct IssuedTokens {
    /// The bearer token for IMAP/SMTP (`pat_…`).
    pub access_token: SecretString,
    /// The refresh token of the grant (`prt_…`).
    pub refresh_token: SecretString,
    /// Lifetime of the access token.
    pub expires_in: Duration,
    /// The granted scopes, space-separated.
    pub scope: String,
}

impl RefreshPolicy {
    /// Whether an authorization-code grant gets a refresh token.
    pub(crate) fn for_code_flow(
        self,
        scopes: &[String],
        access_type_offline: bool,
        prompt_consent: bool,
        user_holds_refresh_token: bool,
    ) -> bool {
        match self {
            Self::Always => true,
            // Google answers a repeated consent without `prompt=consent` with an access token only.
            Self::GoogleOffline => {
                access_type_offline && (prompt_consent || !user_holds_refresh_token)
            }
            Self::MicrosoftOfflineAccess => has_offline_access(scopes),
        }
    }

    /// Whether a device-flow grant gets a refresh token (Google always gives one there).
    pub(crate) fn for_device_flow(self, scopes: &[String]) -> bool {
        match self {
            Self::Always | Self::GoogleOffline => true,
            Self::MicrosoftOfflineAccess => has_offline_access(scopes),
        }
    }
}

fn has_offline_access(scopes: &[String]) -> bool {
    scopes.iter().any(|scope| scope == "offline_access")
}
