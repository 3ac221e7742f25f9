//! Call counters per endpoint and per grant type, so tests can assert "exactly one refresh".
//!
//! Non-goal: latency or outcome statistics; a counter counts calls that reached the provider, whether
//! they succeeded, failed or met a simulated fault.
//! Key decision: counters exist both globally and per client id, because the shared provider serves
//! tests running in parallel and only per-client counts stay exact there.

/// How many calls each endpoint received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// `GET /authorize`.
    pub authorize: u64,
    /// `POST /token`, all grant types together.
    pub token: u64,
    /// `POST /token` with `grant_type=authorization_code`.
    pub token_authorization_code: u64,
    /// `POST /token` with `grant_type=refresh_token`.
    pub token_refresh: u64,
    /// `POST /token` with `grant_type=client_credentials`.
    pub token_client_credentials: u64,
    /// `POST /token` with the device-code grant type (each poll counts).
    pub token_device_code: u64,
    /// `POST /token` with a missing or unsupported grant type.
    pub token_unsupported: u64,
    /// `GET|POST /introspect`.
    pub introspect: u64,
    /// `POST /revoke`.
    pub revoke: u64,
    /// `POST /device/code`.
    pub device_authorization: u64,
}

/// The `grant_type` of a token request, as far as counting and dispatch care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    DeviceCode,
    Unsupported,
}

/// RFC 8628's grant type for polling the token endpoint.
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

impl GrantType {
    pub(crate) fn from_param(grant_type: Option<&str>) -> Self {
        match grant_type {
            Some("authorization_code") => Self::AuthorizationCode,
            Some("refresh_token") => Self::RefreshToken,
            Some("client_credentials") => Self::ClientCredentials,
            Some(DEVICE_CODE_GRANT) => Self::DeviceCode,
            _ => Self::Unsupported,
        }
    }
}

/// One call to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Authorize,
    Token(GrantType),
    Introspect,
    Revoke,
    DeviceAuthorization,
}

impl Counters {
    pub(crate) fn record(&mut self, endpoint: Endpoint) {
        let counter = match endpoint {
            Endpoint::Authorize => &mut self.authorize,
            Endpoint::Introspect => &mut self.introspect,
            Endpoint::Revoke => &mut self.revoke,
            Endpoint::DeviceAuthorization => &mut self.device_authorization,
            Endpoint::Token(grant_type) => {
                self.token += 1;
                match grant_type {
                    GrantType::AuthorizationCode => &mut self.token_authorization_code,
                    GrantType::RefreshToken => &mut self.token_refresh,
                    GrantType::ClientCredentials => &mut self.token_client_credentials,
                    GrantType::DeviceCode => &mut self.token_device_code,
                    GrantType::Unsupported => &mut self.token_unsupported,
                }
            }
        };
        *counter += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_call_counts_in_total_and_per_grant_type() {
        let mut counters = Counters::default();
        counters.record(Endpoint::Token(GrantType::RefreshToken));
        counters.record(Endpoint::Token(GrantType::from_param(Some(
            DEVICE_CODE_GRANT,
        ))));
        counters.record(Endpoint::Token(GrantType::from_param(Some("password"))));
        let expected = Counters {
            token: 3,
            token_refresh: 1,
            token_device_code: 1,
            token_unsupported: 1,
            ..Counters::default()
        };
        assert_eq!(counters, expected);
    }
}
