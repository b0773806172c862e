//! Password digests made by other systems, as Clerk's Backend API and its user export carry
//! them (`password_digest` with `password_hasher`, formats as Clerk documents them for
//! `POST /v1/users`: <https://clerk.com/docs/reference/backend-api/tag/users/post/users>).
//!
//! A digest is checked when it is imported, stored as it came (tagged where its text alone does
//! not say which hasher made it), and verified on the hashing threads like latchkey's own
//! hashes. [`super::needs_rehash`] is true for every one of them, so the first successful
//! sign-in replaces it with latchkey's argon2id.
//!
//! Work factors are bounded: a digest that would take seconds to check (bcrypt cost above
//! [`MAX_BCRYPT_COST`], PBKDF2 above [`MAX_PBKDF2_ITERATIONS`] iterations) is refused at
//! import rather than letting every sign-in attempt against it tie up a hashing thread.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq as _;

use super::hash::{self, HashError};

/// The highest bcrypt cost accepted (2^14 rounds, about a second here).
pub const MAX_BCRYPT_COST: u32 = 14;

/// The most PBKDF2 iterations accepted (Django's 2025 default is 1,000,000).
pub const MAX_PBKDF2_ITERATIONS: u32 = 2_000_000;

/// The `password_hasher` values latchkey accepts, as Clerk names them.
pub const SUPPORTED: &str =
    "bcrypt, argon2i, argon2id, pbkdf2_sha256, pbkdf2_sha256_django, pbkdf2_sha1";

/// Which system's hasher made a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hasher {
    /// `$2a$`, `$2b$` or `$2y$` modular crypt format.
    Bcrypt,
    /// An argon2i PHC string.
    Argon2i,
    /// An argon2id PHC string.
    Argon2id,
    /// `pbkdf2_sha256$<iterations>$<base64 salt>$<base64 hash>`.
    Pbkdf2Sha256,
    /// Django's `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` (the salt as text).
    Pbkdf2Sha256Django,
    /// `pbkdf2_sha1$<iterations>$<salt>$<hex hash>` (the salt as text).
    Pbkdf2Sha1,
}

/// Why a digest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("unsupported password_hasher; latchkey accepts {SUPPORTED}")]
    UnknownHasher,
    #[error("password_digest is not a {0} digest latchkey accepts")]
    Malformed(&'static str),
}

impl Hasher {
    /// The hasher Clerk calls `name`.
    ///
    /// # Errors
    /// [`DigestError::UnknownHasher`] for any other name.
    pub fn parse(name: &str) -> Result<Self, DigestError> {
        Ok(match name {
            "bcrypt" => Self::Bcrypt,
            "argon2i" => Self::Argon2i,
            "argon2id" => Self::Argon2id,
            "pbkdf2_sha256" => Self::Pbkdf2Sha256,
            "pbkdf2_sha256_django" => Self::Pbkdf2Sha256Django,
            "pbkdf2_sha1" => Self::Pbkdf2Sha1,
            _ => return Err(DigestError::UnknownHasher),
        })
    }

    /// Clerk's name for it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Bcrypt => "bcrypt",
            Self::Argon2i => "argon2i",
            Self::Argon2id => "argon2id",
            Self::Pbkdf2Sha256 => "pbkdf2_sha256",
            Self::Pbkdf2Sha256Django => "pbkdf2_sha256_django",
            Self::Pbkdf2Sha1 => "pbkdf2_sha1",
        }
    }

    fn pbkdf2_tag(self) -> Option<&'static str> {
        matches!(
            self,
            Self::Pbkdf2Sha256 | Self::Pbkdf2Sha256Django | Self::Pbkdf2Sha1
        )
        .then(|| self.name())
    }
}

/// A digest checked for its hasher, in the form it is stored in `password_hash`. `Debug`
/// shows only the hasher.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportedDigest {
    hasher: Hasher,
    stored: String,
}

impl ImportedDigest {
    /// Checks `digest` as `hasher`'s output.
    ///
    /// # Errors
    /// [`DigestError::Malformed`] if it is not in that hasher's format or its work factor is
    /// out of bounds.
    pub fn new(hasher: Hasher, digest: &str) -> Result<Self, DigestError> {
        let malformed = DigestError::Malformed(hasher.name());
        let stored = match hasher {
            Hasher::Bcrypt => {
                let cost = bcrypt_cost(digest).ok_or(malformed.clone())?;
                if !(4..=MAX_BCRYPT_COST).contains(&cost) {
                    return Err(malformed);
                }
                digest.to_owned()
            }
            Hasher::Argon2i | Hasher::Argon2id => {
                let ident = if hasher == Hasher::Argon2i {
                    "$argon2i$"
                } else {
                    "$argon2id$"
                };
                if !digest.starts_with(ident) || !hash::is_readable(digest) {
                    return Err(malformed);
                }
                digest.to_owned()
            }
            Hasher::Pbkdf2Sha256 | Hasher::Pbkdf2Sha256Django | Hasher::Pbkdf2Sha1 => {
                let tag = hasher.pbkdf2_tag().unwrap_or_default();
                let stored = format!("{tag}:{digest}");
                Pbkdf2::parse(&stored).ok_or(malformed)?;
                stored
            }
        };
        Ok(Self { hasher, stored })
    }

    #[must_use]
    pub fn hasher(&self) -> Hasher {
        self.hasher
    }

    /// What goes into `password_hash`.
    #[must_use]
    pub fn as_stored(&self) -> &str {
        &self.stored
    }
}

impl std::fmt::Debug for ImportedDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImportedDigest({}, redacted)", self.hasher.name())
    }
}

/// The cost of a `$2?$NN$` + 53 characters bcrypt string.
fn bcrypt_cost(digest: &str) -> Option<u32> {
    let rest = digest
        .strip_prefix("$2a$")
        .or_else(|| digest.strip_prefix("$2b$"))
        .or_else(|| digest.strip_prefix("$2y$"))?;
    let (cost, salt_and_hash) = rest.split_once('$')?;
    let valid = cost.len() == 2
        && salt_and_hash.len() == 53
        && salt_and_hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    if valid { cost.parse().ok() } else { None }
}

/// A stored PBKDF2 digest, read.
struct Pbkdf2 {
    hasher: Hasher,
    iterations: u32,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl Pbkdf2 {
    fn parse(stored: &str) -> Option<Self> {
        let (tag, digest) = stored.split_once(':')?;
        let hasher = Hasher::parse(tag)
            .ok()
            .filter(|h| h.pbkdf2_tag().is_some())?;
        let mut parts = digest.split('$');
        let algorithm = parts.next()?;
        let iterations: u32 = parts.next()?.parse().ok()?;
        let salt = parts.next()?;
        let encoded = parts.next()?;
        if parts.next().is_some() || !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
            return None;
        }
        let (wanted, salt, expected) = match hasher {
            Hasher::Pbkdf2Sha256 => (
                "pbkdf2_sha256",
                STANDARD.decode(salt).ok()?,
                STANDARD.decode(encoded).ok()?,
            ),
            Hasher::Pbkdf2Sha256Django => (
                "pbkdf2_sha256",
                salt.as_bytes().to_vec(),
                STANDARD.decode(encoded).ok()?,
            ),
            _ => (
                "pbkdf2_sha1",
                salt.as_bytes().to_vec(),
                hex::decode(encoded).ok()?,
            ),
        };
        let sized = (16..=64).contains(&expected.len()) && !salt.is_empty();
        (algorithm == wanted && sized).then_some(Self {
            hasher,
            iterations,
            salt,
            expected,
        })
    }

    fn matches(&self, password: &[u8]) -> bool {
        let mut out = vec![0u8; self.expected.len()];
        if self.hasher == Hasher::Pbkdf2Sha1 {
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, &self.salt, self.iterations, &mut out);
        } else {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, &self.salt, self.iterations, &mut out);
        }
        bool::from(out.as_slice().ct_eq(&self.expected))
    }
}

/// Whether `stored` is a foreign digest, and if so whether `password` matches it. `None`
/// leaves it to the argon2 path.
pub(super) fn verify(password: &[u8], stored: &str) -> Option<Result<bool, HashError>> {
    if stored.starts_with("$2") {
        if bcrypt_cost(stored).is_none_or(|cost| cost > MAX_BCRYPT_COST) {
            return Some(Err(HashError::InvalidHash));
        }
        return Some(bcrypt::verify(password, stored).map_err(|_| HashError::InvalidHash));
    }
    if stored.starts_with("pbkdf2_") {
        return Some(
            Pbkdf2::parse(stored)
                .map(|digest| digest.matches(password))
                .ok_or(HashError::InvalidHash),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by bcryptjs 3.0.3 (`interop/bcrypt-hash.mjs`), not by latchkey's code.
    const BCRYPT: &str = "$2b$06$hFFTiGyDXCmf7XAhAKEzyu.rDqz0dLjv6CuJD6Q6RffyXfFeAJfVi";
    /// Python's `hashlib.pbkdf2_hmac('sha256', b'pw', b'seasalt', 1000)`, base64.
    const PBKDF2_SHA256: &str = "ViJRF1xdpQtYimadedSuBt5uOSSLWsYR5FEclFydhH0=";

    fn stored(hasher: &str, digest: &str) -> String {
        ImportedDigest::new(Hasher::parse(hasher).unwrap(), digest)
            .unwrap()
            .as_stored()
            .to_owned()
    }

    fn check(stored: &str, password: &str) -> bool {
        verify(password.as_bytes(), stored).unwrap().unwrap()
    }

    #[test]
    fn digests_made_elsewhere_verify_their_password_only() {
        let cases = [
            (stored("bcrypt", BCRYPT), "hunter2-correct"),
            (
                stored(
                    "pbkdf2_sha256_django",
                    &format!("pbkdf2_sha256$1000$seasalt${PBKDF2_SHA256}"),
                ),
                "pw",
            ),
            (
                stored(
                    "pbkdf2_sha256",
                    &format!("pbkdf2_sha256$1000$c2Vhc2FsdA==${PBKDF2_SHA256}"),
                ),
                "pw",
            ),
            // RFC 6070's second PBKDF2-HMAC-SHA1 vector.
            (
                stored(
                    "pbkdf2_sha1",
                    "pbkdf2_sha1$2$salt$ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957",
                ),
                "password",
            ),
        ];
        for (stored, password) in &cases {
            assert!(check(stored, password), "{stored}");
            assert!(!check(stored, "wrong"), "{stored}");
            assert!(super::super::needs_rehash(stored), "{stored}");
        }
        // latchkey's own hashes are not foreign.
        assert!(verify(b"pw", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA").is_none());
    }

    #[test]
    fn unknown_hashers_malformed_digests_and_costly_ones_are_refused() {
        assert_eq!(Hasher::parse("md5"), Err(DigestError::UnknownHasher));
        assert_eq!(Hasher::parse("BCRYPT"), Err(DigestError::UnknownHasher));
        let refused = [
            ("bcrypt", "$2b$06$short"),
            ("bcrypt", &BCRYPT.replace("$06$", "$15$")),
            ("bcrypt", &BCRYPT.replace("$06$", "$03$")),
            ("bcrypt", "pbkdf2_sha256$1000$seasalt$abc"),
            ("argon2id", BCRYPT),
            (
                "argon2i",
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            ),
            (
                "pbkdf2_sha256_django",
                "pbkdf2_sha256$0$seasalt$ViJRF1xdpQtYimadedSuBt5uOSSLWsYR5FEclFydhH0=",
            ),
            (
                "pbkdf2_sha256_django",
                "pbkdf2_sha256$2000001$seasalt$ViJRF1xdpQtYimadedSuBt5uOSSLWsYR5FEclFydhH0=",
            ),
            (
                "pbkdf2_sha256_django",
                "pbkdf2_sha1$1000$seasalt$ViJRF1xdpQtYimadedSuBt5uOSSLWsYR5FEclFydhH0=",
            ),
            (
                "pbkdf2_sha256",
                "pbkdf2_sha256$1000$not base64!$ViJRF1xdpQtYimadedSuBt5uOSSLWsYR5FEclFydhH0=",
            ),
            ("pbkdf2_sha1", "pbkdf2_sha1$2$salt$not-hex"),
            (
                "pbkdf2_sha1",
                "pbkdf2_sha1$2$salt$ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957$extra",
            ),
        ];
        for (hasher, digest) in refused {
            let hasher = Hasher::parse(hasher).unwrap();
            assert_eq!(
                ImportedDigest::new(hasher, digest),
                Err(DigestError::Malformed(hasher.name())),
                "{digest}"
            );
        }
    }

    #[test]
    fn imported_digests_are_hidden_from_debug() {
        let digest = ImportedDigest::new(Hasher::Bcrypt, BCRYPT).unwrap();
        assert_eq!(format!("{digest:?}"), "ImportedDigest(bcrypt, redacted)");
    }
}
