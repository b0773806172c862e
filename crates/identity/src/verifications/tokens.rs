//! The secrets of a verification: the six-digit code people type, and the cookie value that
//! ties a pending verification to one browser. Neither shows in `Debug`.

use crate::cookie_token::{CookieToken, Kind};

/// A six-digit code as mailed or typed. `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    /// A uniformly random code.
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes.
    #[must_use]
    pub fn generate() -> Self {
        // 4_294_000_000 is the largest multiple of 10^6 below 2^32: rejecting the rest keeps
        // every code equally likely.
        loop {
            let mut bytes = [0u8; 4];
            getrandom::fill(&mut bytes)
                .expect("the operating system's random number generator failed");
            let n = u32::from_le_bytes(bytes);
            if n < 4_294_000_000 {
                return Self(format!("{:06}", n % 1_000_000));
            }
        }
    }

    /// What someone typed, if it is six digits once spaces and hyphens are dropped.
    #[must_use]
    pub fn parse(input: &str) -> Option<Self> {
        let digits: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(Self(digits))
    }

    /// The digits. Never log them.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(redacted)")
    }
}

/// Marks the token of the cookie that ties a pending verification to one browser.
#[derive(Debug)]
pub enum Browser {}

impl Kind for Browser {
    const NAME: &'static str = "BrowserToken";
}

/// The value of the cookie that ties a pending verification to one browser. `Debug` shows
/// nothing; the database keeps only its SHA-256.
pub type BrowserToken = CookieToken<Browser>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_typed_codes_forgive_spacing() {
        for _ in 0..1000 {
            let code = Code::generate();
            assert_eq!(code.expose().len(), 6);
            assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(Code::parse(" 012 345 ").unwrap().expose(), "012345");
        assert_eq!(Code::parse("012-345").unwrap().expose(), "012345");
        assert!(Code::parse("12345").is_none());
        assert!(Code::parse("1234567").is_none());
        assert!(Code::parse("12345a").is_none());
        assert!(Code::parse("１２３４５６").is_none(), "only ASCII digits");
        assert_eq!(
            format!("{:?}", Code::parse("123456").unwrap()),
            "Code(redacted)"
        );
    }

    #[test]
    fn browser_tokens_are_43_url_safe_characters() {
        let token = BrowserToken::generate();
        assert!(BrowserToken::from_cookie(token.expose()).is_some());
        assert!(BrowserToken::from_cookie("short").is_none());
        assert_eq!(token.hash().len(), 64);
    }
}
