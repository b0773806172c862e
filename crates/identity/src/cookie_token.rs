//! Random tokens that browsers hold in `HttpOnly` cookies: 32 bytes from the operating system,
//! URL-safe base64 without padding (43 characters). The database keeps only their SHA-256, so
//! a copy of it cannot be replayed as cookies, and `Debug` shows nothing. Each use is its own
//! type ([`crate::sessions::ClientToken`], [`crate::verifications::BrowserToken`]), so one
//! cannot be passed where the other is meant.

use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// What a token is for; names it in `Debug`.
pub trait Kind {
    const NAME: &'static str;
}

/// A cookie's random token of kind `K`.
pub struct CookieToken<K> {
    value: String,
    kind: PhantomData<fn() -> K>,
}

impl<K> CookieToken<K> {
    /// A new random token.
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
        Self::wrap(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn wrap(value: String) -> Self {
        Self {
            value,
            kind: PhantomData,
        }
    }

    /// Wraps a cookie value received from a browser, if it has the shape of one.
    #[must_use]
    pub fn from_cookie(value: &str) -> Option<Self> {
        (value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self::wrap(value.to_owned()))
    }

    /// The cookie value. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// What the database keeps: the token's SHA-256, in hex.
    #[must_use]
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.value.as_bytes()))
    }
}

impl<K> Clone for CookieToken<K> {
    fn clone(&self) -> Self {
        Self::wrap(self.value.clone())
    }
}

impl<K> PartialEq for CookieToken<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<K> Eq for CookieToken<K> {}

impl<K: Kind> std::fmt::Debug for CookieToken<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}(redacted)", K::NAME)
    }
}
