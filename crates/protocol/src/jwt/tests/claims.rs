//! Claim checks after a valid signature: subject, authorized party, issuer, times
//! (docs/PROTOCOLS.md §4.5 step 6, §4.7).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::super::*;
use super::fixtures::*;

#[test]
fn expiry_boundary_follows_clerk_with_five_seconds_of_skew() {
    let at = |exp: i64| verify(&signing_key().sign(&SessionClaims { exp, ..claims() }));
    let boundary = (NOW_MS - DEFAULT_CLOCK_SKEW_MS) / 1000;
    assert_eq!(at(boundary), Err(TokenError::Expired { exp: boundary }));
    assert!(at(boundary + 1).is_ok());
    assert_eq!(
        at(NOW_SECS - 60),
        Err(TokenError::Expired { exp: NOW_SECS - 60 })
    );

    let strict = options().with_clock_skew_ms(0);
    let token = signing_key().sign(&SessionClaims {
        exp: NOW_SECS,
        ..claims()
    });
    assert_eq!(
        verify_session_token(&token, &test_keys(), &strict),
        Err(TokenError::Expired { exp: NOW_SECS })
    );
}

#[test]
fn missing_exp_is_refused() {
    let token = forge(
        &header(),
        &payload_with(|map| {
            map.remove("exp");
        }),
    );
    let error = verify(&token).unwrap_err();
    assert_eq!(error, TokenError::MissingExpiry);
    assert_eq!(error.code(), "token_expiry_missing");
}

#[test]
fn nbf_and_iat_in_the_future_beyond_skew_are_refused() {
    let edge = NOW_SECS + DEFAULT_CLOCK_SKEW_MS / 1000;
    let nbf = |nbf: i64| {
        verify(&signing_key().sign(&SessionClaims {
            nbf: Some(nbf),
            ..claims()
        }))
    };
    assert!(nbf(edge).is_ok());
    assert_eq!(
        nbf(edge + 1),
        Err(TokenError::NotYetValid { nbf: edge + 1 })
    );

    let iat = |iat: i64| {
        verify(&signing_key().sign(&SessionClaims {
            iat: Some(iat),
            nbf: None,
            ..claims()
        }))
    };
    assert!(iat(edge).is_ok());
    assert_eq!(
        iat(edge + 1),
        Err(TokenError::IssuedInFuture { iat: edge + 1 })
    );
}

#[test]
fn subject_must_be_a_user() {
    let missing = forge(
        &header(),
        &payload_with(|map| {
            map.remove("sub");
        }),
    );
    assert_eq!(verify(&missing), Err(TokenError::MissingSubject));
    let empty = signing_key().sign(&SessionClaims {
        sub: String::new(),
        ..claims()
    });
    assert_eq!(verify(&empty), Err(TokenError::MissingSubject));
    let machine = signing_key().sign(&SessionClaims {
        sub: "mch_2vYVtestmachine".to_owned(),
        ..claims()
    });
    let error = verify(&machine).unwrap_err();
    assert_eq!(error, TokenError::MachineSubject);
    assert_eq!(error.code(), "token_subject");
}

#[test]
fn authorized_parties_when_configured_require_an_exact_azp() {
    let parties = options().with_authorized_parties(["http://localhost:3000", APP_ORIGIN]);
    let check = |claims: &SessionClaims, options: &VerifyOptions| {
        verify_session_token(&signing_key().sign(claims), &test_keys(), options)
    };
    assert_eq!(check(&claims(), &parties), Ok(claims()));

    let no_azp = SessionClaims {
        azp: None,
        ..claims()
    };
    assert_eq!(check(&no_azp, &options()), Ok(no_azp.clone()));
    assert_eq!(
        check(&no_azp, &parties),
        Err(TokenError::MissingAuthorizedParty)
    );
    let empty = SessionClaims {
        azp: Some(String::new()),
        ..claims()
    };
    assert_eq!(
        check(&empty, &parties),
        Err(TokenError::MissingAuthorizedParty)
    );

    for wrong in [
        "https://evil.example.com",
        "https://app.example.com/",
        "http://localhost",
    ] {
        let claims = SessionClaims {
            azp: Some(wrong.to_owned()),
            ..claims()
        };
        let error = check(&claims, &parties).unwrap_err();
        assert_eq!(
            error,
            TokenError::WrongAuthorizedParty {
                azp: wrong.to_owned()
            }
        );
        assert_eq!(error.code(), "token_azp_mismatch");
        assert!(check(&claims, &options()).is_ok());
    }
}

#[test]
fn issuer_is_checked_only_when_configured() {
    let token = signing_key().sign(&claims());
    let check = |options: &VerifyOptions| verify_session_token(&token, &test_keys(), options);
    assert!(check(&options()).is_ok());
    assert!(check(&options().with_issuer(ISSUER)).is_ok());
    let error = check(&options().with_issuer("https://clerk.other.com")).unwrap_err();
    assert_eq!(error, TokenError::Issuer);
    assert_eq!(error.code(), "token_issuer");
}

#[test]
fn signature_is_checked_before_claims() {
    let expired_and_forged = format!(
        "{}.{}.{}",
        b64(&header()),
        b64(&payload_with(|map| {
            map.insert("exp".to_owned(), json!(1));
        })),
        URL_SAFE_NO_PAD.encode([0_u8; 256])
    );
    assert_eq!(verify(&expired_and_forged), Err(TokenError::Signature));
}
