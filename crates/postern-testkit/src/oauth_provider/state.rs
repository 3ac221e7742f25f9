//! The provider's memory: clients, grants, tokens, user decisions, faults and counters.
//!
//! Non-goal: persistence or fine-grained locking; a test provider holds a few hundred tokens behind one
//! mutex, and every operation on it is a few map look-ups.
//! Key decision: every token points at a grant and its validity is always decided through the grant,
//! so revoking a grant kills all its access and refresh tokens at once, as Google's revoke does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::authorize::PendingCode;
use super::config::{ClientConfig, Decision, Fault};
use super::counters::{Counters, Endpoint};
use super::device::DeviceAuthorization;
use super::wire::{OAuthError, PresentedCredentials};

pub(crate) type GrantId = u64;

/// Who a grant speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    /// A user's mailbox, by email address.
    User(String),
    /// The application itself (client credentials).
    App,
}

/// One consent: a client acting for a subject within some scopes.
#[derive(Debug)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) subject: Subject,
    pub(crate) scopes: Vec<String>,
    /// Whether a refresh token was issued for it.
    pub(crate) offline: bool,
    pub(crate) revoked: bool,
}

impl Grant {
    fn is_of_user(&self, email: &str) -> bool {
        self.subject == Subject::User(email.to_owned())
    }
}

#[derive(Debug)]
struct AccessToken {
    grant: GrantId,
    scopes: Vec<String>,
    issued_at: SystemTime,
    expires_at: SystemTime,
}

#[derive(Debug)]
struct RefreshToken {
    grant: GrantId,
    expires_at: Option<SystemTime>,
    /// Replaced by rotation: dead even though its grant lives.
    superseded: bool,
}

/// Everything the provider knows; the HTTP handlers and the test-side controls share it.
#[derive(Default)]
pub(crate) struct ProviderState {
    clients: HashMap<String, Arc<ClientConfig>>,
    decisions: HashMap<String, Decision>,
    pub(crate) codes: HashMap<String, PendingCode>,
    pub(crate) devices: HashMap<String, DeviceAuthorization>,
    grants: HashMap<GrantId, Grant>,
    next_grant_id: GrantId,
    access_tokens: HashMap<String, AccessToken>,
    refresh_tokens: HashMap<String, RefreshToken>,
    global_fault: Fault,
    client_faults: HashMap<String, Fault>,
    counters: Counters,
    client_counters: HashMap<String, Counters>,
}

impl ProviderState {
    pub(crate) fn register_client(&mut self, client: ClientConfig) {
        self.clients
            .insert(client.client_id.clone(), Arc::new(client));
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<Arc<ClientConfig>> {
        self.clients.get(client_id).cloned()
    }

    /// Checks the presented credentials; a public client (no secret) is identified by its id alone.
    pub(crate) fn authenticate(
        &self,
        presented: &PresentedCredentials,
    ) -> Result<Arc<ClientConfig>, OAuthError> {
        if presented.readings.is_empty() {
            let message = "Could not determine client ID from request.";
            return Err(OAuthError::invalid_client(message));
        }
        let client = presented
            .claimed_ids()
            .find_map(|id| self.client(id))
            .ok_or_else(|| OAuthError::invalid_client("The OAuth client was not found."))?;
        let Some(expected) = &client.client_secret else {
            return Ok(client);
        };
        let secrets: Vec<Option<&str>> = presented
            .readings
            .iter()
            .filter(|reading| reading.id == client.client_id)
            .map(|reading| reading.secret.as_deref())
            .collect();
        if secrets.contains(&Some(expected.expose_secret())) {
            Ok(client)
        } else if secrets.iter().all(Option::is_none) {
            Err(OAuthError::invalid_client("client_secret is missing."))
        } else {
            Err(OAuthError::invalid_client("Unauthorized"))
        }
    }

    pub(crate) fn decision_of(&self, email: &str) -> Decision {
        self.decisions.get(email).copied().unwrap_or_default()
    }

    pub(crate) fn set_decision(&mut self, email: &str, decision: Decision) {
        self.decisions.insert(email.to_owned(), decision);
    }

    pub(crate) fn create_grant(
        &mut self,
        client_id: &str,
        subject: Subject,
        scopes: Vec<String>,
        offline: bool,
    ) -> GrantId {
        self.next_grant_id += 1;
        let grant = Grant {
            client_id: client_id.to_owned(),
            subject,
            scopes,
            offline,
            revoked: false,
        };
        self.grants.insert(self.next_grant_id, grant);
        self.next_grant_id
    }

    pub(crate) fn grant(&self, id: GrantId) -> Option<&Grant> {
        self.grants.get(&id)
    }

    pub(crate) fn revoke_grant(&mut self, id: GrantId) {
        if let Some(grant) = self.grants.get_mut(&id) {
            grant.revoked = true;
        }
    }

    pub(crate) fn issue_access_token(
        &mut self,
        grant: GrantId,
        scopes: Vec<String>,
        ttl: Duration,
        now: SystemTime,
    ) -> String {
        let token = random_token("pat_");
        let record = AccessToken {
            grant,
            scopes,
            issued_at: now,
            expires_at: now + ttl,
        };
        self.access_tokens.insert(token.clone(), record);
        token
    }

    pub(crate) fn issue_refresh_token(
        &mut self,
        grant: GrantId,
        ttl: Option<Duration>,
        now: SystemTime,
    ) -> String {
        let token = random_token("prt_");
        let record = RefreshToken {
            grant,
            expires_at: ttl.map(|ttl| now + ttl),
            superseded: false,
        };
        self.refresh_tokens.insert(token.clone(), record);
        token
    }

    /// The grant behind a refresh token that can still be used.
    pub(crate) fn usable_refresh_grant(&self, token: &str, now: SystemTime) -> Option<GrantId> {
        let record = self.refresh_tokens.get(token)?;
        let expired = record.expires_at.is_some_and(|at| now >= at);
        let grant_live = self.grants.get(&record.grant).is_some_and(|g| !g.revoked);
        (!record.superseded && !expired && grant_live).then_some(record.grant)
    }

    pub(crate) fn supersede_refresh_token(&mut self, token: &str) {
        if let Some(record) = self.refresh_tokens.get_mut(token) {
            record.superseded = true;
        }
    }

    /// The grant behind an access token that is neither expired nor revoked.
    fn live_access_grant(&self, token: &str, now: SystemTime) -> Option<(&AccessToken, &Grant)> {
        let record = self.access_tokens.get(token)?;
        let grant = self.grants.get(&record.grant)?;
        (now < record.expires_at && !grant.revoked).then_some((record, grant))
    }

    /// RFC 7662 introspection of an access token; refresh tokens are reported inactive because a mail
    /// server must never accept one as a bearer token.
    pub(crate) fn introspect(&self, token: &str, now: SystemTime) -> Value {
        let Some((record, grant)) = self.live_access_grant(token, now) else {
            return json!({ "active": false });
        };
        let mut answer = json!({
            "active": true,
            "scope": record.scopes.join(" "),
            "client_id": grant.client_id,
            "token_type": "Bearer",
            "iat": unix_seconds(record.issued_at),
            "exp": unix_seconds(record.expires_at),
        });
        match &grant.subject {
            Subject::User(email) => {
                answer["email"] = json!(email);
                answer["sub"] = json!(subject_id(email));
            }
            Subject::App => {
                answer["sub"] = json!(grant.client_id);
                let mailbox = self
                    .clients
                    .get(&grant.client_id)
                    .and_then(|c| c.app_mailbox.clone());
                if let Some(mailbox) = mailbox {
                    answer["email"] = json!(mailbox);
                }
            }
        }
        answer
    }

    /// The client an access or refresh token belongs to, live or not (for counting and faults).
    pub(crate) fn client_of_token(&self, token: &str) -> Option<&str> {
        let grant = self
            .access_tokens
            .get(token)
            .map(|record| record.grant)
            .or_else(|| self.refresh_tokens.get(token).map(|record| record.grant))?;
        self.grants.get(&grant).map(|g| g.client_id.as_str())
    }

    /// Revokes the grant behind a live access token or a usable refresh token; `false` when the
    /// token is unknown or already dead.
    pub(crate) fn revoke_by_token(&mut self, token: &str, now: SystemTime) -> bool {
        let grant = self
            .live_access_grant(token, now)
            .map(|(record, _)| record.grant)
            .or_else(|| self.usable_refresh_grant(token, now));
        if let Some(grant) = grant {
            self.revoke_grant(grant);
        }
        grant.is_some()
    }

    /// Whether the user already holds a live grant with a refresh token for this client.
    pub(crate) fn has_offline_grant(&self, client_id: &str, email: &str) -> bool {
        self.grants.values().any(|grant| {
            grant.client_id == client_id
                && grant.is_of_user(email)
                && grant.offline
                && !grant.revoked
        })
    }

    pub(crate) fn expire_access_tokens_of(&mut self, email: &str, now: SystemTime) -> usize {
        let grants = &self.grants;
        let mut expired = 0;
        for record in self.access_tokens.values_mut() {
            let of_user = grants
                .get(&record.grant)
                .is_some_and(|g| g.is_of_user(email));
            if of_user && record.expires_at > now {
                record.expires_at = now;
                expired += 1;
            }
        }
        expired
    }

    pub(crate) fn revoke_grants_of(&mut self, email: &str) -> usize {
        let mut revoked = 0;
        for grant in self.grants.values_mut() {
            if grant.is_of_user(email) && !grant.revoked {
                grant.revoked = true;
                revoked += 1;
            }
        }
        revoked
    }

    /// Counts a call and returns the fault to simulate for it. The call is attributed to the first
    /// registered client among `claimed_client_ids`.
    pub(crate) fn record_call<'a>(
        &mut self,
        endpoint: Endpoint,
        claimed_client_ids: impl IntoIterator<Item = &'a str>,
    ) -> Fault {
        self.counters.record(endpoint);
        let client_id = claimed_client_ids
            .into_iter()
            .find(|id| self.clients.contains_key(*id));
        let Some(client_id) = client_id else {
            return self.global_fault;
        };
        let counters = self.client_counters.entry(client_id.to_owned());
        counters.or_default().record(endpoint);
        let client_fault = self.client_faults.get(client_id).copied();
        client_fault.unwrap_or(self.global_fault)
    }

    pub(crate) fn set_fault(&mut self, fault: Fault) {
        self.global_fault = fault;
    }

    /// A per-client fault overrides the global one; `Fault::None` removes the override.
    pub(crate) fn set_fault_for(&mut self, client_id: &str, fault: Fault) {
        if fault == Fault::None {
            self.client_faults.remove(client_id);
        } else {
            self.client_faults.insert(client_id.to_owned(), fault);
        }
    }

    pub(crate) fn counters(&self) -> Counters {
        self.counters
    }

    pub(crate) fn counters_for(&self, client_id: &str) -> Counters {
        self.client_counters
            .get(client_id)
            .copied()
            .unwrap_or_default()
    }

    pub(crate) fn reset_counters(&mut self) {
        self.counters = Counters::default();
        self.client_counters.clear();
    }

    pub(crate) fn reset_counters_for(&mut self, client_id: &str) {
        self.client_counters.remove(client_id);
    }
}

/// A fresh unguessable token: a recognizable prefix, then 32 random bytes in base64url.
pub(crate) fn random_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A stable, Google-like numeric `sub` for a user.
pub(crate) fn subject_id(email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    format!("1{:020}", u64::from_be_bytes(first))
}

pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::oauth_provider::wire::Params;

    fn state_with_client() -> ProviderState {
        let mut state = ProviderState::default();
        state.register_client(ClientConfig::confidential("app", "secret", "http://x/cb"));
        state
    }

    fn credentials(form: &str) -> PresentedCredentials {
        let params = Params::parse(form.as_bytes()).unwrap();
        PresentedCredentials::from_request(&Default::default(), &params).unwrap()
    }

    #[test]
    fn client_authentication_distinguishes_missing_wrong_and_unknown() {
        let state = state_with_client();
        let description = |form: &str| {
            state
                .authenticate(&credentials(form))
                .unwrap_err()
                .description
        };
        assert!(
            state
                .authenticate(&credentials("client_id=app&client_secret=secret"))
                .is_ok()
        );
        assert_eq!(description("client_id=app"), "client_secret is missing.");
        assert_eq!(
            description("client_id=app&client_secret=nope"),
            "Unauthorized"
        );
        assert_eq!(
            description("client_id=other"),
            "The OAuth client was not found."
        );
    }

    #[test]
    fn revoking_through_an_access_token_kills_the_refresh_token_too() {
        let mut state = state_with_client();
        let now = SystemTime::now();
        let user = Subject::User("a@example.test".into());
        let grant = state.create_grant("app", user, vec!["mail".into()], true);
        let access =
            state.issue_access_token(grant, vec!["mail".into()], Duration::from_secs(60), now);
        let refresh = state.issue_refresh_token(grant, None, now);
        assert!(state.revoke_by_token(&access, now));
        assert_eq!(state.usable_refresh_grant(&refresh, now), None);
        assert_eq!(state.introspect(&access, now), json!({ "active": false }));
        assert!(!state.revoke_by_token(&refresh, now), "already revoked");
    }

    #[test]
    fn subject_ids_are_stable_and_numeric() {
        let sub = subject_id("a@example.test");
        assert_eq!(sub, subject_id("a@example.test"));
        assert_ne!(sub, subject_id("b@example.test"));
        assert_eq!(sub.len(), 21);
        assert!(sub.chars().all(|c| c.is_ascii_digit()));
    }
}
