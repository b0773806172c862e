//! ID tokens from sign-in providers: each check of `verify_id_token` refuses its own forgery.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use super::fixtures::*;
use crate::jwt::*;

const ISS: &str = "https://idp.example.com";
const CLIENT: &str = "client-123";
const NONCE: &str = "n-0S6_WzA2Mj";

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "248289761001", "aud": CLIENT, "nonce": NONCE,
        "exp": NOW_SECS + 300, "iat": NOW_SECS,
        "email": "jane@example.com", "email_verified": true, "given_name": "Jane",
    })
}

fn expect() -> IdTokenExpectations<'static> {
    IdTokenExpectations {
        issuer: ISS,
        client_id: CLIENT,
        nonce: NONCE,
        now_ms: NOW_MS,
        clock_skew_ms: 5_000,
    }
}

fn rsa_keys() -> ProviderKeys {
    let jwks = json!({"keys": [signing_key().public_jwk()]});
    ProviderKeys::from_json(jwks.to_string().as_bytes()).unwrap()
}

fn rs256(payload: &Value) -> String {
    signing_key().sign_json(&json!({"alg": "RS256", "kid": TEST_KID}), payload)
}

fn check(token: &str) -> Result<IdTokenClaims, IdTokenError> {
    verify_id_token(token, &rsa_keys(), &expect())
}

fn edited(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let Value::Object(mut map) = claims() else {
        unreachable!()
    };
    edit(&mut map);
    rs256(&Value::Object(map))
}

#[test]
fn a_good_rs256_token_yields_its_claims() {
    let claims = check(&rs256(&claims())).unwrap();
    assert_eq!(claims.sub, "248289761001");
    assert_eq!(claims.email.as_deref(), Some("jane@example.com"));
    assert_eq!(claims.email_verified, Some(true));
    assert_eq!(claims.given_name.as_deref(), Some("Jane"));
}

#[test]
fn each_claim_check_refuses_its_forgery() {
    let cases: Vec<(&str, String, IdTokenError)> = vec![
        (
            "issuer",
            edited(|m| {
                m.insert("iss".into(), json!("https://evil.example"));
            }),
            IdTokenError::Issuer,
        ),
        (
            "audience",
            edited(|m| {
                m.insert("aud".into(), json!("someone-else"));
            }),
            IdTokenError::Audience,
        ),
        (
            "azp",
            edited(|m| {
                m.insert("aud".into(), json!([CLIENT, "other"]));
            }),
            IdTokenError::Audience,
        ),
        (
            "nonce",
            edited(|m| {
                m.insert("nonce".into(), json!("another"));
            }),
            IdTokenError::Nonce,
        ),
        (
            "no nonce",
            edited(|m| {
                m.remove("nonce");
            }),
            IdTokenError::Nonce,
        ),
        (
            "expired",
            edited(|m| {
                m.insert("exp".into(), json!(NOW_SECS - 60));
            }),
            IdTokenError::Expired,
        ),
        (
            "no exp",
            edited(|m| {
                m.remove("exp");
            }),
            IdTokenError::Expired,
        ),
        (
            "future",
            edited(|m| {
                m.insert("iat".into(), json!(NOW_SECS + 600));
            }),
            IdTokenError::IssuedInFuture,
        ),
        (
            "empty sub",
            edited(|m| {
                m.insert("sub".into(), json!(""));
            }),
            IdTokenError::MissingSubject,
        ),
    ];
    for (name, token, error) in cases {
        assert_eq!(check(&token).unwrap_err(), error, "{name}");
    }
    // Several audiences are fine when azp names us.
    let token = edited(|m| {
        m.insert("aud".into(), json!([CLIENT, "other"]));
        m.insert("azp".into(), json!(CLIENT));
    });
    assert!(check(&token).is_ok());
}

#[test]
fn alg_none_and_hs256_with_the_client_secret_are_refused() {
    let payload = b64(&claims().to_string());
    let none = format!("{}.{payload}.", b64(r#"{"alg":"none"}"#));
    assert_eq!(check(&none).unwrap_err(), IdTokenError::Algorithm);

    use hmac::{KeyInit as _, Mac as _};
    let signed = format!(
        "{}.{payload}",
        b64(r#"{"alg":"HS256","kid":"ins_latchkeytest"}"#)
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"the-client-secret").unwrap();
    mac.update(signed.as_bytes());
    let hs = format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(check(&hs).unwrap_err(), IdTokenError::Algorithm);
}

#[test]
fn an_unknown_kid_and_a_bad_signature_are_told_apart() {
    let other = signing_key().sign_json(&json!({"alg": "RS256", "kid": "rotated"}), &claims());
    assert_eq!(check(&other).unwrap_err(), IdTokenError::UnknownKey);
    let token = rs256(&claims());
    let (signed, _) = token.rsplit_once('.').unwrap();
    let tampered = format!("{signed}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]));
    assert_eq!(check(&tampered).unwrap_err(), IdTokenError::Signature);
}

#[test]
fn es256_tokens_verify_through_an_ec_jwk() {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig",
         "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])},
        {"kty": "oct", "kid": "skipped", "k": "c2VjcmV0"},
    ]});
    let keys = ProviderKeys::from_json(jwks.to_string().as_bytes()).unwrap();
    let signed = format!(
        "{}.{}",
        b64(r#"{"alg":"ES256","kid":"ec1"}"#),
        b64(&claims().to_string())
    );
    let signature = pair.sign(&rng, signed.as_bytes()).unwrap();
    let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()));
    assert_eq!(
        verify_id_token(&token, &keys, &expect()).unwrap().sub,
        "248289761001"
    );
    // The EC key does not verify an RS256 token, whatever its kid says.
    let rs = signing_key().sign_json(&json!({"alg": "RS256", "kid": "ec1"}), &claims());
    assert_eq!(
        verify_id_token(&rs, &keys, &expect()).unwrap_err(),
        IdTokenError::UnknownKey
    );
}

#[test]
fn microsoft_tenant_issuers_take_the_tokens_tid() {
    let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
    let token = edited(|m| {
        m.insert(
            "iss".into(),
            json!("https://login.microsoftonline.com/9188040d/v2.0"),
        );
        m.insert("tid".into(), json!("9188040d"));
    });
    let expect = IdTokenExpectations {
        issuer: template,
        ..expect()
    };
    assert!(verify_id_token(&token, &rsa_keys(), &expect).is_ok());
    let lying = edited(|m| {
        m.insert(
            "iss".into(),
            json!("https://login.microsoftonline.com/9188040d/v2.0"),
        );
        m.insert("tid".into(), json!("other"));
    });
    assert_eq!(
        verify_id_token(&lying, &rsa_keys(), &expect).unwrap_err(),
        IdTokenError::Issuer
    );
}
