//! What a new password must satisfy, following NIST SP 800-63B: a length range, and not being
//! a known-common password or the user's own identifier. No composition rules (a digit, a
//! symbol…): NIST advises against them, as they make passwords harder to remember, not to guess.
//!
//! Only new passwords (sign-up, change, reset) are checked; sign-in never is, so tightening the
//! policy never locks anyone out.

use std::collections::HashSet;
use std::sync::LazyLock;

/// Fewest characters (Unicode scalar values) a password may have.
pub const MIN_LENGTH: usize = 8;
/// Most characters a password may have: generous for passphrases, and a bound on the work one
/// request can ask of the hasher.
pub const MAX_LENGTH: usize = 256;

/// Identifiers shorter than this are not compared. While the rule is equality, a password that
/// short is refused as too short first; the floor is there so that empty or one-letter context
/// values can never count as personal information whatever the comparison becomes.
const MIN_CONTEXT_LENGTH: usize = 4;

/// See `data/README.md` for where the list comes from. Lower case, one per line.
const COMMON_PASSWORDS_TEXT: &str = include_str!("../../data/common-passwords-10k.txt");

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| COMMON_PASSWORDS_TEXT.lines().collect());

/// Why a new password was refused. The messages are written for the person filling in the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("Your password must be at least {min} characters long.", min = MIN_LENGTH)]
    TooShort,
    #[error("Your password must be at most {max} characters long.", max = MAX_LENGTH)]
    TooLong,
    #[error("This password is one of the most commonly used. Please choose another.")]
    TooCommon,
    #[error("Your password cannot be your email address or username. Please choose another.")]
    ContainsPersonalInfo,
}

/// Checks a new password against the policy. `context` holds what an attacker would try first
/// for this user: email address, its local part, username.
///
/// The password is taken exactly as typed: spaces count, nothing is trimmed, and length is
/// counted in characters, not bytes, so a passphrase in any script gets the same room.
///
/// # Errors
/// The first rule the password breaks, in the order of the [`PolicyError`] variants.
pub fn check_new_password(password: &str, context: &[&str]) -> Result<(), PolicyError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PolicyError::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PolicyError::TooLong);
    }
    if is_common(password) {
        return Err(PolicyError::TooCommon);
    }
    let lowered = password.to_lowercase();
    let is_personal = context
        .iter()
        .filter(|item| item.chars().count() >= MIN_CONTEXT_LENGTH)
        .any(|item| item.to_lowercase() == lowered);
    if is_personal {
        return Err(PolicyError::ContainsPersonalInfo);
    }
    Ok(())
}

/// Whether `password` is on the bundled list, ignoring ASCII case (the list is all ASCII, so
/// that is all the case there is to ignore).
fn is_common(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.to_ascii_lowercase().as_str())
}

/// The bundled list, for tests.
#[cfg(test)]
pub(super) fn common_passwords() -> &'static HashSet<&'static str> {
    &COMMON_PASSWORDS
}
