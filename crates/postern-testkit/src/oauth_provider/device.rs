//! The device authorization grant (RFC 8628): `POST /device/code`, polling at `/token`, and the
//! test-side approval that stands in for a user typing the code on another device.
//!
//! Non-goal: a verification page where a person enters the code; `approve_device` does that.
//! Key decision: the poll interval is enforced exactly (sub-second in tests) and each `slow_down` adds
//! one more interval, which at the default of 5 s is RFC 8628's "+5 seconds".

use std::time::{Duration, SystemTime};

use rand::Rng as _;
use serde::Serialize;

use super::config::{ClientConfig, Decision};
use super::error::ProviderError;
use super::grants::issue;
use super::state::{ProviderState, Subject, random_token};
use super::wire::{OAuthError, Params, TokenResponse};

/// Where a device authorization stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceStatus {
    Pending,
    Approved { email: String },
    Denied,
    Redeemed,
}

/// One outstanding `/device/code` request.
#[derive(Debug)]
pub(crate) struct DeviceAuthorization {
    client_id: String,
    user_code: String,
    scopes: Vec<String>,
    expires_at: SystemTime,
    interval: Duration,
    last_poll: SystemTime,
    status: DeviceStatus,
}

/// The answer of `/device/code` (RFC 8628 §3.2); no `Debug`, the device code is a credential.
#[derive(Serialize)]
pub(crate) struct DeviceCodeResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    expires_in: u64,
    interval: u64,
}

pub(crate) fn authorize_device(
    state: &mut ProviderState,
    client: &ClientConfig,
    params: &Params,
    verification_uri: String,
    now: SystemTime,
) -> Result<DeviceCodeResponse, OAuthError> {
    let scopes = params.list("scope");
    if scopes.is_empty() {
        return Err(OAuthError::invalid_request("Missing parameter: scope"));
    }
    let device_code = random_token("pdc_");
    let user_code = new_user_code();
    let authorization = DeviceAuthorization {
        client_id: client.client_id.clone(),
        user_code: user_code.clone(),
        scopes,
        expires_at: now + client.device_code_ttl,
        interval: client.device_poll_interval,
        // Polling is measured from issuance: a client must wait one interval before its first poll.
        last_poll: now,
        status: DeviceStatus::Pending,
    };
    state.devices.insert(device_code.clone(), authorization);
    Ok(DeviceCodeResponse {
        device_code,
        user_code,
        verification_uri,
        expires_in: client.device_code_ttl.as_secs(),
        interval: whole_seconds_at_least_one(client.device_poll_interval),
    })
}

/// One poll at `/token` with the device-code grant type.
pub(crate) fn poll(
    state: &mut ProviderState,
    client: &ClientConfig,
    params: &Params,
    now: SystemTime,
) -> Result<TokenResponse, OAuthError> {
    let device_code = params.require("device_code")?;
    let device = state
        .devices
        .get_mut(device_code)
        .filter(|device| device.client_id == client.client_id)
        .ok_or_else(|| OAuthError::invalid_grant("Unknown device code."))?;
    if device.status == DeviceStatus::Redeemed {
        return Err(OAuthError::invalid_grant(
            "The device code was already redeemed.",
        ));
    }
    if now >= device.expires_at {
        return Err(OAuthError::bad_request(
            "expired_token",
            "The device code has expired.",
        ));
    }
    let since_last_poll = now.duration_since(device.last_poll).unwrap_or_default();
    device.last_poll = now;
    if since_last_poll < device.interval {
        device.interval += client.device_poll_interval;
        return Err(OAuthError::bad_request("slow_down", "Polling too fast."));
    }
    let email = match &device.status {
        DeviceStatus::Approved { email } => email.clone(),
        DeviceStatus::Pending => {
            let message = "The user has not yet approved the request.";
            return Err(OAuthError::bad_request("authorization_pending", message));
        }
        DeviceStatus::Denied | DeviceStatus::Redeemed => {
            return Err(OAuthError::bad_request(
                "access_denied",
                "The user denied access.",
            ));
        }
    };
    device.status = DeviceStatus::Redeemed;
    let scopes = device.scopes.clone();
    let offline = client.refresh_policy.for_device_flow(&scopes);
    let grant = state.create_grant(
        &client.client_id,
        Subject::User(email),
        scopes.clone(),
        offline,
    );
    Ok(issue(state, client, grant, scopes, offline, now))
}

/// The user behind `user_code` approves as `email` (or is refused, if the test set `Decision::Deny`
/// for that user), or denies when `email` is `None`.
pub(crate) fn decide(
    state: &mut ProviderState,
    user_code: &str,
    email: Option<&str>,
    now: SystemTime,
) -> Result<(), ProviderError> {
    let status = match email {
        Some(email) if state.decision_of(email) == Decision::Approve => DeviceStatus::Approved {
            email: email.to_owned(),
        },
        _ => DeviceStatus::Denied,
    };
    let wanted = normalize_user_code(user_code);
    let device = state
        .devices
        .values_mut()
        .find(|device| normalize_user_code(&device.user_code) == wanted)
        .ok_or_else(|| ProviderError::UnknownUserCode(user_code.to_owned()))?;
    if device.status != DeviceStatus::Pending || now >= device.expires_at {
        return Err(ProviderError::DeviceNotPending(user_code.to_owned()));
    }
    device.status = status;
    Ok(())
}

/// `BCDF-GHJK` style: RFC 8628 §6.1's consonant alphabet, so no word or look-alike digit appears.
fn new_user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut rng = rand::rng();
    let mut letter = || char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]);
    let first: String = (0..4).map(|_| letter()).collect();
    let second: String = (0..4).map(|_| letter()).collect();
    format!("{first}-{second}")
}

/// Users type codes loosely: case and separators do not matter.
fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn whole_seconds_at_least_one(duration: Duration) -> u64 {
    let rounded_up = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    rounded_up.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_two_groups_of_four_consonants() {
        let code = new_user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert!(
            code.chars()
                .filter(|c| *c != '-')
                .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c))
        );
        assert_eq!(
            normalize_user_code(&code.to_lowercase()),
            code.replace('-', "")
        );
    }

    #[test]
    fn reported_intervals_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds_at_least_one(Duration::from_millis(200)), 1);
        assert_eq!(whole_seconds_at_least_one(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds_at_least_one(Duration::from_secs(5)), 5);
    }
}
