//! Minting session tokens: the identity part's private key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};

use super::key::{MAX_RSA_BITS, MIN_RSA_BITS, rsa_jwk};
use super::{ALGORITHM, Header, Jwk, KeyError, SessionClaims, TYPE_JWT, VerifyingKey};

/// An RSA private key that signs RS256 session tokens under a key id. Its `Debug` shows the
/// kid and size only.
pub struct SigningKey {
    kid: String,
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl SigningKey {
    /// A key from PKCS#8 DER (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 |
    /// openssl pkcs8 -topk8 -nocrypt -outform DER`; OpenSSL 3.0's `genpkey -outform DER` writes
    /// PKCS#1, which is refused).
    ///
    /// # Errors
    /// If the DER is not an RSA private key of 2048..=4096 bits that ring accepts.
    pub fn from_pkcs8_der(der: &[u8], kid: impl Into<String>) -> Result<Self, KeyError> {
        let pair = RsaKeyPair::from_pkcs8(der)
            .map_err(|rejected| KeyError::PrivateKey(rejected.to_string()))?;
        let bits = pair.public().modulus_len() * 8;
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(KeyError::ModulusSize { bits });
        }
        Ok(Self {
            kid: kid.into(),
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// The key id written into every token's header (Clerk uses the instance id, `ins_…`).
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as Clerk's JWK shape, for the JWKS endpoint.
    #[must_use]
    pub fn public_jwk(&self) -> Jwk {
        let public = public_parts(&self.pair);
        rsa_jwk(Some(self.kid.clone()), &public.n, &public.e)
    }

    /// The public half, for verifying our own tokens without a JWKS round trip.
    ///
    /// # Panics
    /// Never in practice: a key pair ring accepted always has a valid public key.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        let public = public_parts(&self.pair);
        VerifyingKey::from_components(Some(self.kid.clone()), &public.n, &public.e)
            .expect("ring validated this key pair")
    }

    /// A compact JWS over `claims` with header `{"alg":"RS256","kid":…,"typ":"JWT"}`.
    ///
    /// `claims.extra` must not repeat a registered claim name, or the payload would carry it
    /// twice.
    ///
    /// # Panics
    /// If the operating system's random number generator fails (ring blinds RSA signing).
    #[must_use]
    pub fn sign(&self, claims: &SessionClaims) -> String {
        let header = Header {
            alg: ALGORITHM.to_owned(),
            kid: Some(self.kid.clone()),
            typ: Some(TYPE_JWT.to_owned()),
            cat: None,
        };
        self.sign_json(&header, claims)
    }

    /// A compact JWS of any header and payload, RS256-signed with this key: for tokens other
    /// than session tokens (a test provider's ID tokens). The header should say `RS256`.
    ///
    /// # Panics
    /// If the operating system's random number generator fails (ring blinds RSA signing).
    #[must_use]
    pub fn sign_json(
        &self,
        header: &impl serde::Serialize,
        payload: &impl serde::Serialize,
    ) -> String {
        let mut token = encode_json(header);
        token.push('.');
        token.push_str(&encode_json(payload));
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                token.as_bytes(),
                &mut signature,
            )
            .expect("RSA signing only fails if the system RNG fails");
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        token
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("bits", &(self.pair.public().modulus_len() * 8))
            .finish_non_exhaustive()
    }
}

/// Base64url of the JSON of a header or claims.
fn encode_json(value: &impl serde::Serialize) -> String {
    let json = serde_json::to_vec(value).expect("headers and claims have only string map keys");
    URL_SAFE_NO_PAD.encode(json)
}

fn public_parts(pair: &RsaKeyPair) -> RsaPublicKeyComponents<Vec<u8>> {
    RsaPublicKeyComponents::from(pair.public())
}
