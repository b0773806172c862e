//! Refusals before the claims: token shape, header (`cat`, `typ`, `alg`), key selection and
//! signature (PROTOCOLS.md §4.5 steps 1–5).

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::json;

use super::super::*;
use super::fixtures::*;

#[test]
fn padded_segments_are_accepted() {
    let token = signing_key().sign(&claims());
    let padded: Vec<String> = token
        .split('.')
        .map(|part| URL_SAFE.encode(URL_SAFE_NO_PAD.decode(part).unwrap()))
        .collect();
    // The signature covers the text as sent, so re-sign the padded header and payload.
    let signed = format!("{}.{}", padded[0], padded[1]);
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&test_pkcs8()).unwrap();
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .unwrap();
    let token = format!("{signed}.{}", URL_SAFE.encode(signature));
    assert!(token.contains('='));
    assert_eq!(verify(&token), Ok(claims()));
}

#[test]
fn alg_none_is_refused() {
    let token = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&payload_with(|_| {}))
    );
    assert_eq!(
        verify(&token),
        Err(TokenError::Algorithm("none".to_owned()))
    );
}

#[test]
fn hs256_signed_with_the_public_key_as_secret_is_refused() {
    let signed = format!(
        "{}.{}",
        b64(&format!(
            r#"{{"alg":"HS256","kid":"{TEST_KID}","typ":"JWT"}}"#
        )),
        b64(&payload_with(|_| {}))
    );
    let secret = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, TEST_PUBLIC_PEM.as_bytes());
    let tag = ring::hmac::sign(&secret, signed.as_bytes());
    let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    let pem_keys = KeySource::Single(VerifyingKey::from_spki_pem(TEST_PUBLIC_PEM).unwrap());
    for keys in [test_keys(), pem_keys] {
        assert_eq!(
            verify_session_token(&token, &keys, &options()),
            Err(TokenError::Algorithm("HS256".to_owned()))
        );
    }
}

#[test]
fn rs384_and_rs512_are_refused_even_when_validly_signed() {
    let payload = payload_with(|_| {});
    for (alg, encoding) in [
        ("RS384", &ring::signature::RSA_PKCS1_SHA384),
        ("RS512", &ring::signature::RSA_PKCS1_SHA512),
    ] {
        let header = format!(r#"{{"alg":"{alg}","kid":"{TEST_KID}","typ":"JWT"}}"#);
        let token = forge_with(&header, &payload, encoding);
        assert_eq!(verify(&token), Err(TokenError::Algorithm(alg.to_owned())));
    }
}

#[test]
fn unknown_kid_is_reported_with_the_kid() {
    let token = forge(
        r#"{"alg":"RS256","kid":"ins_rotated","typ":"JWT"}"#,
        &payload_with(|_| {}),
    );
    let error = verify(&token).unwrap_err();
    assert_eq!(
        error,
        TokenError::UnknownKey {
            kid: Some("ins_rotated".to_owned())
        }
    );
    assert_eq!(error.code(), "token_unknown_key");
}

#[test]
fn missing_kid_is_an_unknown_key_in_key_set_mode() {
    let token = forge(r#"{"alg":"RS256","typ":"JWT"}"#, &payload_with(|_| {}));
    assert_eq!(verify(&token), Err(TokenError::UnknownKey { kid: None }));
}

#[test]
fn single_key_mode_ignores_the_kid() {
    let keys = KeySource::Single(VerifyingKey::from_spki_pem(TEST_PUBLIC_PEM).unwrap());
    for header in [
        r#"{"alg":"RS256","kid":"ins_somebody_else","typ":"JWT"}"#,
        r#"{"alg":"RS256","typ":"JWT"}"#,
    ] {
        let token = forge(header, &payload_with(|_| {}));
        assert_eq!(
            verify_session_token(&token, &keys, &options()),
            Ok(claims())
        );
    }
}

#[test]
fn tampering_with_any_part_fails_the_signature() {
    let token = signing_key().sign(&claims());
    let [header, payload, signature]: [&str; 3] =
        token.split('.').collect::<Vec<_>>().try_into().unwrap();

    let other_payload = b64(&payload_with(|map| {
        map.insert("sub".to_owned(), json!("user_attacker"));
    }));
    let other_header = b64(&format!(
        r#"{{"alg":"RS256","kid":"{TEST_KID}","typ":"JWT","x":1}}"#
    ));
    let raw_signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let truncated = URL_SAFE_NO_PAD.encode(&raw_signature[..raw_signature.len() - 1]);
    let mut flipped = raw_signature;
    flipped[100] ^= 1;
    let flipped = URL_SAFE_NO_PAD.encode(flipped);

    for tampered in [
        format!("{header}.{other_payload}.{signature}"),
        format!("{other_header}.{payload}.{signature}"),
        format!("{header}.{payload}.{truncated}"),
        format!("{header}.{payload}.{flipped}"),
        format!("{header}.{payload}."),
    ] {
        assert_eq!(verify(&tampered), Err(TokenError::Signature), "{tampered}");
    }
}

#[test]
fn tokens_without_exactly_three_base64url_parts_are_malformed() {
    let token = signing_key().sign(&claims());
    let (header, rest) = token.split_once('.').unwrap();
    for bad in [
        String::new(),
        "not a token".to_owned(),
        header.to_owned(),
        rest.to_owned(),
        format!("{token}.{header}"),
        format!("{header}!.{rest}"),
        format!("{header}.{}", rest.replacen('.', "*.", 1)),
        format!("{token}*"),
        format!("{}.{rest}", b64("not json")),
        format!("{}.{rest}", b64(r#"{"kid":"no alg"}"#)),
        format!("{}.{rest}", b64("[1,2]")),
    ] {
        let error = verify(&bad).unwrap_err();
        assert!(
            matches!(error, TokenError::Malformed(_)),
            "{bad}: {error:?}"
        );
        assert_eq!(error.code(), "token_malformed");
    }
}

#[test]
fn a_payload_that_is_not_a_claims_object_is_malformed_after_the_signature() {
    for payload in ["[]", r#"{"sub":"user_1","exp":"tomorrow"}"#, "null"] {
        let token = forge(&header(), payload);
        assert!(
            matches!(verify(&token), Err(TokenError::Malformed(_))),
            "{payload}"
        );
    }
    let duplicated = r#"{"sub":"user_1","exp":1700000060,"sub":"user_2"}"#;
    assert!(matches!(
        verify(&forge(&header(), duplicated)),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn template_and_m2m_categories_are_refused_session_and_ignore_accepted() {
    let with_cat =
        |cat: &str| format!(r#"{{"alg":"RS256","kid":"{TEST_KID}","typ":"JWT","cat":"{cat}"}}"#);
    let payload = payload_with(|_| {});
    for refused in [CATEGORY_TEMPLATE, CATEGORY_M2M, "cl_unknown"] {
        let error = verify(&forge(&with_cat(refused), &payload)).unwrap_err();
        assert_eq!(error, TokenError::Category(refused.to_owned()));
        assert_eq!(error.code(), "token_category");
    }
    for accepted in [CATEGORY_SESSION, CATEGORY_IGNORE] {
        assert_eq!(verify(&forge(&with_cat(accepted), &payload)), Ok(claims()));
    }
}

#[test]
fn oauth_access_tokens_and_other_types_are_refused_absent_typ_accepted() {
    let payload = payload_with(|_| {});
    for typ in ["at+jwt", "application/at+jwt", "JWS", "jwt"] {
        let header = format!(r#"{{"alg":"RS256","kid":"{TEST_KID}","typ":"{typ}"}}"#);
        let error = verify(&forge(&header, &payload)).unwrap_err();
        assert_eq!(error, TokenError::Type(typ.to_owned()));
        assert_eq!(error.code(), "token_type");
    }
    let untyped = format!(r#"{{"alg":"RS256","kid":"{TEST_KID}","oiat":1}}"#);
    assert_eq!(verify(&forge(&untyped, &payload)), Ok(claims()));
}
