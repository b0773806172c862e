//! Short-lived caches on the request path: verified tokens (for their remaining life) and app
//! user rows (for a couple of seconds, dropped at once when a webhook changes the user here).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use latchkey_protocol::jwt::SessionClaims;
use sha2::{Digest as _, Sha256};

use crate::users::AppUser;

/// Entries kept at most; when full, expired entries go, and if that is not enough, all do.
const CAPACITY: usize = 10_000;
/// The clock skew tokens get (Clerk's 5 s).
const SKEW_MS: i64 = 5_000;

/// Tokens already verified, by SHA-256 of the token, until they expire. A session token is
/// sent with every request of a browser for up to a minute; verifying its RSA signature once
/// is enough, and an entry can never outlive the token.
#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], SessionClaims>>,
}

impl TokenCache {
    pub(crate) fn get(&self, token: &str, now_ms: i64) -> Option<SessionClaims> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let claims = entries.get(&key)?;
        // Re-check the time: an entry is only as good as the token's own window.
        let live = claims.exp.saturating_mul(1000) > now_ms - SKEW_MS
            && claims
                .nbf
                .is_none_or(|nbf| nbf.saturating_mul(1000) <= now_ms + SKEW_MS);
        live.then(|| claims.clone())
    }

    pub(crate) fn put(&self, token: &str, claims: &SessionClaims, now_ms: i64) {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.retain(|_, c| c.exp.saturating_mul(1000) > now_ms - SKEW_MS);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, claims.clone());
    }
}

/// App rows by `clerk_user_id`, for [`USER_TTL`].
#[derive(Default)]
pub(crate) struct UserCache {
    entries: Mutex<HashMap<String, (AppUser, Instant)>>,
}

/// How long a cached row is used without reading the database again. Within this process a
/// webhook that changes the user drops the entry at once; other instances see the change
/// within this long.
pub(crate) const USER_TTL: Duration = Duration::from_secs(2);

impl UserCache {
    pub(crate) fn get(&self, clerk_user_id: &str) -> Option<AppUser> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(clerk_user_id)
            .filter(|(_, at)| at.elapsed() < USER_TTL)
            .map(|(user, _)| user.clone())
    }

    pub(crate) fn put(&self, user: &AppUser) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, at)| at.elapsed() < USER_TTL);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(user.clerk_user_id.clone(), (user.clone(), Instant::now()));
    }

    pub(crate) fn forget(&self, clerk_user_id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(clerk_user_id);
    }
}
