//! Registered OAuth2 clients ("apps"): the provider endpoints, client id and scopes accounts use.
//!
//! Purpose: create, read, list, delete apps and record whether they work.
//! Non-goal: provider presets, URL building or token calls; `postern-auth` fills in a
//! [`NewOAuthApp`] from a preset and talks to the provider.
//! Key decision: the client secret is not a column but a sealed secret at
//! [`AppId::client_secret_ref`], so key rotation re-encrypts it with every other secret. The
//! caller chooses the id (`AppId::generate()`) because the secret must be sealed with that
//! address as associated data before `create` is called.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use postern_vault::Sealed;

use crate::ids::{text_enum, uuid_id};
use crate::{SecretRef, StoreError};

/// The `owner_kind` of an app's secrets.
pub(crate) const APP_OWNER: &str = "oauth_app";

uuid_id! {
    /// The id of an OAuth app: a UUID v7 in its canonical hyphenated, lower-case form.
    AppId
}

impl AppId {
    /// Where the app's client secret is stored; seal it with this reference's
    /// [`SecretRef::context`].
    pub fn client_secret_ref(&self) -> SecretRef {
        SecretRef::new(APP_OWNER, self.as_str(), "client_secret")
    }
}

text_enum! {
    /// Whether an app works, as far as Postern last saw.
    AppStatus {
        /// Usable.
        Active => "active",
        /// The provider refused the app itself (expired or wrong client secret, unknown client
        /// id): every account on it fails until an operator fixes it.
        Failed => "failed",
    }
}

/// What `create` needs: everything of an app except its status and timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOAuthApp {
    /// The app's id, chosen by the caller (see the module docs for why).
    pub id: AppId,
    /// A human label.
    pub name: String,
    /// The provider preset it was made from: `"google"`, `"microsoft"`, `"yahoo"` or `"generic"`.
    pub provider: String,
    /// The OAuth `client_id`.
    pub client_id: String,
    /// The redirect URI registered with the provider, if the app uses the code flow.
    pub redirect_uri: Option<String>,
    /// Scopes requested, e.g. `["https://mail.google.com/"]`.
    pub scopes: Vec<String>,
    /// Microsoft's tenant (`common`, `organizations`, `consumers` or a tenant id).
    pub tenant: Option<String>,
    /// The authorization endpoint.
    pub authorize_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// The revocation endpoint, if the provider has one.
    pub revoke_url: Option<String>,
    /// The device-authorization endpoint, if the provider has one.
    pub device_authorization_url: Option<String>,
    /// Extra query parameters for the authorization request, e.g. `access_type=offline`.
    pub extra_params: BTreeMap<String, String>,
    /// The IMAP host accounts of this app default to.
    pub imap_host: Option<String>,
    /// The IMAP port accounts of this app default to.
    pub imap_port: Option<u16>,
    /// The SMTP host accounts of this app default to.
    pub smtp_host: Option<String>,
    /// The SMTP port accounts of this app default to.
    pub smtp_port: Option<u16>,
    /// When the client secret expires (Microsoft secrets do), if known.
    pub secret_expires_at: Option<DateTime<Utc>>,
}

/// A stored app. Timestamps have millisecond precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthApp {
    /// The app's id.
    pub id: AppId,
    /// A human label.
    pub name: String,
    /// The provider preset it was made from.
    pub provider: String,
    /// The OAuth `client_id`.
    pub client_id: String,
    /// The registered redirect URI, if any.
    pub redirect_uri: Option<String>,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// Microsoft's tenant, if any.
    pub tenant: Option<String>,
    /// The authorization endpoint.
    pub authorize_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// The revocation endpoint, if any.
    pub revoke_url: Option<String>,
    /// The device-authorization endpoint, if any.
    pub device_authorization_url: Option<String>,
    /// Extra query parameters for the authorization request.
    pub extra_params: BTreeMap<String, String>,
    /// The default IMAP host.
    pub imap_host: Option<String>,
    /// The default IMAP port.
    pub imap_port: Option<u16>,
    /// The default SMTP host.
    pub smtp_host: Option<String>,
    /// The default SMTP port.
    pub smtp_port: Option<u16>,
    /// When the client secret expires, if known.
    pub secret_expires_at: Option<DateTime<Utc>>,
    /// Whether the app works.
    pub status: AppStatus,
    /// Why it failed, when it did.
    pub last_error: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// The OAuth-app repository.
#[async_trait]
pub trait OAuthApps: Send + Sync {
    /// Stores the app, and its client secret when given, in one transaction; returns the app as
    /// stored, [`AppStatus::Active`]. Fails with [`StoreError::UnknownKey`] if the secret is sealed
    /// with a key the store does not hold, and with [`StoreError::Database`] if the id is taken.
    async fn create(
        &self,
        new: NewOAuthApp,
        client_secret: Option<&Sealed>,
    ) -> Result<OAuthApp, StoreError>;

    /// The app with this id, if any.
    async fn get(&self, id: &AppId) -> Result<Option<OAuthApp>, StoreError>;

    /// Every app, oldest first.
    async fn list(&self) -> Result<Vec<OAuthApp>, StoreError>;

    /// Deletes the app, its secrets and any pending authorization naming it; false if it did not
    /// exist. Fails with [`StoreError::InUse`] (and changes nothing) while accounts use it.
    async fn delete(&self, id: &AppId) -> Result<bool, StoreError>;

    /// Sets the status and last error; true if either changed (false also for an unknown app).
    async fn set_status(
        &self,
        id: &AppId,
        status: AppStatus,
        last_error: Option<&str>,
    ) -> Result<bool, StoreError>;
}
