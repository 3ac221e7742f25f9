//! The device authorization grant (RFC 8628): start, poll once, or poll politely until the user decides.
//!
//! Non-goal: showing the code to the user; the caller displays [`DeviceAuthorization::user_code`] and
//! [`DeviceAuthorization::verification_uri`] however it likes.
//! Key decision: the timing rules live in [`PollSchedule`], a plain value tested without clocks or
//! sockets; [`OAuthClient::wait_for_device`] only sleeps and polls as it says. oauth2's own polling loop is
//! not used: it cannot poll once, and it hides network errors from the caller.

use std::time::{Duration, SystemTime};

use oauth2::StandardDeviceAuthorizationResponse;
use secrecy::{ExposeSecret as _, SecretString};

use super::client::OAuthClient;
use super::grant::TokenGrant;
use super::transport::{HttpFailure, form_post, from_oauth2, parse_token_answer};
use crate::error::{OAuthEndpoint, OAuthError};

/// RFC 8628's grant type for polling the token endpoint.
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628 §3.5: after `slow_down` the interval grows by 5 seconds, for that poll and every later one.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// The longest wait between polls while the token endpoint has network trouble.
pub const MAX_POLL_BACKOFF: Duration = Duration::from_secs(60);

/// The shortest interval honoured, whatever the provider says: a `0` must not become a busy loop.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A started device flow: what to show the user, and what polling needs.
#[derive(Clone, Debug)]
pub struct DeviceAuthorization {
    /// Where the user goes to enter the code.
    pub verification_uri: String,
    /// The same with the code filled in, for a QR code or a link, when the provider sent one.
    pub verification_uri_complete: Option<String>,
    /// The code the user types (short, meant to be shown).
    pub user_code: String,
    /// The code the client polls with.
    pub device_code: SecretString,
    /// The minimum wait between polls, as the provider asked (at least one second).
    pub interval: Duration,
    /// When the codes expire.
    pub expires_at: SystemTime,
}

/// The answer to one poll of the token endpoint.
#[derive(Debug)]
pub enum DevicePoll {
    /// The user has not decided yet; poll again after the interval.
    Pending,
    /// Polled too fast: add [`SLOW_DOWN_STEP`] to the interval for every later poll.
    SlowDown,
    /// The user approved; the grant has a refresh token.
    Granted(TokenGrant),
}

impl OAuthClient {
    /// Starts a device flow for the app's scopes.
    pub async fn start_device_flow(&self) -> Result<DeviceAuthorization, OAuthError> {
        let missing = OAuthError::EndpointMissing {
            endpoint: OAuthEndpoint::DeviceAuthorization,
        };
        let request = self.inner.exchange_device_code().map_err(|_| missing)?;
        let transport = self.transport(OAuthEndpoint::DeviceAuthorization);
        let details: StandardDeviceAuthorizationResponse = request
            .add_scopes(self.scopes())
            .request_async(&transport)
            .await
            .map_err(|error| {
                from_oauth2(
                    error,
                    OAuthEndpoint::DeviceAuthorization,
                    &self.secrets(&[]),
                )
            })?;
        let received = SystemTime::now();
        Ok(DeviceAuthorization {
            verification_uri: details.verification_uri().url().to_string(),
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|uri| uri.secret().clone()),
            user_code: details.user_code().secret().clone(),
            device_code: SecretString::from(details.device_code().secret().as_str()),
            interval: details.interval().max(MIN_INTERVAL),
            expires_at: received + details.expires_in(),
        })
    }

    /// Polls the token endpoint once, without waiting.
    ///
    /// `expired_token` from the provider, or a device code already past its expiry (then without a
    /// call), is [`OAuthError::DeviceCodeExpired`]; `access_denied` is a [`OAuthError::Rejected`]; a
    /// grant without refresh token is [`OAuthError::MissingRefreshToken`].
    pub async fn poll_device_once(
        &self,
        device: &DeviceAuthorization,
    ) -> Result<DevicePoll, OAuthError> {
        if SystemTime::now() >= device.expires_at {
            return Err(OAuthError::DeviceCodeExpired);
        }
        let device_code = device.device_code.expose_secret();
        let params = vec![
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", device_code),
        ];
        let request = form_post(&self.settings, &self.settings.token_url, params)?;
        let secrets = self.secrets(&[device_code]);
        match self.transport(OAuthEndpoint::Token).send(request).await {
            Ok(answer) => {
                let response = parse_token_answer(answer.body(), OAuthEndpoint::Token, &secrets)?;
                let grant = TokenGrant::from_response(&response).require_refresh_token()?;
                Ok(DevicePoll::Granted(grant))
            }
            Err(HttpFailure::Rejected(rejection)) => match rejection.error.as_deref() {
                Some("authorization_pending") => Ok(DevicePoll::Pending),
                Some("slow_down") => Ok(DevicePoll::SlowDown),
                Some("expired_token") => Err(OAuthError::DeviceCodeExpired),
                _ => {
                    Err(HttpFailure::Rejected(rejection).into_error(OAuthEndpoint::Token, &secrets))
                }
            },
            Err(failure) => Err(failure.into_error(OAuthEndpoint::Token, &secrets)),
        }
    }

    /// Polls until the user decides or the code expires, as RFC 8628 asks: first after one interval,
    /// then every interval, [`SLOW_DOWN_STEP`] more per `slow_down`, backing off (up to
    /// [`MAX_POLL_BACKOFF`]) while the endpoint has transient trouble. Never polls after expiry.
    pub async fn wait_for_device(
        &self,
        device: &DeviceAuthorization,
    ) -> Result<TokenGrant, OAuthError> {
        let mut schedule = PollSchedule::new(device.interval, device.expires_at);
        loop {
            let wait = schedule
                .next_wait(SystemTime::now())
                .ok_or(OAuthError::DeviceCodeExpired)?;
            tokio::time::sleep(wait).await;
            match self.poll_device_once(device).await {
                Ok(DevicePoll::Granted(grant)) => return Ok(grant),
                Ok(DevicePoll::Pending) => schedule.answered(),
                Ok(DevicePoll::SlowDown) => schedule.slow_down(),
                Err(error) if error.is_transient() => schedule.back_off(),
                Err(error) => return Err(error),
            }
        }
    }
}

/// When to poll next: the interval (grown by each `slow_down`), doubled per transient failure in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PollSchedule {
    interval: Duration,
    wait: Duration,
    expires_at: SystemTime,
}

impl PollSchedule {
    pub(crate) fn new(interval: Duration, expires_at: SystemTime) -> Self {
        let interval = interval.max(MIN_INTERVAL);
        Self {
            interval,
            wait: interval,
            expires_at,
        }
    }

    /// How long to wait before the next poll, or `None` when that poll would come at or after expiry.
    pub(crate) fn next_wait(&self, now: SystemTime) -> Option<Duration> {
        let poll_at = now.checked_add(self.wait)?;
        (poll_at < self.expires_at).then_some(self.wait)
    }

    /// The endpoint answered normally: any backoff is over.
    pub(crate) fn answered(&mut self) {
        self.wait = self.interval;
    }

    /// The endpoint said `slow_down`.
    pub(crate) fn slow_down(&mut self) {
        self.interval += SLOW_DOWN_STEP;
        self.wait = self.interval;
    }

    /// The endpoint could not answer: wait twice as long as last time, within [`MAX_POLL_BACKOFF`]
    /// (or the interval, if that is longer already).
    pub(crate) fn back_off(&mut self) {
        let ceiling = MAX_POLL_BACKOFF.max(self.interval);
        self.wait = (self.wait * 2).min(ceiling);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn polls_wait_one_interval_and_slow_down_adds_five_seconds_for_good() {
        let mut schedule = PollSchedule::new(secs(2), T0 + secs(600));
        assert_eq!(schedule.next_wait(T0), Some(secs(2)));
        schedule.answered();
        assert_eq!(schedule.next_wait(T0), Some(secs(2)));
        schedule.slow_down();
        assert_eq!(schedule.next_wait(T0), Some(secs(7)));
        schedule.answered();
        assert_eq!(
            schedule.next_wait(T0),
            Some(secs(7)),
            "slow_down is permanent"
        );
        schedule.slow_down();
        assert_eq!(schedule.next_wait(T0), Some(secs(12)));
    }

    #[test]
    fn network_trouble_doubles_the_wait_up_to_a_ceiling_and_an_answer_resets_it() {
        let mut schedule = PollSchedule::new(secs(5), T0 + secs(3600));
        let mut waits = Vec::new();
        for _ in 0..6 {
            schedule.back_off();
            waits.push(schedule.next_wait(T0).unwrap().as_secs());
        }
        assert_eq!(waits, [10, 20, 40, 60, 60, 60]);
        schedule.answered();
        assert_eq!(schedule.next_wait(T0), Some(secs(5)));
    }

    #[test]
    fn no_poll_is_scheduled_at_or_after_expiry() {
        let schedule = PollSchedule::new(secs(5), T0 + secs(10));
        assert_eq!(schedule.next_wait(T0), Some(secs(5)));
        assert_eq!(schedule.next_wait(T0 + secs(4)), Some(secs(5)));
        assert_eq!(schedule.next_wait(T0 + secs(5)), None);
        assert_eq!(schedule.next_wait(T0 + secs(60)), None);
    }

    #[test]
    fn a_zero_interval_is_raised_to_one_second() {
        let schedule = PollSchedule::new(Duration::ZERO, T0 + secs(60));
        assert_eq!(schedule.next_wait(T0), Some(secs(1)));
    }
}
