//! `POST /token`: the authorization-code, refresh-token, client-credentials and device-code grants.
//!
//! Non-goal: ID tokens, JWT access tokens or any grant Postern does not use (password, SAML).
//! Key decision: each check answers with the error code a real provider uses for it, and a dead refresh
//! token always carries Google's "Token has been expired or revoked." so Postern's classification of
//! `invalid_grant` as terminal is exercised by exactly what Google sends.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::config::ClientConfig;
use super::counters::GrantType;
use super::device;
use super::state::{GrantId, ProviderState, Subject};
use super::wire::{EXPIRED_OR_REVOKED, OAuthError, Params, PresentedCredentials, TokenResponse};

/// Answers one token request: grant type first, then client authentication, then the grant itself.
pub(crate) fn token(
    state: &mut ProviderState,
    presented: &PresentedCredentials,
    params: &Params,
    now: SystemTime,
) -> Result<TokenResponse, OAuthError> {
    type Grant = fn(
        &mut ProviderState,
        &ClientConfig,
        &Params,
        SystemTime,
    ) -> Result<TokenResponse, OAuthError>;
    let grant: Grant = match GrantType::from_param(params.get("grant_type")) {
        GrantType::AuthorizationCode => redeem_code,
        GrantType::RefreshToken => refresh,
        GrantType::ClientCredentials => client_credentials,
        GrantType::DeviceCode => device::poll,
        GrantType::Unsupported => {
            params.require("grant_type")?;
            let message =
                "Supported: authorization_code, refresh_token, client_credentials, device_code.";
            return Err(OAuthError::bad_request("unsupported_grant_type", message));
        }
    };
    let client = state.authenticate(presented)?;
    grant(state, &client, params, now)
}

fn redeem_code(
    state: &mut ProviderState,
    client: &ClientConfig,
    params: &Params,
    now: SystemTime,
) -> Result<TokenResponse, OAuthError> {
    let code = params.require("code")?;
    let pending = state
        .codes
        .get(code)
        .ok_or_else(|| OAuthError::invalid_grant("Malformed auth code."))?;
    if let Some(grant) = pending.redeemed_as {
        // RFC 6749 §4.1.2: a replayed code may be stolen, so its tokens die too.
        state.revoke_grant(grant);
        let message = "The authorization code was already redeemed; its tokens are revoked.";
        return Err(OAuthError::invalid_grant(message));
    }
    if pending.client_id != client.client_id {
        let message = "The authorization code was issued to another client.";
        return Err(OAuthError::invalid_grant(message));
    }
    if now >= pending.expires_at {
        return Err(OAuthError::invalid_grant(
            "The authorization code has expired.",
        ));
    }
    if params.require("redirect_uri")? != pending.redirect_uri {
        let message = "redirect_uri does not match the authorization request.";
        return Err(OAuthError::invalid_grant(message));
    }
    let verifier = params
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_grant("Missing code verifier."))?;
    if !pkce_s256_matches(verifier, &pending.code_challenge) {
        return Err(OAuthError::invalid_grant("Invalid code verifier."));
    }
    let (email, scopes, offline) = (
        pending.email.clone(),
        pending.scopes.clone(),
        pending.offline,
    );
    let grant = state.create_grant(
        &client.client_id,
        Subject::User(email),
        scopes.clone(),
        offline,
    );
    if let Some(pending) = state.codes.get_mut(code) {
        pending.redeemed_as = Some(grant);
    }
    Ok(issue(state, client, grant, scopes, offline, now))
}

fn refresh(
    state: &mut ProviderState,
    client: &ClientConfig,
    params: &Params,
    now: SystemTime,
) -> Result<TokenResponse, OAuthError> {
    let token = params.require("refresh_token")?;
    let dead = || OAuthError::invalid_grant(EXPIRED_OR_REVOKED);
    let grant_id = state.usable_refresh_grant(token, now).ok_or_else(dead)?;
    let grant = state.grant(grant_id).ok_or_else(dead)?;
    if grant.client_id != client.client_id {
        let message = "The refresh token was issued to another client.";
        return Err(OAuthError::invalid_grant(message));
    }
    let scopes = narrowed_scopes(&grant.scopes, params)?;
    if client.rotation {
        state.supersede_refresh_token(token);
    }
    Ok(issue(state, client, grant_id, scopes, client.rotation, now))
}

/// A refresh may ask for fewer scopes than granted, never for more (RFC 6749 §6).
fn narrowed_scopes(granted: &[String], params: &Params) -> Result<Vec<String>, OAuthError> {
    let requested = params.list("scope");
    if requested.is_empty() {
        return Ok(granted.to_vec());
    }
    match requested.iter().find(|scope| !granted.contains(scope)) {
        Some(extra) => Err(OAuthError::invalid_scope(format!(
            "Scope {extra} was not granted."
        ))),
        None => Ok(requested),
    }
}

/// App-only tokens, Microsoft style: a confidential client and `RESOURCE/.default` scopes.
fn client_credentials(
    state: &mut ProviderState,
    client: &ClientConfig,
    params: &Params,
    now: SystemTime,
) -> Result<TokenResponse, OAuthError> {
    if client.client_secret.is_none() {
        let message = "The client_credentials grant needs a confidential client.";
        return Err(OAuthError::bad_request("unauthorized_client", message));
    }
    let scopes = params.list("scope");
    if scopes.is_empty() {
        return Err(OAuthError::invalid_request("Missing parameter: scope"));
    }
    if let Some(bad) = scopes.iter().find(|scope| !scope.ends_with("/.default")) {
        let message = format!("Scope {bad} is not valid here; use RESOURCE/.default.");
        return Err(OAuthError::invalid_scope(message));
    }
    let grant = state.create_grant(&client.client_id, Subject::App, scopes.clone(), false);
    Ok(issue(state, client, grant, scopes, false, now))
}

/// Issues an access token (and a refresh token when asked) for a grant.
pub(crate) fn issue(
    state: &mut ProviderState,
    client: &ClientConfig,
    grant: GrantId,
    scopes: Vec<String>,
    with_refresh_token: bool,
    now: SystemTime,
) -> TokenResponse {
    let scope = scopes.join(" ");
    let access_token = state.issue_access_token(grant, scopes, client.access_ttl, now);
    let refresh_token =
        with_refresh_token.then(|| state.issue_refresh_token(grant, client.refresh_ttl, now));
    TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: client.access_ttl.as_secs(),
        refresh_token,
        scope,
    }
}

/// RFC 7636 S256: `BASE64URL(SHA256(verifier)) == challenge`, with a verifier of 43–128 characters.
pub(crate) fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let unreserved = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    let well_formed = (43..=128).contains(&verifier.len()) && verifier.chars().all(unreserved);
    well_formed && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_the_rfc_7636_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            challenge
        ));
        assert!(
            !pkce_s256_matches("short", challenge),
            "too short for RFC 7636"
        );
    }
}
