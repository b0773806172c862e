//! Passwords: the rules a new one must pass, and argon2id hashing and verification.
//!
//! This module owns the password policy (8 to 256 characters, not among the 10,000 most common
//! passwords, not the user's own email or username), the hash format (argon2id with OWASP's
//! parameters, as a PHC string) and the threads that compute hashes. It must not touch the
//! database, know about users or sessions, or run argon2 on the async runtime: a burst of
//! sign-ins must wait in [`PasswordHasher`]'s bounded queue (or be told [`HashError::Busy`]),
//! not starve the threads that serve every other request.
//!
//! What callers must do with the results: show a [`PolicyError`]'s message on the sign-up or
//! change-password form; answer every failed sign-in, whether the account is unknown, has no
//! password or the password is wrong, with one and the same message, after calling
//! [`PasswordHasher::verify`] with `None` for the unknown account so it costs the same time;
//! answer [`HashError::Busy`] with 503; and re-hash on a successful sign-in when
//! [`needs_rehash`] says the stored parameters are out of date.

pub mod foreign;
mod hash;
mod hasher;
mod policy;

pub use hash::{HashError, M_COST_KIB, P_COST, PasswordHash, T_COST, needs_rehash};
pub use hasher::{PasswordHasher, QUEUE_PER_WORKER};
pub use policy::{MAX_LENGTH, MIN_LENGTH, PolicyError, check_new_password};

/// A password as typed by a person. Its `Debug` prints nothing of it, so it cannot end up in
/// a log line through a derived `Debug` of a form or a request. `Default` is the empty
/// password, for forms that derive `Default`; the policy refuses it.
#[derive(Clone, Default)]
pub struct Password(String);

impl Password {
    /// Wraps the password exactly as submitted: no trimming, no normalisation, because the same
    /// bytes must hash the same way at sign-up and at every sign-in.
    #[must_use]
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password itself, for the policy check and for hashing. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self(password)
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(redacted)")
    }
}

#[cfg(test)]
mod tests;

/// `From<HashError>` for a use case's error that has `Busy` and `Internal` variants: a full
/// queue or a stopping hasher is `Busy` (worth a "try again"), anything else is logged and
/// `Internal`.
macro_rules! busy_or_internal {
    ($error:ty) => {
        impl From<$crate::passwords::HashError> for $error {
            fn from(error: $crate::passwords::HashError) -> Self {
                if $crate::passwords::busy(&error) {
                    Self::Busy
                } else {
                    Self::Internal
                }
            }
        }
    };
}
pub(crate) use busy_or_internal;

/// Whether a hashing failure is only the hasher being busy or stopping (worth a "try again"),
/// logging any other failure: a corrupt stored hash or a broken worker is a bug to look at.
pub(crate) fn busy(error: &HashError) -> bool {
    if matches!(error, HashError::Busy | HashError::Stopped) {
        true
    } else {
        tracing::error!(error = %error, "password hashing failed");
        false
    }
}
