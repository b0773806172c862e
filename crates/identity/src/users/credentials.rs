//! What signing in needs from an account: its password hash and state, found by address.

use latchkey_store::{Row as _, StoreError, Tx};

/// What sign-in needs to know about the account behind an email address.
#[derive(Clone)]
pub struct Credentials {
    pub user_id: String,
    pub password_hash: Option<String>,
    pub banned: bool,
    /// The address signed in with, as stored.
    pub email_address_id: String,
    pub email_address: String,
    pub email_verified: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user_id", &self.user_id)
            .field("banned", &self.banned)
            .finish_non_exhaustive()
    }
}

/// The account an email address (any case) signs in to: a verified address, or the primary
/// address of an account that has not verified it yet (it signs in to verify it). An address
/// added but not yet verified signs in to nothing.
///
/// # Errors
/// Database failures.
pub async fn credentials_by_email(
    tx: &mut Tx,
    normalized_email: &str,
) -> Result<Option<Credentials>, StoreError> {
    let q = tx
        .query(
            "SELECT u.id, u.password_hash, u.banned_at, e.id AS email_id, e.email_address, \
                 e.verification_status FROM identity_users u \
             JOIN identity_email_addresses e ON e.user_id = u.id WHERE e.email_normalized = $1 \
               AND (e.verification_status = 'verified' OR u.primary_email_address_id = e.id)",
        )
        .bind(normalized_email);
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(None);
    };
    Ok(Some(Credentials {
        user_id: row.try_get("id")?,
        password_hash: row.try_get("password_hash")?,
        banned: row.try_get::<Option<i64>, _>("banned_at")?.is_some(),
        email_address_id: row.try_get("email_id")?,
        email_address: row.try_get("email_address")?,
        email_verified: row.try_get::<String, _>("verification_status")? == "verified",
    }))
}

/// The stored password hash of a user.
///
/// # Errors
/// Database failures.
pub async fn password_hash(tx: &mut Tx, user_id: &str) -> Result<Option<String>, StoreError> {
    let q = tx
        .query("SELECT password_hash FROM identity_users WHERE id = $1")
        .bind(user_id);
    Ok(match tx.fetch_optional(q).await? {
        Some(row) => row.try_get("password_hash")?,
        None => None,
    })
}

/// Replaces the stored hash `old` with `new` (the same password, hashed anew), unless the
/// password changed meanwhile; answers whether it did. Not a change of the account: no
/// timestamp moves and no event is due.
///
/// # Errors
/// Database failures.
pub async fn replace_password_hash(
    tx: &mut Tx,
    user_id: &str,
    old: &str,
    new: &str,
) -> Result<bool, StoreError> {
    let q = tx
        .query("UPDATE identity_users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
        .bind(user_id)
        .bind(old)
        .bind(new);
    Ok(tx.execute(q).await? == 1)
}
