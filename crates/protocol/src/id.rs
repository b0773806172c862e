//! Prefixed, sortable, collision-resistant identifiers in Clerk's style (`user_2g7np7Hrk0SN6kj5EDMLDaKNL0S`).
//!
//! An id is a prefix, `_`, and 27 base62 characters encoding 20 bytes: 6 bytes of Unix
//! milliseconds (big-endian) followed by 14 random bytes (112 bits). The fixed width and an
//! alphabet in ASCII order make ids sort by creation time as plain strings.

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RAW_LEN: usize = 20;
/// Number of base62 characters after the prefix; 62^27 > 2^160.
pub const ENCODED_LEN: usize = 27;

/// A new id with `prefix` (without the trailing `_`), for the current time.
///
/// # Panics
/// If the operating system cannot provide random bytes, which leaves no safe way to continue.
#[must_use]
pub fn new_id(prefix: &str) -> String {
    let mut random = [0u8; RAW_LEN - 6];
    getrandom::fill(&mut random).expect("the operating system's random number generator failed");
    encode(prefix, crate::time::now_ms(), &random)
}

/// The id for an explicit time and random part; [`new_id`] is what callers normally want.
#[must_use]
pub fn encode(prefix: &str, unix_ms: i64, random: &[u8; RAW_LEN - 6]) -> String {
    let mut raw = [0u8; RAW_LEN];
    let ms = u64::try_from(unix_ms.max(0)).unwrap_or(0).to_be_bytes();
    raw[..6].copy_from_slice(&ms[2..]);
    raw[6..].copy_from_slice(random);

    // Repeated division of the big-endian number by 62, least significant digit first.
    let mut digits = [0u8; ENCODED_LEN];
    let mut number = raw;
    for digit in digits.iter_mut().rev() {
        let mut remainder: u32 = 0;
        for byte in &mut number {
            let acc = (remainder << 8) | u32::from(*byte);
            *byte = u8::try_from(acc / 62).unwrap_or(0);
            remainder = acc % 62;
        }
        *digit = ALPHABET[remainder as usize];
    }

    let mut id = String::with_capacity(prefix.len() + 1 + ENCODED_LEN);
    id.push_str(prefix);
    id.push('_');
    id.extend(digits.iter().map(|&d| char::from(d)));
    id
}

/// Whether `id` looks like an id with `prefix`: the prefix, `_`, then 1 to 64 ASCII alphanumerics.
/// Clerk's own ids (27 characters) and ours both pass; anything that could smuggle markup,
/// whitespace or SQL-looking text does not.
#[must_use]
pub fn has_prefix(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|tail| {
            (1..=64).contains(&tail.len()) && tail.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_fixed_width() {
        let id = new_id("user");
        assert!(id.starts_with("user_"));
        assert_eq!(id.len(), "user_".len() + ENCODED_LEN);
        assert!(has_prefix(&id, "user"));
        assert!(!has_prefix(&id, "sess"));
    }

    #[test]
    fn ids_sort_by_time() {
        let early = encode("x", 1_000, &[0xff; 14]);
        let late = encode("x", 1_001, &[0x00; 14]);
        assert!(early < late, "{early} should sort before {late}");
    }

    #[test]
    fn extreme_values_encode_to_full_width() {
        assert_eq!(
            encode("x", 0, &[0; 14]),
            format!("x_{}", "0".repeat(ENCODED_LEN))
        );
        let max = encode("x", (1 << 48) - 1, &[0xff; 14]);
        assert_eq!(max.len(), 2 + ENCODED_LEN);
    }

    #[test]
    fn ids_do_not_collide() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| new_id("t")).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn prefix_check_refuses_odd_characters() {
        assert!(!has_prefix("user_abc def", "user"));
        assert!(!has_prefix("user_", "user"));
        assert!(!has_prefix("user_<script>", "user"));
        assert!(has_prefix("user_2g7np7Hrk0SN6kj5EDMLDaKNL0S", "user"));
    }
}
