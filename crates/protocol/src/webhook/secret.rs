//! `whsec_` signing secrets.

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{KeyInit as _, Mac as _};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Standard alphabet, padding optional: secrets are pasted by people, and Python's verifier
/// accepts unpadded ones too.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Bytes of a secret latchkey generates (what Svix generates).
pub const GENERATED_KEY_BYTES: usize = 24;

/// A symmetric webhook signing key. Its `Debug` shows nothing of the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

/// Why a secret string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the secret is empty")]
    Empty,
    #[error("the secret is not base64 after its whsec_ prefix")]
    NotBase64,
    #[error("\"v1,…\" is a signature, not a secret; secrets start with whsec_")]
    LooksLikeSignature,
}

impl SigningSecret {
    /// Parses `whsec_<base64>` (the prefix is optional, as in the official libraries).
    ///
    /// # Errors
    /// If the secret is empty, is a signature, or is not base64.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        if text.starts_with("v1,") {
            return Err(SecretError::LooksLikeSignature);
        }
        let encoded = text.strip_prefix("whsec_").unwrap_or(text);
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = LENIENT
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self { key })
    }

    /// A new random secret of [`GENERATED_KEY_BYTES`].
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes.
    #[must_use]
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_KEY_BYTES];
        getrandom::fill(&mut key).expect("the operating system's random number generator failed");
        Self { key }
    }

    /// The `whsec_…` form, to hand to a receiver. Treat it as a password.
    #[must_use]
    pub fn expose(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.key))
    }

    /// The raw HMAC tag over `{id}.{timestamp}.{body}`.
    pub(crate) fn tag(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The `v1,<base64>` signature of one message.
    #[must_use]
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.tag(msg_id, timestamp, body)))
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(redacted)")
    }
}

impl std::str::FromStr for SigningSecret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
