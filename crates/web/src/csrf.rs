//! Cross-site request forgery protection for every HTML form.
//!
//! Two independent checks, both required on every state-changing form post:
//!
//! 1. **A token bound to a cookie.** The browser holds a random value in an `HttpOnly`,
//!    `SameSite=Lax` cookie; forms carry `HMAC(key, cookie)` in a hidden field. Another site can
//!    make a browser send the cookie but cannot read it or compute the HMAC, and a value planted
//!    by a sibling subdomain is useless without the server's key.
//! 2. **Where the request comes from.** `Sec-Fetch-Site: cross-site` is refused, and an `Origin`
//!    header, when present, must be this server's public origin or the origin the request was
//!    addressed to.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit as _, Mac as _};
use http::HeaderMap;
use subtle::ConstantTimeEq as _;

use crate::cookies;

mod form;

pub use form::{CsrfForm, ProtectedForm, refused};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Name of the hidden form field carrying the token.
pub const FIELD: &str = "csrf_token";

/// Issues and checks CSRF tokens.
#[derive(Clone)]
pub struct Csrf {
    key: [u8; 32],
    secure: bool,
    public_origin: String,
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Csrf")
            .field("public_origin", &self.public_origin)
            .finish_non_exhaustive()
    }
}

/// Why a form post was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("the form's security token is missing or has expired; reload the page and try again")]
    BadToken,
    #[error("this form was sent from another site")]
    CrossSite,
}

/// The token to put in a form, and the cookie to set if the browser had none yet.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub set_cookie: Option<String>,
}

impl Csrf {
    /// `key` must be secret and stable across instances (derive it from the master key);
    /// `secure` marks cookies `Secure` (HTTPS deployments).
    #[must_use]
    pub fn new(key: [u8; 32], secure: bool, public_origin: String) -> Self {
        Self {
            key,
            secure,
            public_origin,
        }
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey_csrf"
        } else {
            "latchkey_csrf"
        }
    }

    fn sign(&self, nonce: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"latchkey csrf v1\0");
        mac.update(nonce.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The token for a form on a page answering a request with `headers`; sets the cookie when
    /// the browser has none (or a malformed one).
    #[must_use]
    pub fn issue(&self, headers: &HeaderMap) -> Issued {
        if let Some(nonce) = cookies::get(headers, self.cookie_name()).filter(|n| valid_nonce(n)) {
            return Issued {
                token: self.sign(nonce),
                set_cookie: None,
            };
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
        let nonce = URL_SAFE_NO_PAD.encode(bytes);
        let set_cookie = cookies::build(self.cookie_name(), &nonce, self.secure, true, None);
        Issued {
            token: self.sign(&nonce),
            set_cookie: Some(set_cookie),
        }
    }

    /// Checks a form post: origin first, then the token against the cookie.
    ///
    /// # Errors
    /// [`CsrfError::CrossSite`] or [`CsrfError::BadToken`].
    pub fn verify(&self, headers: &HeaderMap, token: Option<&str>) -> Result<(), CsrfError> {
        if header(headers, "sec-fetch-site").is_some_and(|site| site == "cross-site") {
            return Err(CsrfError::CrossSite);
        }
        if let Some(origin) = header(headers, "origin") {
            let addressed = header(headers, "host").map(|host| {
                let scheme = if self.secure { "https" } else { "http" };
                format!("{scheme}://{host}")
            });
            if origin != self.public_origin && Some(origin) != addressed.as_deref() {
                return Err(CsrfError::CrossSite);
            }
        }
        let nonce = cookies::get(headers, self.cookie_name())
            .filter(|n| valid_nonce(n))
            .ok_or(CsrfError::BadToken)?;
        let expected = self.sign(nonce);
        let given = token.unwrap_or_default();
        if expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        {
            Ok(())
        } else {
            Err(CsrfError::BadToken)
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn valid_nonce(nonce: &str) -> bool {
    nonce.len() == 43
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csrf() -> Csrf {
        Csrf::new([7; 32], false, "http://127.0.0.1:3000".to_owned())
    }

    fn with_cookie(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("cookie", pair.parse().unwrap());
        headers
    }

    #[test]
    fn a_token_round_trips_with_its_cookie() {
        let issued = csrf().issue(&HeaderMap::new());
        let cookie = issued.set_cookie.unwrap();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let headers = with_cookie(&cookie);
        assert_eq!(csrf().verify(&headers, Some(&issued.token)), Ok(()));
        // Reissuing for the same browser reuses its cookie.
        let again = csrf().issue(&headers);
        assert!(again.set_cookie.is_none());
        assert_eq!(again.token, issued.token);
    }

    #[test]
    fn missing_or_wrong_tokens_are_refused() {
        let issued = csrf().issue(&HeaderMap::new());
        let headers = with_cookie(&issued.set_cookie.unwrap());
        assert_eq!(csrf().verify(&headers, None), Err(CsrfError::BadToken));
        assert_eq!(
            csrf().verify(&headers, Some("nope")),
            Err(CsrfError::BadToken)
        );
        assert_eq!(
            csrf().verify(&HeaderMap::new(), Some(&issued.token)),
            Err(CsrfError::BadToken)
        );
        let other_key = Csrf::new([8; 32], false, "http://127.0.0.1:3000".to_owned());
        assert_eq!(
            other_key.verify(&headers, Some(&issued.token)),
            Err(CsrfError::BadToken)
        );
    }

    #[test]
    fn cross_site_posts_are_refused_even_with_a_valid_token() {
        let issued = csrf().issue(&HeaderMap::new());
        let mut headers = with_cookie(&issued.set_cookie.unwrap());
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert_eq!(
            csrf().verify(&headers, Some(&issued.token)),
            Err(CsrfError::CrossSite)
        );
        headers.remove("sec-fetch-site");
        headers.insert("origin", "https://evil.example".parse().unwrap());
        assert_eq!(
            csrf().verify(&headers, Some(&issued.token)),
            Err(CsrfError::CrossSite)
        );
        headers.insert("origin", "http://127.0.0.1:3000".parse().unwrap());
        assert_eq!(csrf().verify(&headers, Some(&issued.token)), Ok(()));
        headers.insert("origin", "http://localhost:3000".parse().unwrap());
        headers.insert("host", "localhost:3000".parse().unwrap());
        assert_eq!(csrf().verify(&headers, Some(&issued.token)), Ok(()));
    }

    #[test]
    fn https_deployments_use_a_host_prefixed_secure_cookie() {
        let secure = Csrf::new([7; 32], true, "https://auth.example.com".to_owned());
        let cookie = secure.issue(&HeaderMap::new()).set_cookie.unwrap();
        assert!(
            cookie.starts_with("__Host-latchkey_csrf=") && cookie.contains("; Secure"),
            "{cookie}"
        );
    }
}
