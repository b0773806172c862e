//! The pending second step of a sign-in: written when the first factor (password or mailed
//! code) was right on an account with a second factor, held by the browser in an `HttpOnly`
//! cookie (`latchkey_mfa`), spent when the second factor is right. No session exists before.
//!
//! Each attempt takes its number in one atomic `UPDATE … WHERE attempts < 5 … RETURNING`
//! before the code is checked, so parallel guesses cannot exceed the limit.

use latchkey_store::{DbRow, Row as _, StoreError, Tx};

use crate::cookie_token::{CookieToken, Kind};

/// Wrong codes a pending second step allows.
pub const MAX_ATTEMPTS: i64 = 5;
/// How long a pending second step waits for its code.
pub const LIFETIME_MS: i64 = 10 * 60 * 1000;
/// The cookie that ties a pending second step to its browser.
pub const COOKIE: &str = "latchkey_mfa";

/// Marks the token of a pending second step's cookie.
#[derive(Debug)]
pub enum Challenge {}

impl Kind for Challenge {
    const NAME: &'static str = "ChallengeToken";
}

/// The value of a `latchkey_mfa` cookie. `Debug` shows nothing.
pub type ChallengeToken = CookieToken<Challenge>;

/// A pending second step, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub user_id: String,
    pub redirect_url: String,
    pub attempts: i64,
    pub first_factor_at: i64,
    pub expire_at: i64,
    pub consumed_at: Option<i64>,
}

impl Pending {
    /// Attempts left.
    #[must_use]
    pub fn attempts_left(&self) -> i64 {
        (MAX_ATTEMPTS - self.attempts).max(0)
    }
}

/// Why an attempt was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    Used,
    Expired,
    TooManyAttempts,
}

const COLUMNS: &str = "user_id, redirect_url, attempts, first_factor_at, expire_at, consumed_at";

fn from_row(row: &DbRow) -> Result<Pending, StoreError> {
    Ok(Pending {
        user_id: row.try_get("user_id")?,
        redirect_url: row.try_get("redirect_url")?,
        attempts: row.try_get("attempts")?,
        first_factor_at: row.try_get("first_factor_at")?,
        expire_at: row.try_get("expire_at")?,
        consumed_at: row.try_get("consumed_at")?,
    })
}

/// Writes a pending second step for `user_id`; returns the cookie's token.
///
/// # Errors
/// Database failures.
pub async fn create(
    tx: &mut Tx,
    user_id: &str,
    redirect_url: &str,
    first_factor_at: i64,
    now: i64,
) -> Result<ChallengeToken, StoreError> {
    let token = ChallengeToken::generate();
    let q = tx
        .query(
            "INSERT INTO identity_mfa_challenges (token_hash, user_id, redirect_url, attempts, \
                 first_factor_at, expire_at, consumed_at, created_at) \
             VALUES ($1, $2, $3, 0, $4, $5, NULL, $6)",
        )
        .bind(token.hash())
        .bind(user_id)
        .bind(redirect_url)
        .bind(first_factor_at)
        .bind(now + LIFETIME_MS)
        .bind(now);
    tx.execute(q).await?;
    Ok(token)
}

/// The pending second step behind a cookie, whatever its state.
///
/// # Errors
/// Database failures.
pub async fn find(tx: &mut Tx, token: &ChallengeToken) -> Result<Option<Pending>, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT {COLUMNS} FROM identity_mfa_challenges WHERE token_hash = $1"
        ))
        .bind(token.hash());
    tx.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Takes the next attempt, if one is left.
///
/// # Errors
/// Database failures.
pub async fn take_attempt(
    tx: &mut Tx,
    token: &ChallengeToken,
    now: i64,
) -> Result<Result<Pending, Refused>, StoreError> {
    let q = tx
        .query_owned(format!(
            "UPDATE identity_mfa_challenges SET attempts = attempts + 1 \
             WHERE token_hash = $1 AND consumed_at IS NULL AND expire_at > $2 AND attempts < $3 \
             RETURNING {COLUMNS}"
        ))
        .bind(token.hash())
        .bind(now)
        .bind(MAX_ATTEMPTS);
    if let Some(row) = tx.fetch_optional(q).await? {
        return Ok(Ok(from_row(&row)?));
    }
    Ok(Err(match find(tx, token).await? {
        None => Refused::NotFound,
        Some(p) if p.consumed_at.is_some() => Refused::Used,
        Some(p) if p.expire_at <= now => Refused::Expired,
        Some(_) => Refused::TooManyAttempts,
    }))
}

/// Spends the pending second step; `false` if another request already did.
///
/// # Errors
/// Database failures.
pub async fn consume(tx: &mut Tx, token: &ChallengeToken, now: i64) -> Result<bool, StoreError> {
    let q = tx
        .query("UPDATE identity_mfa_challenges SET consumed_at = $2 WHERE token_hash = $1 AND consumed_at IS NULL")
        .bind(token.hash())
        .bind(now);
    Ok(tx.execute(q).await? == 1)
}

/// Deletes pending second steps that expired before `before` (the hourly sweep).
///
/// # Errors
/// Database failures.
pub async fn sweep(tx: &mut Tx, before: i64) -> Result<u64, StoreError> {
    let q = tx
        .query("DELETE FROM identity_mfa_challenges WHERE expire_at < $1")
        .bind(before);
    tx.execute(q).await
}
