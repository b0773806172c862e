//! Where the verification key comes from: a set looked up by `kid`, or one fixed key.

use super::{ALGORITHM, Jwks, KeyError, VerifyingKey};

/// Keys selected by the token header's `kid` (the JWKS mode). A token whose kid is not here
/// fails with [`TokenError::UnknownKey`](super::TokenError::UnknownKey); the caller may refetch
/// the JWKS once and retry, as Clerk's SDK does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet {
    /// A handful of keys at most (one, two during a rotation): a scan beats hashing.
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// The RS256 signing keys of a JWKS. Entries meant for something else (`kty` other than
    /// `RSA`, `use` other than `sig`, `alg` other than `RS256`) are skipped, so a provider may
    /// list other keys beside ours; an RS256 entry that is malformed fails the whole set, so a
    /// broken key is noticed when the set is loaded rather than token by token.
    ///
    /// # Errors
    /// A malformed RS256 key, a usable key without `kid`, two keys sharing a kid, or no usable
    /// key at all ([`KeyError::NoUsableKey`]).
    pub fn from_jwks(jwks: &Jwks) -> Result<Self, KeyError> {
        let keys = jwks
            .keys
            .iter()
            .filter(|jwk| {
                jwk.kty == "RSA"
                    && jwk.use_.as_deref().is_none_or(|use_| use_ == "sig")
                    && jwk.alg.as_deref().is_none_or(|alg| alg == ALGORITHM)
            })
            .map(VerifyingKey::from_jwk)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::NoUsableKey);
        }
        Self::from_keys(keys)
    }

    /// A set of keys, each of which must have a distinct kid.
    ///
    /// # Errors
    /// [`KeyError::MissingKeyId`] or [`KeyError::DuplicateKeyId`].
    pub fn from_keys(keys: Vec<VerifyingKey>) -> Result<Self, KeyError> {
        for (index, key) in keys.iter().enumerate() {
            let kid = key.kid().ok_or(KeyError::MissingKeyId)?;
            if keys[..index]
                .iter()
                .any(|earlier| earlier.kid() == Some(kid))
            {
                return Err(KeyError::DuplicateKeyId(kid.to_owned()));
            }
        }
        Ok(Self { keys })
    }

    /// The key whose kid is `kid`.
    #[must_use]
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|key| key.kid() == Some(kid))
    }

    /// All keys, in the order given.
    #[must_use]
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }
}

/// The keys a token may be verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Select by the token's `kid` (JWKS).
    Set(KeySet),
    /// One key for every token, whatever its `kid` says: the networkless mode of a PEM
    /// `CLERK_JWT_KEY` (docs/PROTOCOLS.md §4.6).
    Single(VerifyingKey),
}

impl KeySource {
    /// The key for a token whose header names `kid`, or `None`.
    #[must_use]
    pub fn select(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match self {
            Self::Set(set) => kid.and_then(|kid| set.get(kid)),
            Self::Single(key) => Some(key),
        }
    }
}

impl From<KeySet> for KeySource {
    fn from(set: KeySet) -> Self {
        Self::Set(set)
    }
}

impl From<VerifyingKey> for KeySource {
    fn from(key: VerifyingKey) -> Self {
        Self::Single(key)
    }
}
