//! OAuth apps: the clients an operator registers with Google, Microsoft, Yahoo or any OAuth2 server.
//!
//! Registration resolves the request against the provider's preset (endpoints, least-privilege
//! scopes, the parameters that make a refresh token come back), refuses the known traps with a
//! field-level error, and seals the client secret before it is stored.
//!
//! Registering and removing an app are written to the audit log (`app.created`, `app.removed`)
//! under the service's actor. The one setting that can change in place is Google's publishing
//! status ([`AccountService::set_publishing_status`]), which the expiry forecast reads.
//!
//! Non-goal: editing apps in place; remove and register again (accounts must be moved first).

use crate::accounts::AccountService;
use crate::error::{FieldError, ServiceError};
use crate::input::NewAppInput;
use postern_auth::presets::{AppInput, Provider};
use postern_store::{
    AppId, AuditAction, AuditOutcome, NewAuditEntry, NewOAuthApp, OAuthApp, PublishingStatus,
};
use std::str::FromStr;

/// A newly registered app and what resolution changed or doubts.
#[derive(Debug)]
pub struct RegisteredApp {
    /// The stored app.
    pub app: OAuthApp,
    /// Notes for the operator (e.g. "added access_type=offline").
    pub warnings: Vec<String>,
}

impl AccountService {
    /// Registers an OAuth app.
    pub async fn register_app(&self, input: NewAppInput) -> Result<RegisteredApp, ServiceError> {
        if input.name.trim().is_empty() {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "name",
                "must not be empty",
            )]));
        }
        let resolved = AppInput {
            provider: input.provider.clone(),
            client_id: input.client_id.clone(),
            redirect_uri: input.redirect_uri.clone(),
            scopes: input.scopes.clone().unwrap_or_default(),
            tenant: input.tenant.clone(),
            authorize_url: input.authorize_url.clone(),
            token_url: input.token_url.clone(),
            revoke_url: input.revoke_url.clone(),
            device_authorization_url: input.device_authorization_url.clone(),
            extra_params: input.extra_params.clone().unwrap_or_default(),
        }
        .resolve()
        .map_err(|errors| {
            ServiceError::Invalid(
                errors
                    .into_iter()
                    .map(|e| FieldError::new(e.field, e.message))
                    .collect(),
            )
        })?;
        let preset = resolved.provider.preset(resolved.tenant.as_deref());
        let id = AppId::generate();
        let secret = input.client_secret.as_ref().map(|secret| {
            self.vault()
                .seal_str(&id.client_secret_ref().context(), secret)
        });
        let new_app = NewOAuthApp {
            id,
            name: input.name.trim().to_owned(),
            provider: resolved.provider.as_str().to_owned(),
            client_id: resolved.client_id,
            redirect_uri: resolved.redirect_uri,
            scopes: resolved.scopes,
            tenant: resolved.tenant,
            authorize_url: resolved.authorize_url.to_string(),
            token_url: resolved.token_url.to_string(),
            revoke_url: resolved.revoke_url.map(|url| url.to_string()),
            device_authorization_url: resolved.device_authorization_url.map(|url| url.to_string()),
            extra_params: resolved.extra_params,
            imap_host: preset.imap.map(|server| server.host.to_owned()),
            imap_port: preset.imap.map(|server| server.port),
            smtp_host: preset.smtp.map(|server| server.host.to_owned()),
            smtp_port: preset.smtp.map(|server| server.port),
            secret_expires_at: input.secret_expires_at,
        };
        let app = self
            .store()
            .oauth_apps()
            .create(new_app, secret.as_ref())
            .await?;
        tracing::info!(app = %app.id, provider = %app.provider, "OAuth app registered");
        let detail = format!("{} app {:?} registered", app.provider, app.name);
        self.audit_app(&app.id, AuditAction::AppCreated, detail)
            .await;
        Ok(RegisteredApp {
            app,
            warnings: resolved
                .warnings
                .into_iter()
                .map(|w| format!("{}: {}", w.field, w.message))
                .collect(),
        })
    }

    /// One app.
    pub async fn app(&self, id: &str) -> Result<OAuthApp, ServiceError> {
        let app_id = parse_app_id(id)?;
        self.store()
            .oauth_apps()
            .get(&app_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("OAuth app {id}")))
    }

    /// Every app.
    pub async fn apps(&self) -> Result<Vec<OAuthApp>, ServiceError> {
        Ok(self.store().oauth_apps().list().await?)
    }

    /// Removes an app (refused while accounts use it).
    pub async fn remove_app(&self, id: &str) -> Result<(), ServiceError> {
        let app_id = parse_app_id(id)?;
        if self.store().oauth_apps().delete(&app_id).await? {
            self.audit_app(&app_id, AuditAction::AppRemoved, "app removed".to_owned())
                .await;
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("OAuth app {id}")))
        }
    }
}

impl AccountService {
    /// Records the app's Google publishing status (`testing` apps' grants die 7 days after consent,
    /// which the expiry forecast announces ahead of time). Every app starts as `production`.
    pub async fn set_publishing_status(
        &self,
        id: &str,
        status: PublishingStatus,
    ) -> Result<(), ServiceError> {
        let app_id = parse_app_id(id)?;
        if self
            .store()
            .expiry()
            .set_publishing_status(&app_id, status)
            .await?
        {
            tracing::info!(app = %app_id, %status, "publishing status set");
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("OAuth app {id}")))
        }
    }

    /// The app's Google publishing status.
    pub async fn publishing_status(&self, id: &str) -> Result<PublishingStatus, ServiceError> {
        let app_id = parse_app_id(id)?;
        self.store()
            .expiry()
            .publishing_status(&app_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("OAuth app {id}")))
    }

    async fn audit_app(&self, app_id: &AppId, action: AuditAction, detail: String) {
        let entry = NewAuditEntry::new(self.actor(), action, AuditOutcome::Ok)
            .with_app(app_id)
            .with_detail(detail);
        self.audit(entry).await;
    }
}

pub(crate) fn parse_app_id(id: &str) -> Result<AppId, ServiceError> {
    AppId::from_str(id).map_err(|_| ServiceError::NotFound(format!("OAuth app {id}")))
}

/// The provider's preset for an app, for default mail servers.
pub(crate) fn preset_of(app: &OAuthApp) -> Option<postern_auth::presets::Preset> {
    Provider::from_str(&app.provider)
        .ok()
        .map(|provider| provider.preset(app.tenant.as_deref()))
}
