//! Key material and token builders shared by the jwt tests.
//!
//! The RSA-2048 key below exists only for these tests (made with `openssl genpkey -algorithm
//! RSA -pkeyopt rsa_keygen_bits:2048`, converted to PKCS#8 with `openssl pkcs8 -topk8
//! -nocrypt`); nothing trusts it.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RsaEncoding, RsaKeyPair};

use super::super::*;

/// Clerk's `mockJwt` (docs/PROTOCOLS.md §4.9).
pub const CLERK_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Imluc18yR0lvUWhiVXB5MGhYN0IyY1ZrdVRNaW5Yb0QiLCJ0eXAiOiJKV1QifQ.eyJhenAiOiJodHRwczovL2FjY291bnRzLmluc3BpcmVkLnB1bWEtNzQubGNsLmRldiIsImV4cCI6MTY2NjY0ODMxMCwiaWF0IjoxNjY2NjQ4MjUwLCJpc3MiOiJodHRwczovL2NsZXJrLmluc3BpcmVkLnB1bWEtNzQubGNsLmRldiIsIm5iZiI6MTY2NjY0ODI0MCwic2lkIjoic2Vzc18yR2JEQjRlbk5kQ2E1dlMxenBDM1h6Zzl0SzkiLCJzdWIiOiJ1c2VyXzJHSXBYT0VwVnlKdzUxcmtabjlLbW5jNlN4ciJ9.j3rB92k32WqbQDkFB093H4GoQsBVLH4HLGF6ObcwUaVGiHC8SEu6T31FuPf257SL8A5sSGtWWM1fqhQpdLohgZb_hbJswGBuYI-Clxl9BtpIRHbWFZkLBIj8yS9W9aVtD3fWBbF6PHx7BY1udio-rbGWg1YAOZNtVcxF02p-MvX-8XIK92Vwu3Un5zyfCoVIg__qo3Xntzw3tznsZ4XDe212c6kVz1R_L1d5DKjeWXpjUPAS_zFeZSIJEQLf4JNr4JCY38tfdnc3ajfDA3p36saf1XwmTdWXQKCXi75c2TJAXROs3Pgqr5Kw_5clygoFuxN5OEMhFWFSnvIBdi3M6w";

/// Clerk's `mockRsaJwk`, the key that signed [`CLERK_TOKEN`].
pub const CLERK_JWK: &str = r#"{"use":"sig","kty":"RSA","kid":"ins_2GIoQhbUpy0hX7B2cVkuTMinXoD","alg":"RS256","e":"AQAB","n":"qYy3MY8fOneEyzNDu9lp6iGXKkNUF-u_dUnrlkadZYyB35efzKFJEr9fftmWv5PUj1uRHTQ3bh6X1cceOYsIjy008dHWZJsKhGOxgdTjeK91rjaklxt7tyFXEiKHIOr1LSgKzopClOfCIjxK_oPUOf38pVh7WnekcSBQmU5fqA-EzKMi6k9VwvbzqKlZM4XQsiFyn28d9VubJWjTU8nNot0n1NE-9k6TxM8nglM4RwkBH4Ni4B0LhKKOOV-AG8tBNiZVil415dpBldmJ_j0wk7Ad4VFi9en3Z17oCKr-K-zuT7vKMKSb1548dk0vnmi0vj2QGXSo-61wM5yQWpk6sQ"}"#;

/// A moment inside [`CLERK_TOKEN`]'s validity, Unix milliseconds.
pub const CLERK_NOW_MS: i64 = 1_666_648_280_000;

/// The kid our test key signs under.
pub const TEST_KID: &str = "ins_latchkeytest";

/// "Now" for tokens minted by the test key, Unix milliseconds.
pub const NOW_MS: i64 = 1_700_000_000_000;
pub const NOW_SECS: i64 = NOW_MS / 1000;

pub const APP_ORIGIN: &str = "https://app.example.com";
pub const ISSUER: &str = "https://clerk.example.com";

pub const TEST_PKCS8_BASE64: &str = "\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDHLknLYIdgOXiafeW2ni49HuskciX7iAwF6Mt1e7Dls4nc\
pSCouqe53vQCVocK0shXiu+qLo5mpoSMIVyl2fYor4ziRu13LPj+X3nPTa1saD/BMl/Wy88RxK6nwQR0WNf9/uHuQLxxxlqd\
IVTSF/SXMA/Em5cQ2Ess4n1ui2OYe3ys7lshmk63VniIpKTdDHFyI0FCWqcfr1c/rOj934KAY24O0OfAHP9jrK5hsr2MWMNk\
INN31rK5ua6qbHlCIlv1znoVdTLy+gfPoMTxnRcIBmY4+Y4uvnB2KL8R959cBbnYiwKFN3ap5+49tFprWEFOizs3LOEJugvl\
GgDpM2fvAgMBAAECggEADIr2rK78d2vHE3uAHrrhUIoE5ruldqx/jVO2lERgxGZE9TcU0mtGqqbGmOsX/+98HD8sjnv2DbLI\
wAZNzkfmf3NmnM04oPudBm++vPY4SI5cDW99p4oYFRdcpEW8YRNDLsSBN76t30BNbn2t2LkXdvnY1Fmz7qSgP0hX+8EdWXm4\
wRakTXxadP9eqlA8uHHe7RojBZ3lPVwQ1fUlv/tDbO3lKSTMj8tWhGpVtcIQmW491itmmD96BVjXEIRPtcwL+YvSJdSnCBQU\
7q5yRmAyfcEPaNMC5bfKR7//yekweJYVbqM9Qw8FfosWfuOgHL+g8R9iWhscTM38DpUNbWVDMQKBgQDy8WH5vWFpHaC6fT3g\
+En+EqJf6B2yXI3mlyKJyKX0kjIOxSs2TqL6di3MXhyIx57dkYeasaEnW4NFY8haiQnDAeJaORw7P4S5XFh18M5L5VKOBrS4\
Z7OMQktr4tTUnQV1s7YxQRYeCUq2AvPJQX8gjOoUAYyERWFCTYsLEiZv+QKBgQDR4soDt6y2IBQseoEQZZ9RgY3mJOWgQsVA\
JidD6A7aJ21Zo/dX9VwZ6Mpdwlg3KCvE68SoY5OBBRVSzHrLKUMqISfBOUgalDAUZ4kCWC304pc9AM3wl2wnyElJY42VuVJk\
uijAQFQtS4i/RXnaJnPZ7tRcZrnU7OWq2gxirQNhJwKBgQC6zBzwYMxAfbZzDg+BJogGIp/VLG2BEidNkRHObYglGDADKVmD\
hU1NVYb7Z7V6+jpN1TM2H7Rwxa2WshWAf3QRDCbWBqmNaNaNi9K8xK5qruYeLEvSqnHku6iwSJYq8J0dFlRVZN0ztSNL9dMr\
AQBVr+PgBBzeK1aQG314wrjpSQKBgFHGKKs2HuZ+rR1/RVXcIiyha2Xlrkm4eh26P8YnXdIFVod8aNwuTooRtva8x54F2rfI\
nEB3O3sjPeGapaUOGIsLi++un7crUWhBxpHRRWaJ+h7cd2BrvsnpMRSU4w8Yu09fcI0nAyT6rvbG3Ojv3mdks/ykUXbyLbFZ\
b0Xq3sw1AoGBAMmUaIagEeCuIkIpoXMIhxHR0y3JKTFYMkLerhcbajl+sLKTZvbpAsuY9PrG6q/co0jOpYUWPEygQ2eHwH5m\
l09BCnVUllh0LGd3xSyt6KK1frDF/qCMhrQLZ7u4cWvhxpUyTZDOBO0JPCN3xcHZcxr2Dtj6pdUoVEcioXeM0uuA";
pub const TEST_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxy5Jy2CHYDl4mn3ltp4u
PR7rJHIl+4gMBejLdXuw5bOJ3KUgqLqnud70AlaHCtLIV4rvqi6OZqaEjCFcpdn2
KK+M4kbtdyz4/l95z02tbGg/wTJf1svPEcSup8EEdFjX/f7h7kC8ccZanSFU0hf0
lzAPxJuXENhLLOJ9botjmHt8rO5bIZpOt1Z4iKSk3QxxciNBQlqnH69XP6zo/d+C
gGNuDtDnwBz/Y6yuYbK9jFjDZCDTd9ayubmuqmx5QiJb9c56FXUy8voHz6DE8Z0X
CAZmOPmOLr5wdii/EfefXAW52IsChTd2qefuPbRaa1hBTos7NyzhCboL5RoA6TNn
7wIDAQAB
-----END PUBLIC KEY-----
";
pub const SMALL_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDHeSXxvToLI3Z4SPobsjxb3piW
tj21jcHBH3TzLm8D2H4uQI4t5To8CIarn1EZTxuC/XAUw6XUya7rqcPjhXXqiWoK
ljTWcb/8N6PuzXcGDgk/Q6y4LAyX7c9WeREtyz4gu5oonEIuizXgIlAYmhCAckUg
oCQn7KBdWUnZAogq7QIDAQAB
-----END PUBLIC KEY-----
";

/// An EC P-256 key: a valid SPKI, but not RSA.
pub const EC_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJo3VB2HuoMtaXNhwESpmGmUdfC3y
ZiBx84vUQ7mGCUa+TCt8+Qp5acn30NrvnjExsS2ciLXmdMtxcGBwe5moag==
-----END PUBLIC KEY-----
";

pub fn test_pkcs8() -> Vec<u8> {
    STANDARD.decode(TEST_PKCS8_BASE64).unwrap()
}

pub fn signing_key() -> SigningKey {
    SigningKey::from_pkcs8_der(&test_pkcs8(), TEST_KID).unwrap()
}

pub fn clerk_keys() -> KeySource {
    let jwk: Jwk = serde_json::from_str(CLERK_JWK).unwrap();
    KeySource::Set(KeySet::from_jwks(&Jwks { keys: vec![jwk] }).unwrap())
}

/// The test key's JWKS, as our identity would publish it.
pub fn test_keys() -> KeySource {
    KeySource::Set(
        KeySet::from_jwks(&Jwks {
            keys: vec![signing_key().public_jwk()],
        })
        .unwrap(),
    )
}

/// Claims valid at [`NOW_MS`].
pub fn claims() -> SessionClaims {
    let mut claims = SessionClaims::new("user_2GIpXOEpVyJw51rkZn9Kmnc6Sxr", NOW_SECS + 60);
    claims.sid = Some("sess_2GbDB4enNdCa5vS1zpC3Xzg9tK9".to_owned());
    claims.iss = Some(ISSUER.to_owned());
    claims.azp = Some(APP_ORIGIN.to_owned());
    claims.iat = Some(NOW_SECS);
    claims.nbf = Some(NOW_SECS - 10);
    claims.v = Some(2);
    claims
}

pub fn options() -> VerifyOptions {
    VerifyOptions::new(NOW_MS)
}

pub fn b64(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

/// A token with exactly this header and payload JSON, validly signed by the test key with
/// `encoding` (so only the checks under test can fail it).
pub fn forge_with(header: &str, payload: &str, encoding: &'static dyn RsaEncoding) -> String {
    let pair = RsaKeyPair::from_pkcs8(&test_pkcs8()).unwrap();
    let signed = format!("{}.{}", b64(header), b64(payload));
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        encoding,
        &SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// [`forge_with`] RS256.
pub fn forge(header: &str, payload: &str) -> String {
    forge_with(header, payload, &ring::signature::RSA_PKCS1_SHA256)
}

/// The test key's usual header.
pub fn header() -> String {
    format!(r#"{{"alg":"RS256","kid":"{TEST_KID}","typ":"JWT"}}"#)
}

/// [`claims`] as JSON with `edit` applied.
pub fn payload_with(edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
    let serde_json::Value::Object(mut map) = serde_json::to_value(claims()).unwrap() else {
        unreachable!("claims serialise to an object")
    };
    edit(&mut map);
    serde_json::Value::Object(map).to_string()
}

/// Verifies with the test JWKS at [`NOW_MS`] and default options.
pub fn verify(token: &str) -> Result<SessionClaims, TokenError> {
    verify_session_token(token, &test_keys(), &options())
}
