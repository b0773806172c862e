//! A user's email addresses beyond the one they signed up with: adding one, verifying it with a
//! code, making it primary, removing it, and releasing an address someone added but never
//! verified. Each function runs inside the caller's transaction; changes the user can see move
//! the user's `updated_at` forward (so the `user.updated` written with them is the newest).

use latchkey_store::{Row as _, StoreError, Tx};

use super::{BUMP_UPDATED_AT, EMAIL_PREFIX, EmailRecord, validate};

/// Strategy of addresses verified by a mailed code.
pub const EMAIL_CODE: &str = "email_code";

/// An address and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub email_address_id: String,
    /// The address as stored.
    pub email_address: String,
    pub user_id: String,
    pub verified: bool,
    pub primary: bool,
}

/// Who holds `normalized` (any case), if anyone.
///
/// # Errors
/// Database failures.
pub async fn owner(tx: &mut Tx, normalized: &str) -> Result<Option<Owner>, StoreError> {
    let q = tx
        .query(
            "SELECT e.id, e.user_id, e.email_address, e.verification_status, u.primary_email_address_id \
             FROM identity_email_addresses e JOIN identity_users u ON u.id = e.user_id \
             WHERE e.email_normalized = $1",
        )
        .bind(normalized);
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(None);
    };
    let id: String = row.try_get("id")?;
    let primary: Option<String> = row.try_get("primary_email_address_id")?;
    Ok(Some(Owner {
        primary: primary.as_deref() == Some(id.as_str()),
        verified: row.try_get::<String, _>("verification_status")? == "verified",
        user_id: row.try_get("user_id")?,
        email_address: row.try_get("email_address")?,
        email_address_id: id,
    }))
}

async fn bump_user(tx: &mut Tx, user_id: &str, now: i64) -> Result<(), StoreError> {
    let q = tx
        .query_owned(format!(
            "UPDATE identity_users SET {BUMP_UPDATED_AT} WHERE id = $2"
        ))
        .bind(now)
        .bind(user_id);
    tx.execute(q).await?;
    Ok(())
}

/// Adds an unverified address to a user, its code expiring at `expire_at`. `None` if the
/// address is taken (the transaction stays usable).
///
/// # Errors
/// Database failures.
pub async fn add(
    tx: &mut Tx,
    user_id: &str,
    email: &validate::Email,
    expire_at: i64,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let id = latchkey_protocol::id::new_id(EMAIL_PREFIX);
    let q = tx
        .query(
            "INSERT INTO identity_email_addresses (id, user_id, email_address, email_normalized, \
                 verification_status, verification_strategy, verification_attempts, \
                 verification_expire_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'unverified', $5, 0, $6, $7, $7) \
             ON CONFLICT (email_normalized) DO NOTHING RETURNING id",
        )
        .bind(&id)
        .bind(user_id)
        .bind(&email.address)
        .bind(&email.normalized)
        .bind(EMAIL_CODE)
        .bind(expire_at)
        .bind(now);
    if tx.fetch_optional(q).await?.is_none() {
        return Ok(None);
    }
    bump_user(tx, user_id, now).await?;
    Ok(Some(id))
}

/// Adds an address to a user as another system knew it, verified (`strategy` names how) or
/// not; `false` if the address is taken (the transaction stays usable).
///
/// # Errors
/// Database failures.
pub async fn insert_known(
    tx: &mut Tx,
    user_id: &str,
    email: &validate::Email,
    verified_by: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let q = tx
        .query(
            "INSERT INTO identity_email_addresses (id, user_id, email_address, email_normalized, \
                 verification_status, verification_strategy, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (email_normalized) DO NOTHING RETURNING id",
        )
        .bind(latchkey_protocol::id::new_id(EMAIL_PREFIX))
        .bind(user_id)
        .bind(&email.address)
        .bind(&email.normalized)
        .bind(if verified_by.is_some() {
            "verified"
        } else {
            "unverified"
        })
        .bind(verified_by)
        .bind(now);
    if tx.fetch_optional(q).await?.is_none() {
        return Ok(false);
    }
    bump_user(tx, user_id, now).await?;
    Ok(true)
}

/// Records that a code is on its way to an unverified address (a new one, or one sent again):
/// strategy `email_code`, no attempts yet, and the code's expiry. Not a change to the user:
/// `updated_at` stays.
///
/// # Errors
/// Database failures.
pub async fn code_sent(tx: &mut Tx, email_id: &str, expire_at: i64) -> Result<(), StoreError> {
    let q = tx
        .query(
            "UPDATE identity_email_addresses SET verification_strategy = $2, verification_attempts = 0, \
                 verification_expire_at = $3 WHERE id = $1 AND verification_status = 'unverified'",
        )
        .bind(email_id)
        .bind(EMAIL_CODE)
        .bind(expire_at);
    tx.execute(q).await?;
    Ok(())
}

/// Mirrors a verification's attempt count onto its unverified address.
///
/// # Errors
/// Database failures.
pub async fn record_attempts(tx: &mut Tx, email_id: &str, attempts: i64) -> Result<(), StoreError> {
    let q = tx
        .query(
            "UPDATE identity_email_addresses SET verification_attempts = $2 \
             WHERE id = $1 AND verification_status = 'unverified'",
        )
        .bind(email_id)
        .bind(attempts);
    tx.execute(q).await?;
    Ok(())
}

/// Marks an address verified by a code after `attempts` attempts. Returns the owner's id if it
/// changed (it was unverified), `None` if it was already verified or is gone.
///
/// # Errors
/// Database failures.
pub async fn mark_verified(
    tx: &mut Tx,
    email_id: &str,
    attempts: i64,
    now: i64,
) -> Result<Option<String>, StoreError> {
    verify(tx, email_id, EMAIL_CODE, Some(attempts), now).await
}

/// Marks an address verified as another system had verified it (`strategy` says which). Same
/// answer as [`mark_verified`].
///
/// # Errors
/// Database failures.
pub async fn mark_verified_by(
    tx: &mut Tx,
    email_id: &str,
    strategy: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    verify(tx, email_id, strategy, None, now).await
}

async fn verify(
    tx: &mut Tx,
    email_id: &str,
    strategy: &str,
    attempts: Option<i64>,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let q = tx
        .query(
            "UPDATE identity_email_addresses SET verification_status = 'verified', \
                 verification_strategy = $2, \
                 verification_attempts = COALESCE($3, verification_attempts), updated_at = $4 \
             WHERE id = $1 AND verification_status = 'unverified' RETURNING user_id",
        )
        .bind(email_id)
        .bind(strategy)
        .bind(attempts)
        .bind(now);
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(None);
    };
    let user_id: String = row.try_get("user_id")?;
    bump_user(tx, &user_id, now).await?;
    Ok(Some(user_id))
}

/// What [`set_primary`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Primary {
    /// The address is now primary; `previous` is the address that was (text).
    Changed { previous: Option<String> },
    /// It already was.
    Unchanged,
    /// It is not a verified address of this user.
    Refused,
}

/// Makes a verified address of the user its primary one.
///
/// # Errors
/// Database failures.
pub async fn set_primary(
    tx: &mut Tx,
    user_id: &str,
    email_id: &str,
    now: i64,
) -> Result<Primary, StoreError> {
    let q = tx
        .query(
            "SELECT u.primary_email_address_id, e.email_address FROM identity_users u \
             LEFT JOIN identity_email_addresses e ON e.id = u.primary_email_address_id \
             WHERE u.id = $1",
        )
        .bind(user_id);
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(Primary::Refused);
    };
    let previous_id: Option<String> = row.try_get("primary_email_address_id")?;
    let previous: Option<String> = row.try_get("email_address")?;
    let q = tx
        .query_owned(format!(
            "UPDATE identity_users SET primary_email_address_id = $3, {BUMP_UPDATED_AT} \
             WHERE id = $2 AND EXISTS (SELECT 1 FROM identity_email_addresses \
                 WHERE id = $3 AND user_id = $2 AND verification_status = 'verified')"
        ))
        .bind(now)
        .bind(user_id)
        .bind(email_id);
    if previous_id.as_deref() == Some(email_id) {
        return Ok(Primary::Unchanged);
    }
    Ok(if tx.execute(q).await? == 1 {
        Primary::Changed { previous }
    } else {
        Primary::Refused
    })
}

/// Removes an address of the user that is not its primary one. Returns whether it did.
///
/// # Errors
/// Database failures.
pub async fn remove(
    tx: &mut Tx,
    user_id: &str,
    email_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let q = tx
        .query(
            "DELETE FROM identity_email_addresses WHERE id = $1 AND user_id = $2 \
               AND id NOT IN (SELECT primary_email_address_id FROM identity_users \
                              WHERE id = $2 AND primary_email_address_id IS NOT NULL)",
        )
        .bind(email_id)
        .bind(user_id);
    if tx.execute(q).await? == 0 {
        return Ok(false);
    }
    bump_user(tx, user_id, now).await?;
    Ok(true)
}

/// Releases `normalized` if someone added it to their account but never verified it and its
/// code has expired: an address cannot be held hostage by typing it. Returns the holder's id
/// (whose `user.updated` the caller writes) and the released address's id.
///
/// # Errors
/// Database failures.
pub async fn release_if_stale(
    tx: &mut Tx,
    normalized: &str,
    now: i64,
) -> Result<Option<(String, String)>, StoreError> {
    let q = tx
        .query(
            "DELETE FROM identity_email_addresses WHERE email_normalized = $1 \
               AND verification_status = 'unverified' AND verification_expire_at < $2 \
               AND id NOT IN (SELECT primary_email_address_id FROM identity_users \
                              WHERE primary_email_address_id IS NOT NULL) \
             RETURNING id, user_id",
        )
        .bind(normalized)
        .bind(now);
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(None);
    };
    let user_id: String = row.try_get("user_id")?;
    bump_user(tx, &user_id, now).await?;
    Ok(Some((user_id, row.try_get("id")?)))
}

/// Email addresses of several users, by user id.
pub(crate) async fn emails_of(
    tx: &mut Tx,
    user_ids: &[&str],
) -> Result<std::collections::HashMap<String, Vec<EmailRecord>>, StoreError> {
    let mut by_user: std::collections::HashMap<String, Vec<EmailRecord>> =
        std::collections::HashMap::new();
    for chunk in user_ids.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let mut q = tx.query_owned(format!(
            "SELECT id, user_id, email_address, verification_status, verification_strategy, \
                 verification_attempts, verification_expire_at, created_at, updated_at \
             FROM identity_email_addresses WHERE user_id IN ({}) ORDER BY created_at, id",
            placeholders.join(", ")
        ));
        for id in chunk {
            q = q.bind(*id);
        }
        for row in tx.fetch_all(q).await? {
            let user_id: String = row.try_get("user_id")?;
            by_user.entry(user_id).or_default().push(EmailRecord {
                id: row.try_get("id")?,
                email_address: row.try_get("email_address")?,
                verification_status: row.try_get("verification_status")?,
                verification_strategy: row.try_get("verification_strategy")?,
                verification_attempts: row.try_get("verification_attempts")?,
                verification_expire_at: row.try_get("verification_expire_at")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            });
        }
    }
    Ok(by_user)
}
