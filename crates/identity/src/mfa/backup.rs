//! Backup codes: 10 random characters (50 bits) from a 32-letter alphabet without look-alikes,
//! shown as `xxxxx-xxxxx`, kept only as HMAC-SHA256 under a key derived from the master secret
//! and bound to the user id.

use hmac::{KeyInit as _, Mac as _};

/// The letters of a code: no `0`/`o`, `1`/`l`/`i`.
const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789_";
/// Characters per code.
const LEN: usize = 10;

/// A new backup code as shown (`xxxxx-xxxxx`).
///
/// # Panics
/// If the operating system cannot provide random bytes.
#[must_use]
pub fn generate() -> String {
    let mut bytes = [0u8; LEN];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    // 31 letters are used (the `_` is never picked): reject and redraw a byte past them.
    let mut out = String::with_capacity(LEN + 1);
    let mut i = 0;
    while out.len() < LEN + 1 {
        if out.len() == 5 {
            out.push('-');
            continue;
        }
        let byte = if i < bytes.len() {
            bytes[i]
        } else {
            let mut one = [0u8; 1];
            getrandom::fill(&mut one)
                .expect("the operating system's random number generator failed");
            one[0]
        };
        i += 1;
        let index = usize::from(byte & 31);
        if index < 31 {
            out.push(char::from(ALPHABET[index]));
        }
    }
    out
}

/// A typed code in its stored form (lower case, without spaces or dashes), if it has the
/// shape of one.
#[must_use]
pub fn normalize(typed: &str) -> Option<String> {
    let text: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    (text.len() == LEN && text.bytes().all(|b| ALPHABET[..31].contains(&b))).then_some(text)
}

/// The keyed hash stored for `normalized` (from [`normalize`]) of `user_id`.
#[must_use]
pub fn hash(key: &[u8; 32], user_id: &str, normalized: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(b"latchkey backup code v1\0");
    mac.update(user_id.as_bytes());
    mac.update(b"\0");
    mac.update(normalized.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_shape_and_normalize_back() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let code = generate();
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            let normalized = normalize(&code).unwrap();
            assert_eq!(normalized, code.replace('-', ""));
            assert_eq!(
                normalize(&format!(" {} ", code.to_uppercase())),
                Some(normalized)
            );
            assert!(seen.insert(code));
        }
        assert_eq!(normalize("123456"), None);
        assert_eq!(normalize("abcde-fghi0"), None);
        assert_eq!(normalize("abcde_fghij"), None);
    }

    #[test]
    fn hashes_are_keyed_and_bound_to_the_user() {
        let a = hash(&[1; 32], "user_a", "abcdefghjk");
        assert_eq!(a, hash(&[1; 32], "user_a", "abcdefghjk"));
        assert_ne!(a, hash(&[2; 32], "user_a", "abcdefghjk"));
        assert_ne!(a, hash(&[1; 32], "user_b", "abcdefghjk"));
    }
}
