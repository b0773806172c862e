//! Refusals before the claims: token shape, header (`cat`, `typ`, `alg`), key selection and
//! signature (docs/PROTOCOLS.md §4.5 steps 1–5).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::json;

use super::super::*;
use super::fixtures::*;

/// `signed` (`<header>.<payload>`, spelled as given) with a valid RS256 signature by the test
/// key, the signature spelled by `encode`.
fn sign_as_given(signed: &str, encode: impl Fn(&[u8]) -> String) -> String {
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&test_pkcs8()).unwrap();
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{signed}.{}", encode(&signature))
}

fn assert_malformed(token: &str, what: &str) {
    assert!(
        matches!(verify(token), Err(TokenError::Malformed(_))),
        "{what}: {:?}",
        verify(token)
    );
}

#[test]
fn padded_segments_are_refused_even_when_validly_signed() {
    let token = signing_key().sign(&claims());
    assert_eq!(
        verify(&token),
        Ok(claims()),
        "the unpadded original verifies"
    );
    let segments: Vec<&str> = token.split('.').collect();
    for padding in ["=", "=="] {
        // The signature covers the text as sent, so a padded header or payload is re-signed:
        // only the padding can fail the token.
        let header = format!("{}{padding}", segments[0]);
        let payload = format!("{}{padding}", segments[1]);
        let unpadded = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        assert_malformed(
            &sign_as_given(&format!("{header}.{}", segments[1]), unpadded),
            &format!("header + {padding}"),
        );
        assert_malformed(
            &sign_as_given(&format!("{}.{payload}", segments[0]), unpadded),
            &format!("payload + {padding}"),
        );
        assert_malformed(
            &format!("{token}{padding}"),
            &format!("signature + {padding}"),
        );
    }
    // Every segment padded the standard way, and padding inside a segment.
    let padded: Vec<String> = segments
        .iter()
        .map(|part| URL_SAFE.encode(URL_SAFE_NO_PAD.decode(part).unwrap()))
        .collect();
    let signed = format!("{}.{}", padded[0], padded[1]);
    assert_malformed(
        &sign_as_given(&signed, |bytes| URL_SAFE.encode(bytes)),
        "all padded",
    );
    let (left, right) = segments[2].split_at(8);
    assert_malformed(
        &format!("{}.{}.{left}=={right}", segments[0], segments[1]),
        "padding inside the signature",
    );
}

#[test]
fn non_canonical_trailing_bits_in_the_signature_are_refused() {
    let token = signing_key().sign(&claims());
    let (signed, signature) = token.rsplit_once('.').unwrap();
    // 256 bytes are 342 characters: the last carries 2 bits of data and 4 unused ones, which
    // a canonical encoding leaves zero.
    assert_eq!(signature.len() % 4, 2);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = signature.as_bytes()[signature.len() - 1];
    let value = ALPHABET.iter().position(|&c| c == last).unwrap();
    assert_eq!(value & 0b1111, 0, "the original is canonical");
    let respelled = format!(
        "{signed}.{}{}",
        &signature[..signature.len() - 1],
        char::from(ALPHABET[value | 1])
    );
    assert_malformed(&respelled, "non-canonical last character");
}

#[test]
fn the_standard_alphabet_is_refused() {
    let token = signing_key().sign(&claims());
    let (signed, _) = token.rsplit_once('.').unwrap();
    // The same bytes in the standard alphabet (`+` and `/` for `-` and `_`), unpadded.
    let standard = sign_as_given(signed, |bytes| STANDARD_NO_PAD.encode(bytes));
    assert!(
        standard.contains(['+', '/']),
        "this signature needs the two characters that differ"
    );
    assert_malformed(&standard, "standard alphabet");
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
