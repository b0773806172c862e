//! A software passkey authenticator written for the tests, to craft answers a browser would
//! never send: assertions for another relying party or origin, replays, counters going
//! backwards. It makes one ES256 (P-256) key with ring, and writes its registration as an
//! attestation object with the "none" format, in CTAP2's canonical CBOR (W3C WebAuthn Level 3
//! §6.1 authenticator data, §6.5.4 attestation object, §8.7 "none"; RFC 9052/9053 COSE key).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// Authenticator data flags (§6.1): user present, user verified, attested credential data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

pub struct SoftAuthenticator {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    pub credential_id: Vec<u8>,
    /// The user handle the relying party gave at registration.
    pub user_handle: Vec<u8>,
    /// The relying party and origin it answers for (a test may send others).
    pub rp_id: String,
    pub origin: String,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A CBOR byte string header (major type 2) for `len` bytes, then the bytes.
fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len < 24 {
        out.push(0x40 | u8::try_from(len).unwrap());
    } else if len < 256 {
        out.extend([0x58, u8::try_from(len).unwrap()]);
    } else {
        out.push(0x59);
        out.extend(u16::try_from(len).unwrap().to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// A CBOR text string (major type 3), shorter than 24 bytes.
fn cbor_text(out: &mut Vec<u8>, text: &str) {
    out.push(0x60 | u8::try_from(text.len()).unwrap());
    out.extend_from_slice(text.as_bytes());
}

impl SoftAuthenticator {
    pub fn new(rp_id: &str, origin: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut credential_id = vec![0u8; 32];
        ring::rand::SecureRandom::fill(&rng, &mut credential_id).unwrap();
        Self {
            key,
            rng,
            credential_id,
            user_handle: Vec::new(),
            rp_id: rp_id.to_owned(),
            origin: origin.to_owned(),
        }
    }

    /// The public key as a COSE_Key: {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y},
    /// keys in canonical order.
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let mut out = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        cbor_bytes(&mut out, &point[1..33]);
        out.push(0x22);
        cbor_bytes(&mut out, &point[33..65]);
        out
    }

    fn auth_data(&self, rp_id: &str, flags: u8, counter: u32) -> Vec<u8> {
        let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend(counter.to_be_bytes());
        if flags & AT != 0 {
            data.extend([0u8; 16]); // AAGUID: none
            data.extend(
                u16::try_from(self.credential_id.len())
                    .unwrap()
                    .to_be_bytes(),
            );
            data.extend_from_slice(&self.credential_id);
            data.extend(self.cose_key());
        }
        data
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// Answers `options` (PublicKeyCredentialCreationOptionsJSON) as the browser's
    /// `toJSON()` of the new credential, with signature counter `counter`.
    pub fn register(&mut self, options: &Value, counter: u32) -> Value {
        let challenge = options["challenge"]
            .as_str()
            .expect("options have a challenge");
        let user = options["user"]["id"]
            .as_str()
            .expect("options name the user");
        self.user_handle = URL_SAFE_NO_PAD.decode(user).unwrap();
        let client_data = Self::client_data("webauthn.create", challenge, &self.origin);
        let auth_data = self.auth_data(&self.rp_id, UP | UV | AT, counter);
        // {"fmt": "none", "attStmt": {}, "authData": …}, canonical order (shorter keys first).
        let mut attestation = vec![0xa3];
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        attestation.push(0xa0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth_data);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        })
    }

    /// Answers `options` (PublicKeyCredentialRequestOptionsJSON) as the browser's `toJSON()` of
    /// an assertion for `rp_id` from `origin`, with signature counter `counter`.
    pub fn assert_as(&self, options: &Value, rp_id: &str, origin: &str, counter: u32) -> Value {
        let challenge = options["challenge"]
            .as_str()
            .expect("options have a challenge");
        self.assert_challenge(challenge, rp_id, origin, counter)
    }

    /// [`Self::assert_as`] for this authenticator's own relying party and origin.
    pub fn assert(&self, options: &Value, counter: u32) -> Value {
        self.assert_as(options, &self.rp_id, &self.origin, counter)
    }

    /// An assertion over any `challenge` (base64url).
    pub fn assert_challenge(
        &self,
        challenge: &str,
        rp_id: &str,
        origin: &str,
        counter: u32,
    ) -> Value {
        let client_data = Self::client_data("webauthn.get", challenge, origin);
        let auth_data = self.auth_data(rp_id, UP | UV, counter);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature = self.key.sign(&self.rng, &signed).unwrap();
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        })
    }
}
