//! Clerk's fixture token (docs/PROTOCOLS.md §4.9), round trips through our own signing key, and
//! what errors may show. The refusals of §4.5 are in `tests/token.rs` (shape, header, key,
//! signature) and `tests/claims.rs`; key formats in `tests/keys.rs`.

mod claims;
mod fixtures;
mod id_token;
mod keys;
mod token;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use self::fixtures::*;
use super::*;

#[test]
fn clerk_fixture_token_verifies_with_its_jwk_and_yields_its_claims() {
    let claims = verify_session_token(
        CLERK_TOKEN,
        &clerk_keys(),
        &VerifyOptions::new(CLERK_NOW_MS),
    )
    .unwrap();
    let mut expected = SessionClaims::new("user_2GIpXOEpVyJw51rkZn9Kmnc6Sxr", 1_666_648_310);
    expected.azp = Some("https://accounts.inspired.puma-74.lcl.dev".to_owned());
    expected.iat = Some(1_666_648_250);
    expected.iss = Some("https://clerk.inspired.puma-74.lcl.dev".to_owned());
    expected.nbf = Some(1_666_648_240);
    expected.sid = Some("sess_2GbDB4enNdCa5vS1zpC3Xzg9tK9".to_owned());
    assert_eq!(claims, expected);
}

#[test]
fn clerk_fixture_token_is_expired_today() {
    let result = verify_session_token(
        CLERK_TOKEN,
        &clerk_keys(),
        &VerifyOptions::new(crate::time::now_ms()),
    );
    assert_eq!(result, Err(TokenError::Expired { exp: 1_666_648_310 }));
}

#[test]
fn clerk_fixture_token_with_a_tampered_azp_fails_the_signature() {
    let [header, payload, signature]: [&str; 3] = CLERK_TOKEN
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["azp"] = json!("https://accounts.tampered-domain.dev");
    let tampered = format!("{header}.{}.{signature}", b64(&claims.to_string()));
    let options = VerifyOptions::new(CLERK_NOW_MS);
    assert_eq!(
        verify_session_token(&tampered, &clerk_keys(), &options),
        Err(TokenError::Signature)
    );
}

#[test]
fn minted_token_round_trips_through_our_jwks() {
    let mut claims = claims();
    claims.extra.insert("fva".to_owned(), json!([7, -1]));
    claims
        .extra
        .insert("o".to_owned(), json!({"id": "org_123", "rol": "admin"}));
    let token = signing_key().sign(&claims);
    assert_eq!(verify(&token), Ok(claims));
}

#[test]
fn minted_token_verifies_with_the_spki_pem_in_single_key_mode() {
    let token = signing_key().sign(&claims());
    let keys = KeySource::Single(VerifyingKey::from_spki_pem(TEST_PUBLIC_PEM).unwrap());
    assert_eq!(
        verify_session_token(&token, &keys, &options()),
        Ok(claims())
    );
}

#[test]
fn minted_header_is_exactly_alg_kid_typ() {
    let token = signing_key().sign(&claims());
    let header = token.split('.').next().unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(header).unwrap(),
        format!(r#"{{"alg":"RS256","kid":"{TEST_KID}","typ":"JWT"}}"#).as_bytes()
    );
}

#[test]
fn error_messages_never_contain_the_token() {
    let token = signing_key().sign(&claims());
    let long_kid = "k".repeat(500);
    let cases = [
        verify(&format!("{token}.")),
        verify(&forge(
            &format!(r#"{{"alg":"RS256","kid":"{long_kid}"}}"#),
            &payload_with(|_| {}),
        )),
        verify(&format!("{token}A")),
        verify_session_token(
            &token,
            &test_keys(),
            &VerifyOptions::new(NOW_MS + 3_600_000),
        ),
        verify_session_token(
            &token,
            &test_keys(),
            &options().with_authorized_parties(["https://x"]),
        ),
    ];
    for result in cases {
        let error = result.unwrap_err();
        let message = error.to_string();
        for part in token.split('.') {
            assert!(!message.contains(part), "{message}");
        }
        assert!(message.len() < 200, "{message}");
    }
}

#[test]
fn unverified_decoding_reads_claims_of_any_token() {
    assert_eq!(
        decode_unverified_claims(CLERK_TOKEN).unwrap().iat,
        Some(1_666_648_250)
    );
    let forged = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(&payload_with(|_| {}))
    );
    assert_eq!(decode_unverified_claims(&forged), Ok(claims()));
    assert!(matches!(
        decode_unverified_claims("a.b"),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn verify_raw_is_the_primitive_under_verify_session_token() {
    let token = signing_key().sign(&claims());
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let key = signing_key().verifying_key();
    assert!(key.verify_raw(signed.as_bytes(), &signature));
    assert!(!key.verify_raw(b"something else", &signature));
}
