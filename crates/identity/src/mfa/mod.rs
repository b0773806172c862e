//! Second factors and their records: an authenticator app's secret (sealed under the master
//! secret), single-use backup codes (keyed hashes), the pending second step of a sign-in
//! (`challenge`), and when a session last proved each factor (step-up and the token's `fva`).
//!
//! Every check that could be raced is one atomic statement: a TOTP step is spent by an
//! `UPDATE … WHERE last_used_step < $step`, a backup code by an `UPDATE … WHERE used_at IS
//! NULL`, so two requests cannot both use one code.

pub mod backup;
pub mod challenge;
pub mod totp;

use latchkey_store::{Row as _, StoreError, Tx};

use crate::secrets::{MasterKey, SecretError};
pub use totp::TotpSecret;

/// Backup codes made at enrolment and on regeneration.
pub const BACKUP_CODES: usize = 10;
/// How long a step-up lasts: a factor proved within this is recent enough for sensitive
/// changes (Clerk's "strict" reverification level).
pub const STEP_UP_MS: i64 = 10 * 60 * 1000;

/// The master-secret purpose a user's TOTP secret is sealed under (binds it to the user).
fn seal_purpose(user_id: &str) -> String {
    format!("totp secret\0{user_id}")
}

/// Seals a secret for `user_id`.
#[must_use]
pub fn seal(master: &MasterKey, user_id: &str, secret: &TotpSecret) -> String {
    master.seal(&seal_purpose(user_id), secret.expose())
}

/// Opens a secret sealed for `user_id`.
///
/// # Errors
/// [`SecretError::CannotOpen`] under another master secret or after tampering.
pub fn open(master: &MasterKey, user_id: &str, sealed: &str) -> Result<TotpSecret, SecretError> {
    master
        .open(&seal_purpose(user_id), sealed)
        .map(TotpSecret::from_bytes)
}

/// An account's authenticator app, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRow {
    pub secret_sealed: String,
    /// `None` while enrolment waits for its first code.
    pub confirmed_at: Option<i64>,
    pub last_used_step: Option<i64>,
}

/// The account's authenticator app row, confirmed or not.
///
/// # Errors
/// Database failures.
pub async fn totp_of(tx: &mut Tx, user_id: &str) -> Result<Option<TotpRow>, StoreError> {
    let q = tx
        .query("SELECT secret_sealed, confirmed_at, last_used_step FROM identity_totp WHERE user_id = $1")
        .bind(user_id);
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(None);
    };
    Ok(Some(TotpRow {
        secret_sealed: row.try_get("secret_sealed")?,
        confirmed_at: row.try_get("confirmed_at")?,
        last_used_step: row.try_get("last_used_step")?,
    }))
}

/// Whether the account has a confirmed second factor (and so a second step at sign-in).
///
/// # Errors
/// Database failures.
pub async fn has_second_factor(tx: &mut Tx, user_id: &str) -> Result<bool, StoreError> {
    Ok(totp_of(tx, user_id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some()))
}

/// Stores a new, unconfirmed secret, replacing an earlier unconfirmed one. Returns `false`
/// (and changes nothing) if the account already has a confirmed app.
///
/// # Errors
/// Database failures.
pub async fn put_pending_totp(
    tx: &mut Tx,
    user_id: &str,
    sealed: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let q = tx
        .query(
            "INSERT INTO identity_totp (user_id, secret_sealed, confirmed_at, last_used_step, created_at) \
             VALUES ($1, $2, NULL, NULL, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret_sealed = $2, last_used_step = NULL, created_at = $3 \
             WHERE identity_totp.confirmed_at IS NULL",
        )
        .bind(user_id)
        .bind(sealed)
        .bind(now);
    Ok(tx.execute(q).await? == 1)
}

/// Confirms the pending secret with the step of its first code (spent: it cannot be used
/// again). `false` if there was nothing pending.
///
/// # Errors
/// Database failures.
pub async fn confirm_totp(
    tx: &mut Tx,
    user_id: &str,
    step: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let q = tx
        .query(
            "UPDATE identity_totp SET confirmed_at = $3, last_used_step = $2 \
             WHERE user_id = $1 AND confirmed_at IS NULL",
        )
        .bind(user_id)
        .bind(step)
        .bind(now);
    Ok(tx.execute(q).await? == 1)
}

/// Spends `step` of a confirmed app: `false` if a code of this step (or a later one) was
/// already accepted, so a code is good once.
///
/// # Errors
/// Database failures.
pub async fn spend_step(tx: &mut Tx, user_id: &str, step: i64) -> Result<bool, StoreError> {
    let q = tx
        .query(
            "UPDATE identity_totp SET last_used_step = $2 \
             WHERE user_id = $1 AND confirmed_at IS NOT NULL \
               AND (last_used_step IS NULL OR last_used_step < $2)",
        )
        .bind(user_id)
        .bind(step);
    Ok(tx.execute(q).await? == 1)
}

/// Replaces the account's backup codes with `hashes`.
///
/// # Errors
/// Database failures.
pub async fn replace_backup_codes(
    tx: &mut Tx,
    user_id: &str,
    hashes: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let q = tx
        .query("DELETE FROM identity_backup_codes WHERE user_id = $1")
        .bind(user_id);
    tx.execute(q).await?;
    for hash in hashes {
        let q = tx
            .query("INSERT INTO identity_backup_codes (user_id, code_hash, used_at, created_at) VALUES ($1, $2, NULL, $3)")
            .bind(user_id)
            .bind(hash.as_str())
            .bind(now);
        tx.execute(q).await?;
    }
    Ok(())
}

/// Spends the unused backup code with `hash`: `false` if there is none (wrong, or used).
///
/// # Errors
/// Database failures.
pub async fn spend_backup_code(
    tx: &mut Tx,
    user_id: &str,
    hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let q = tx
        .query(
            "UPDATE identity_backup_codes SET used_at = $3 \
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now);
    Ok(tx.execute(q).await? == 1)
}

/// Unused backup codes of the account.
///
/// # Errors
/// Database failures.
pub async fn backup_codes_left(tx: &mut Tx, user_id: &str) -> Result<i64, StoreError> {
    let q = tx
        .query("SELECT count(*) AS n FROM identity_backup_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id);
    Ok(tx.fetch_one(q).await?.try_get("n")?)
}

/// Removes every second factor of the account (app, backup codes, pending second steps).
/// Returns whether it had a confirmed app or backup codes.
///
/// # Errors
/// Database failures.
pub async fn remove_all(tx: &mut Tx, user_id: &str) -> Result<bool, StoreError> {
    let mut removed = 0;
    for sql in [
        "DELETE FROM identity_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL",
        "DELETE FROM identity_backup_codes WHERE user_id = $1",
    ] {
        let q = tx.query(sql).bind(user_id);
        removed += tx.execute(q).await?;
    }
    for sql in [
        "DELETE FROM identity_totp WHERE user_id = $1",
        "DELETE FROM identity_mfa_challenges WHERE user_id = $1",
    ] {
        let q = tx.query(sql).bind(user_id);
        tx.execute(q).await?;
    }
    Ok(removed > 0)
}

/// Which factor a session's holder proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proved {
    First,
    Second,
}

/// Records that the holder of `session_id` proved a factor at `now` (step-up).
///
/// # Errors
/// Database failures.
pub async fn mark_session(
    tx: &mut Tx,
    session_id: &str,
    proved: Proved,
    now: i64,
) -> Result<(), StoreError> {
    let sql = match proved {
        Proved::First => "UPDATE identity_sessions SET first_factor_at = $2 WHERE id = $1",
        Proved::Second => "UPDATE identity_sessions SET second_factor_at = $2 WHERE id = $1",
    };
    let q = tx.query(sql).bind(session_id).bind(now);
    tx.execute(q).await?;
    Ok(())
}
