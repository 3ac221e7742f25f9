use super::*;

fn rejection(status: u16, error: Option<&str>, description: Option<&str>) -> Rejection {
    Rejection {
        endpoint: OAuthEndpoint::Token,
        status,
        error: error.map(str::to_owned),
        description: description.map(str::to_owned),
        error_codes: Vec::new(),
        retry_after: None,
    }
}

fn rejected(rejection: Rejection) -> OAuthError {
    OAuthError::Rejected(Box::new(rejection))
}

/// (transient, grant dead, app level)
fn classes(error: &OAuthError) -> (bool, bool, bool) {
    (
        error.is_transient(),
        error.is_grant_dead(),
        error.is_app_level(),
    )
}

#[test]
fn server_trouble_is_transient() {
    for (status, code) in [
        (500, Some("server_error")),
        (502, None),
        (503, Some("temporarily_unavailable")),
        (429, None),
        (408, None),
        (400, Some("temporarily_unavailable")),
    ] {
        let error = rejected(rejection(status, code, None));
        assert_eq!(classes(&error), (true, false, false), "{status} {code:?}");
    }
}

#[test]
fn invalid_grant_and_interaction_required_mean_reauthorize() {
    for code in ["invalid_grant", "interaction_required"] {
        let error = rejected(rejection(400, Some(code), Some("AADSTS700082: expired")));
        assert_eq!(classes(&error), (false, true, false), "{code}");
    }
}

#[test]
fn client_errors_and_microsoft_app_codes_are_app_level() {
    let cases = [
        rejection(401, Some("invalid_client"), None),
        rejection(400, Some("unauthorized_client"), None),
        rejection(
            401,
            Some("invalid_request"),
            Some("AADSTS7000222: The provided client secret keys are expired."),
        ),
        rejection(
            400,
            Some("invalid_grant"),
            Some("AADSTS7000215: Invalid client secret"),
        ),
        Rejection {
            error_codes: vec![AADSTS_UNKNOWN_APP],
            ..rejection(500, Some("invalid_request"), None)
        },
    ];
    for case in cases {
        let error = rejected(case.clone());
        assert_eq!(classes(&error), (false, false, true), "{case:?}");
    }
}

#[test]
fn aadsts_codes_come_from_the_array_and_the_description_without_repeats() {
    let case = Rejection {
        error_codes: vec![7_000_222],
        ..rejection(
            400,
            Some("invalid_client"),
            Some("AADSTS7000222: expired. AADSTS50011 too. AADSTS"),
        )
    };
    assert_eq!(case.aadsts_codes(), vec![7_000_222, 50_011]);
}

#[test]
fn other_refusals_are_none_of_the_three() {
    let error = rejected(rejection(400, Some("invalid_scope"), None));
    assert_eq!(classes(&error), (false, false, false));
    assert_eq!(
        classes(&OAuthError::MissingRefreshToken),
        (false, false, false)
    );
    assert_eq!(
        classes(&OAuthError::DeviceCodeExpired),
        (false, false, false)
    );
}

#[test]
fn the_message_names_endpoint_status_code_and_description() {
    let error = rejected(rejection(
        400,
        Some("invalid_grant"),
        Some("Token has been expired or revoked."),
    ));
    assert_eq!(
        error.to_string(),
        "the token endpoint refused: HTTP 400 invalid_grant: Token has been expired or revoked."
    );
    let bare = rejected(Rejection {
        endpoint: OAuthEndpoint::Revocation,
        ..rejection(502, None, None)
    });
    assert_eq!(
        bare.to_string(),
        "the revocation endpoint refused: HTTP 502"
    );
}
