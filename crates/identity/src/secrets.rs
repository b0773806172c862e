//! The master secret and what is derived from it: sealing keys at rest, CSRF and throttle keys.
//!
//! Every instance sharing a database must share the master secret (`LATCHKEY_SECRET`, or the
//! `master.key` file latchkey writes into its data directory on first start). Subkeys are
//! derived per purpose with HMAC-SHA256, so no two uses share key material.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit as _, Mac as _};
use ring::aead;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The 32-byte master secret. `Debug` shows nothing.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

/// Why a master secret or a sealed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the secret must be at least 32 characters long")]
    TooShort,
    #[error("the key file does not hold a base64 32-byte key")]
    BadKeyFile,
    #[error(
        "a sealed value could not be opened: it was sealed under another master secret, or altered"
    )]
    CannotOpen,
}

impl MasterKey {
    /// From `LATCHKEY_SECRET`: any text of 32 characters or more (e.g. `openssl rand -base64 32`).
    ///
    /// # Errors
    /// [`SecretError::TooShort`].
    pub fn from_secret_text(text: &str) -> Result<Self, SecretError> {
        if text.chars().count() < 32 {
            return Err(SecretError::TooShort);
        }
        let mut mac =
            HmacSha256::new_from_slice(b"latchkey master secret v1").expect("any key length");
        mac.update(text.as_bytes());
        Ok(Self(mac.finalize().into_bytes().into()))
    }

    /// A new random master key.
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes.
    #[must_use]
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random number generator failed");
        Self(key)
    }

    /// The key file's content.
    #[must_use]
    pub fn to_file_text(&self) -> String {
        format!("{}\n", STANDARD.encode(self.0))
    }

    /// Reads a key file's content.
    ///
    /// # Errors
    /// [`SecretError::BadKeyFile`].
    pub fn from_file_text(text: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SecretError::BadKeyFile)?;
        Ok(Self(bytes.try_into().map_err(|_| SecretError::BadKeyFile)?))
    }

    /// A 32-byte key for one purpose.
    #[must_use]
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("any key length");
        mac.update(b"latchkey derive v1\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn aead_key(&self, purpose: &str) -> aead::LessSafeKey {
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, &self.derive(purpose))
            .expect("a 32-byte key");
        aead::LessSafeKey::new(key)
    }

    /// Encrypts `plaintext` for `purpose` (AES-256-GCM, random nonce); base64 text.
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes.
    #[must_use]
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; aead::NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random number generator failed");
        let mut buffer = plaintext.to_vec();
        self.aead_key(purpose)
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(purpose.as_bytes()),
                &mut buffer,
            )
            .expect("sealing cannot fail for in-memory sizes");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        STANDARD.encode(out)
    }

    /// Decrypts what [`MasterKey::seal`] produced for the same purpose.
    ///
    /// # Errors
    /// [`SecretError::CannotOpen`] under another key, another purpose, or after tampering.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| SecretError::CannotOpen)?;
        if bytes.len() < aead::NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return Err(SecretError::CannotOpen);
        }
        let (nonce, ciphertext) = bytes.split_at(aead::NONCE_LEN);
        let nonce =
            aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::CannotOpen)?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .aead_key(purpose)
            .open_in_place(nonce, aead::Aad::from(purpose.as_bytes()), &mut buffer)
            .map_err(|_| SecretError::CannotOpen)?;
        Ok(plaintext.to_vec())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_purpose() {
        let key = MasterKey::generate();
        let sealed = key.seal("signing-key", b"private");
        assert_eq!(key.open("signing-key", &sealed).unwrap(), b"private");
        assert_eq!(key.open("other", &sealed), Err(SecretError::CannotOpen));
        assert_eq!(
            MasterKey::generate().open("signing-key", &sealed),
            Err(SecretError::CannotOpen)
        );
        let mut tampered = STANDARD.decode(&sealed).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            key.open("signing-key", &STANDARD.encode(tampered)),
            Err(SecretError::CannotOpen)
        );
    }

    #[test]
    fn secrets_and_files_round_trip() {
        assert_eq!(
            MasterKey::from_secret_text("short").unwrap_err(),
            SecretError::TooShort
        );
        let a = MasterKey::from_secret_text("a-long-enough-secret-for-latchkey-tests").unwrap();
        let b = MasterKey::from_secret_text("a-long-enough-secret-for-latchkey-tests").unwrap();
        assert_eq!(a.derive("x"), b.derive("x"));
        assert_ne!(a.derive("x"), a.derive("y"));
        let file = a.to_file_text();
        assert_eq!(
            MasterKey::from_file_text(&file).unwrap().derive("x"),
            a.derive("x")
        );
        assert_eq!(format!("{a:?}"), "MasterKey(redacted)");
    }
}
