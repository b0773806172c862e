//! Key formats: JWK, SPKI PEM/DER, PKCS#8, key sets.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::super::*;
use super::fixtures::*;

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).unwrap()
}

fn pem_of(der: &[u8]) -> String {
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der)
    )
}

#[test]
fn clerk_jwk_parses_and_serialises_in_clerks_shape() {
    let jwk: Jwk = serde_json::from_str(CLERK_JWK).unwrap();
    assert_eq!(jwk.kid.as_deref(), Some("ins_2GIoQhbUpy0hX7B2cVkuTMinXoD"));
    assert_eq!(jwk.use_.as_deref(), Some("sig"));
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    assert_eq!(key.bits(), 2048);
    assert_eq!(key.to_jwk(), jwk);
    let round_trip: serde_json::Value = serde_json::to_value(&jwk).unwrap();
    let original: serde_json::Value = serde_json::from_str(CLERK_JWK).unwrap();
    assert_eq!(round_trip, original);
}

#[test]
fn public_jwk_and_spki_pem_describe_the_same_key() {
    let signing = signing_key();
    let jwk = signing.public_jwk();
    assert_eq!(jwk.kty, "RSA");
    assert_eq!(jwk.e, "AQAB");
    assert_eq!(jwk.alg.as_deref(), Some("RS256"));
    assert_eq!(jwk.kid.as_deref(), Some(TEST_KID));
    assert!(!jwk.n.contains('=') && !jwk.n.contains('+') && !jwk.n.contains('/'));
    let from_jwk = VerifyingKey::from_jwk(&jwk).unwrap();
    let from_pem = VerifyingKey::from_spki_pem(TEST_PUBLIC_PEM)
        .unwrap()
        .with_kid(TEST_KID);
    assert_eq!(from_jwk, from_pem);
    assert_eq!(from_pem, signing.verifying_key());
    let from_der = VerifyingKey::from_spki_der(&pem_der(TEST_PUBLIC_PEM)).unwrap();
    assert_eq!(from_der.kid(), None);
    assert_eq!(from_der.with_kid(TEST_KID), from_jwk);
}

#[test]
fn pem_tolerates_crlf_and_surrounding_whitespace() {
    let crlf = format!("\n  {}  \n", TEST_PUBLIC_PEM.replace('\n', "\r\n"));
    assert!(VerifyingKey::from_spki_pem(&crlf).is_ok());
    let one_line = pem_of(&pem_der(TEST_PUBLIC_PEM));
    assert!(VerifyingKey::from_spki_pem(&one_line).is_ok());
}

#[test]
fn keys_under_2048_bits_are_refused() {
    assert_eq!(
        VerifyingKey::from_spki_pem(SMALL_PUBLIC_PEM),
        Err(KeyError::ModulusSize { bits: 1024 })
    );
    let jwk = signing_key().public_jwk();
    let mut n = URL_SAFE_NO_PAD.decode(&jwk.n).unwrap();
    // 2047 bits: the top bit cleared, still 256 bytes.
    n[0] &= 0x7f;
    let short = Jwk {
        n: URL_SAFE_NO_PAD.encode(n),
        ..jwk
    };
    assert_eq!(
        VerifyingKey::from_jwk(&short),
        Err(KeyError::ModulusSize { bits: 2047 })
    );
}

#[test]
fn non_rsa_and_non_rs256_keys_are_refused() {
    assert_eq!(
        VerifyingKey::from_spki_pem(EC_PUBLIC_PEM),
        Err(KeyError::NotRsa)
    );
    let jwk = signing_key().public_jwk();
    let ec = Jwk {
        kty: "EC".to_owned(),
        ..jwk.clone()
    };
    assert_eq!(VerifyingKey::from_jwk(&ec), Err(KeyError::NotRsa));
    let rs512 = Jwk {
        alg: Some("RS512".to_owned()),
        ..jwk.clone()
    };
    assert_eq!(
        VerifyingKey::from_jwk(&rs512),
        Err(KeyError::UnsupportedAlgorithm("RS512".to_owned()))
    );
    let enc = Jwk {
        use_: Some("enc".to_owned()),
        ..jwk.clone()
    };
    assert_eq!(
        VerifyingKey::from_jwk(&enc),
        Err(KeyError::NotForSigning("enc".to_owned()))
    );
    let bare = Jwk {
        alg: None,
        use_: None,
        ..jwk
    };
    assert!(VerifyingKey::from_jwk(&bare).is_ok());
}

#[test]
fn malformed_pem_and_der_are_refused_with_a_reason() {
    let der = pem_der(TEST_PUBLIC_PEM);
    let mut trailing = der.clone();
    trailing.push(0);
    let mut nested_trailing = der.clone();
    // Lengthen the outer SEQUENCE so it claims a byte that is not part of the SPKI.
    nested_trailing[3] += 1;
    nested_trailing.push(0);
    let cases = [
        "".to_owned(),
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".to_owned(),
        TEST_PUBLIC_PEM.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
        TEST_PUBLIC_PEM.replace("MIIB", "!IIB"),
        format!("{TEST_PUBLIC_PEM}{TEST_PUBLIC_PEM}"),
        pem_of(&der[..der.len() - 1]),
        pem_of(&trailing),
        pem_of(&nested_trailing),
    ];
    for pem in cases {
        let error = VerifyingKey::from_spki_pem(&pem).unwrap_err();
        assert!(
            matches!(error, KeyError::Pem(_) | KeyError::Der(_)),
            "{pem}: {error:?}"
        );
    }
}

#[test]
fn bad_jwk_numbers_are_refused() {
    let jwk = signing_key().public_jwk();
    let bad_e = |e: &str| {
        VerifyingKey::from_jwk(&Jwk {
            e: e.to_owned(),
            ..jwk.clone()
        })
    };
    assert_eq!(bad_e("AQ!B"), Err(KeyError::NotBase64("e")));
    assert_eq!(bad_e("AQ"), Err(KeyError::Exponent)); // 1
    assert_eq!(bad_e("AAE"), Err(KeyError::Exponent)); // 1, with a leading zero
    assert_eq!(bad_e("AQA"), Err(KeyError::Exponent)); // 256, even
    assert!(bad_e("Aw").is_ok()); // 3
    assert!(bad_e("AAEAAQ").is_ok()); // 65537 with a leading zero
    let mut n = URL_SAFE_NO_PAD.decode(&jwk.n).unwrap();
    *n.last_mut().unwrap() &= 0xfe;
    let even = Jwk {
        n: URL_SAFE_NO_PAD.encode(n),
        ..jwk
    };
    assert_eq!(VerifyingKey::from_jwk(&even), Err(KeyError::EvenModulus));
}

#[test]
fn key_set_from_jwks_skips_foreign_keys_and_rejects_broken_ones() {
    let ours = signing_key().public_jwk();
    let clerk: Jwk = serde_json::from_str(CLERK_JWK).unwrap();
    let ec: Jwk =
        serde_json::from_str(r#"{"kty":"EC","kid":"ec1","crv":"P-256","x":"a","y":"b"}"#).unwrap();
    let set = KeySet::from_jwks(&Jwks {
        keys: vec![ec.clone(), ours.clone(), clerk.clone()],
    })
    .unwrap();
    assert_eq!(set.keys().len(), 2);
    assert!(set.get(TEST_KID).is_some());
    assert!(set.get("ins_2GIoQhbUpy0hX7B2cVkuTMinXoD").is_some());
    assert!(set.get("ec1").is_none());

    assert_eq!(
        KeySet::from_jwks(&Jwks { keys: vec![ec] }),
        Err(KeyError::NoUsableKey)
    );
    assert_eq!(
        KeySet::from_jwks(&Jwks {
            keys: vec![ours.clone(), ours.clone()]
        }),
        Err(KeyError::DuplicateKeyId(TEST_KID.to_owned()))
    );
    let broken = Jwk {
        n: "AQAB".to_owned(),
        ..clerk
    };
    assert!(
        KeySet::from_jwks(&Jwks {
            keys: vec![ours, broken]
        })
        .is_err()
    );
    let pem = VerifyingKey::from_spki_pem(TEST_PUBLIC_PEM).unwrap();
    assert_eq!(KeySet::from_keys(vec![pem]), Err(KeyError::MissingKeyId));
}

#[test]
fn jwks_json_parses_like_clerks_endpoint() {
    let body = format!(r#"{{"keys":[{CLERK_JWK}]}}"#);
    let jwks: Jwks = serde_json::from_str(&body).unwrap();
    assert!(KeySet::from_jwks(&jwks).is_ok());
}

#[test]
fn signing_keys_are_pkcs8_rsa_of_at_least_2048_bits() {
    assert!(matches!(
        SigningKey::from_pkcs8_der(b"not a key", "kid"),
        Err(KeyError::PrivateKey(_))
    ));
    assert_eq!(signing_key().kid(), TEST_KID);
}

#[test]
fn debug_output_shows_no_key_material() {
    let signing = format!("{:?}", signing_key());
    let verifying = format!("{:?}", signing_key().verifying_key());
    let n = signing_key().public_jwk().n;
    for shown in [&signing, &verifying] {
        assert!(shown.contains(TEST_KID), "{shown}");
        assert!(!shown.contains(&n[..16]), "{shown}");
        assert!(shown.len() < 100, "{shown}");
    }
}
