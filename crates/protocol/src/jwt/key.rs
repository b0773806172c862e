//! RSA public keys: Clerk's JWK shape, and the parsed form verification uses.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::{Deserialize, Serialize};

use super::{ALGORITHM, URL_SAFE_STRICT, der};

/// Smallest modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest modulus accepted, in bits (ring's limit for verification).
pub const MAX_RSA_BITS: usize = 8192;

/// One JSON Web Key as Clerk publishes it:
/// `{"use":"sig","kty":"RSA","kid":"ins_…","alg":"RS256","n":"<base64url>","e":"AQAB"}`.
///
/// `n` and `e` default to empty so a key set that also lists non-RSA keys still parses; such
/// keys are skipped by [`KeySet::from_jwks`](super::KeySet::from_jwks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default)]
    pub n: String,
    #[serde(default)]
    pub e: String,
}

/// A JWK Set (`{"keys":[…]}`), the body of Clerk's `/v1/jwks` and `/.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is not an RSA key")]
    NotRsa,
    #[error("the key is for algorithm {0:?}; only RS256 is supported")]
    UnsupportedAlgorithm(String),
    #[error("the key's use is {0:?}, not \"sig\"")]
    NotForSigning(String),
    #[error("the JWK's {0} is not base64url")]
    NotBase64(&'static str),
    #[error("invalid PEM: {0}")]
    Pem(&'static str),
    #[error("invalid SubjectPublicKeyInfo DER: {0}")]
    Der(&'static str),
    #[error("the RSA modulus has {bits} bits; at least 2048 and at most 8192 are accepted")]
    ModulusSize { bits: usize },
    #[error("the RSA modulus is even, so it is not an RSA modulus")]
    EvenModulus,
    #[error("the RSA public exponent must be odd, at least 3 and below 2^33")]
    Exponent,
    #[error("the private key is not a usable PKCS#8 RSA key: {0}")]
    PrivateKey(String),
    #[error("a key in a key set has no kid")]
    MissingKeyId,
    #[error("two keys in a key set share the kid {0:?}")]
    DuplicateKeyId(String),
    #[error("the key set holds no RS256 signing key")]
    NoUsableKey,
}

/// An RSA public key ready to check RS256 signatures. Parsed and validated once, at
/// construction, so each verification goes straight to the RSA operation.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    /// Measured faster than re-parsing PKCS#1 DER through `UnparsedPublicKey` on every call.
    components: RsaPublicKeyComponents<Vec<u8>>,
    bits: usize,
}

impl VerifyingKey {
    /// A key from a JWK: `kty` must be `RSA`, `alg` absent or `RS256`, `use` absent or `sig`.
    ///
    /// # Errors
    /// If the JWK is not an RS256 signing key, its `n`/`e` are not base64url, or the numbers
    /// are not an acceptable RSA key (see [`MIN_RSA_BITS`]).
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if jwk.kty != "RSA" {
            return Err(KeyError::NotRsa);
        }
        if let Some(alg) = jwk.alg.as_deref().filter(|alg| *alg != ALGORITHM) {
            return Err(KeyError::UnsupportedAlgorithm(alg.to_owned()));
        }
        if let Some(use_) = jwk.use_.as_deref().filter(|use_| *use_ != "sig") {
            return Err(KeyError::NotForSigning(use_.to_owned()));
        }
        let n = URL_SAFE_STRICT
            .decode(&jwk.n)
            .map_err(|_| KeyError::NotBase64("n"))?;
        let e = URL_SAFE_STRICT
            .decode(&jwk.e)
            .map_err(|_| KeyError::NotBase64("e"))?;
        Self::from_components(jwk.kid.clone(), &n, &e)
    }

    /// A key from an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), as Clerk's dashboard shows it.
    /// The key has no kid; set one with [`VerifyingKey::with_kid`] to put it in a
    /// [`KeySet`](super::KeySet).
    ///
    /// # Errors
    /// If the text is not one SPKI PEM block holding an acceptable RSA key.
    pub fn from_spki_pem(pem: &str) -> Result<Self, KeyError> {
        let parsed = der::parse_spki_pem(pem)?;
        Self::from_components(None, &parsed.n, &parsed.e)
    }

    /// A key from SubjectPublicKeyInfo DER.
    ///
    /// # Errors
    /// If the DER is not an SPKI holding an acceptable RSA key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let parsed = der::parse_spki_der(der)?;
        Self::from_components(None, &parsed.n, &parsed.e)
    }

    /// A key from big-endian modulus and exponent (leading zero bytes allowed).
    ///
    /// # Errors
    /// If the modulus size is outside 2048..=8192 bits, the modulus is even, or the exponent
    /// is not an odd value in 3..2^33.
    pub fn from_components(kid: Option<String>, n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_length(n);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(KeyError::ModulusSize { bits });
        }
        if n.last().is_none_or(|last| last & 1 == 0) {
            return Err(KeyError::EvenModulus);
        }
        let exponent = if e.len() > 5 {
            u64::MAX
        } else {
            e.iter().fold(0_u64, |acc, &b| acc << 8 | u64::from(b))
        };
        if !(3..1 << 33).contains(&exponent) || exponent & 1 == 0 {
            return Err(KeyError::Exponent);
        }
        Ok(Self {
            kid,
            components: RsaPublicKeyComponents {
                n: n.to_vec(),
                e: e.to_vec(),
            },
            bits,
        })
    }

    /// The same key under `kid`.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key id, if the key came with one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The modulus size in bits.
    #[must_use]
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The key as Clerk's JWK shape (`use` `sig`, `alg` `RS256`).
    #[must_use]
    pub fn to_jwk(&self) -> Jwk {
        rsa_jwk(self.kid.clone(), &self.components.n, &self.components.e)
    }

    /// Checks an RSASSA-PKCS1-v1_5 SHA-256 signature of `message`, with nothing else around
    /// it: no JWS parsing, no claims. [`verify_session_token`](super::verify_session_token)
    /// calls exactly this; it is public so a benchmark can compare the two.
    #[must_use]
    pub fn verify_raw(&self, message: &[u8], signature: &[u8]) -> bool {
        self.components
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok()
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid
            && self.components.n == other.components.n
            && self.components.e == other.components.e
    }
}

impl Eq for VerifyingKey {}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

/// Clerk's JWK for a big-endian modulus and exponent.
pub(super) fn rsa_jwk(kid: Option<String>, n: &[u8], e: &[u8]) -> Jwk {
    Jwk {
        use_: Some("sig".to_owned()),
        kty: "RSA".to_owned(),
        kid,
        alg: Some(ALGORITHM.to_owned()),
        n: URL_SAFE_NO_PAD.encode(strip_leading_zeros(n)),
        e: URL_SAFE_NO_PAD.encode(strip_leading_zeros(e)),
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Bits of a big-endian number without leading zero bytes.
fn bit_length(n: &[u8]) -> usize {
    n.first().map_or(0, |&top| {
        (n.len() - 1) * 8 + (8 - usize::try_from(top.leading_zeros()).unwrap_or(8))
    })
}
