//! One-time codes mailed to people, and the data functions that keep them: what a code is for,
//! how many attempts it has had, when it expires, whether it was used.
//!
//! Codes are never stored, only an HMAC of them keyed from the master secret and bound to the
//! row's id (a bare hash of six digits would be reversed in a millisecond). Each attempt takes
//! its number in one atomic `UPDATE … WHERE attempts < 5 … RETURNING` before the code is
//! compared, so parallel guesses cannot exceed the limit; a code is spent by an `UPDATE … WHERE
//! consumed_at IS NULL` that only one transaction can win.
//!
//! A stand-in (no `email_address_id`) answers for an address that is unknown or taken. It is
//! written, counted and expired exactly like a real verification, but its code was never mailed
//! to anyone, so no answer ever tells whether an address has an account.

mod tokens;

use latchkey_store::{DbRow, Row as _, StoreError, Tx};

pub use tokens::{BrowserToken, Code};

pub const PREFIX: &str = "ver";
/// Attempts a code allows.
pub const MAX_ATTEMPTS: i64 = 5;

/// What entering a code does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Verifies a new account's address and signs it in.
    SignUp,
    /// Signs in by code alone (and verifies the address, if it was not yet).
    SignIn,
    /// Signs in an account that never verified its address, after its password was given;
    /// verifies the address.
    SignInWithPassword,
    /// Lets the holder set a new password.
    ResetPassword,
    /// Verifies an address a signed-in user added.
    AddEmail,
}

impl Purpose {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignUp => "sign_up",
            Self::SignIn => "sign_in",
            Self::SignInWithPassword => "sign_in_with_password",
            Self::ResetPassword => "reset_password",
            Self::AddEmail => "add_email",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "sign_up" => Some(Self::SignUp),
            "sign_in" => Some(Self::SignIn),
            "sign_in_with_password" => Some(Self::SignInWithPassword),
            "reset_password" => Some(Self::ResetPassword),
            "add_email" => Some(Self::AddEmail),
            _ => None,
        }
    }
}

/// A verification as stored (without its code hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub id: String,
    pub purpose: Purpose,
    pub user_id: Option<String>,
    /// The address it verifies; `None` for a stand-in.
    pub email_address_id: Option<String>,
    pub email_address: String,
    pub attempts: i64,
    pub expire_at: i64,
    pub consumed_at: Option<i64>,
    pub redirect_url: String,
    pub created_at: i64,
}

impl Verification {
    /// Attempts left before the code is spent.
    #[must_use]
    pub fn attempts_left(&self) -> i64 {
        (MAX_ATTEMPTS - self.attempts).max(0)
    }
}

const COLUMNS: &str = "id, purpose, user_id, email_address_id, email_address, attempts, expire_at, \
    consumed_at, redirect_url, created_at";

fn from_row(row: &DbRow) -> Result<Verification, StoreError> {
    let purpose: String = row.try_get("purpose")?;
    Ok(Verification {
        id: row.try_get("id")?,
        purpose: Purpose::parse(&purpose)
            .ok_or_else(|| StoreError::Invariant(format!("unknown purpose {purpose}")))?,
        user_id: row.try_get("user_id")?,
        email_address_id: row.try_get("email_address_id")?,
        email_address: row.try_get("email_address")?,
        attempts: row.try_get("attempts")?,
        expire_at: row.try_get("expire_at")?,
        consumed_at: row.try_get("consumed_at")?,
        redirect_url: row.try_get("redirect_url")?,
        created_at: row.try_get("created_at")?,
    })
}

/// What a new verification holds. `id` was minted by the caller, who keyed the code hash to it.
#[derive(Debug)]
pub struct NewVerification<'a> {
    pub id: &'a str,
    pub purpose: Purpose,
    pub token: Option<&'a BrowserToken>,
    pub user_id: Option<&'a str>,
    pub email_address_id: Option<&'a str>,
    pub email_address: &'a str,
    pub code_hash: &'a str,
    pub expire_at: i64,
    pub redirect_url: &'a str,
}

/// Writes a verification.
///
/// # Errors
/// Database failures.
pub async fn create(tx: &mut Tx, new: &NewVerification<'_>, now: i64) -> Result<(), StoreError> {
    let q = tx
        .query(
            "INSERT INTO identity_verifications (id, purpose, token_hash, user_id, email_address_id, \
                 email_address, code_hash, attempts, expire_at, consumed_at, redirect_url, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, NULL, $9, $10, $10)",
        )
        .bind(new.id)
        .bind(new.purpose.as_str())
        .bind(new.token.map(BrowserToken::hash))
        .bind(new.user_id)
        .bind(new.email_address_id)
        .bind(new.email_address)
        .bind(new.code_hash)
        .bind(new.expire_at)
        .bind(new.redirect_url)
        .bind(now);
    tx.execute(q).await?;
    Ok(())
}

/// How a verification is found: by the browser's cookie, or by id for a signed-in user.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    Token(&'a BrowserToken),
    OfUser { id: &'a str, user_id: &'a str },
}

impl Key<'_> {
    /// The `WHERE` condition (placeholders from `$first`) and its values.
    fn condition(&self, first: usize) -> (String, Vec<String>) {
        match self {
            Self::Token(token) => (format!("token_hash = ${first}"), vec![token.hash()]),
            Self::OfUser { id, user_id } => (
                format!("id = ${first} AND user_id = ${}", first + 1),
                vec![(*id).to_owned(), (*user_id).to_owned()],
            ),
        }
    }
}

/// The verification behind `key`, whatever its state.
///
/// # Errors
/// Database failures.
pub async fn find(tx: &mut Tx, key: Key<'_>) -> Result<Option<Verification>, StoreError> {
    let (condition, values) = key.condition(1);
    let mut q = tx.query_owned(format!(
        "SELECT {COLUMNS} FROM identity_verifications WHERE {condition}"
    ));
    for value in values {
        q = q.bind(value);
    }
    tx.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Why an attempt could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    Used,
    Expired,
    TooManyAttempts,
}

/// An attempt that took its number: the verification (attempts counted) and the stored hash
/// to compare the typed code with.
#[derive(Debug)]
pub struct Taken {
    pub verification: Verification,
    pub code_hash: String,
}

/// Takes the next attempt of the verification behind `key`, if it is unused, unexpired and
/// has attempts left.
///
/// # Errors
/// Database failures.
pub async fn take_attempt(
    tx: &mut Tx,
    key: Key<'_>,
    now: i64,
) -> Result<Result<Taken, Refused>, StoreError> {
    let (condition, values) = key.condition(3);
    let mut q = tx
        .query_owned(format!(
            "UPDATE identity_verifications SET attempts = attempts + 1, updated_at = $1 \
             WHERE {condition} AND consumed_at IS NULL AND expire_at > $1 AND attempts < $2 \
             RETURNING {COLUMNS}, code_hash"
        ))
        .bind(now)
        .bind(MAX_ATTEMPTS);
    for value in values {
        q = q.bind(value);
    }
    if let Some(row) = tx.fetch_optional(q).await? {
        return Ok(Ok(Taken {
            verification: from_row(&row)?,
            code_hash: row.try_get("code_hash")?,
        }));
    }
    Ok(Err(match find(tx, key).await? {
        None => Refused::NotFound,
        Some(v) if v.consumed_at.is_some() => Refused::Used,
        Some(v) if v.attempts >= MAX_ATTEMPTS => Refused::TooManyAttempts,
        Some(_) => Refused::Expired,
    }))
}

/// Spends a verification. Only one transaction can: `false` means another already did.
///
/// # Errors
/// Database failures.
pub async fn consume(tx: &mut Tx, id: &str, now: i64) -> Result<bool, StoreError> {
    let q = tx
        .query(
            "UPDATE identity_verifications SET consumed_at = $2, updated_at = $2 \
             WHERE id = $1 AND consumed_at IS NULL",
        )
        .bind(id)
        .bind(now);
    Ok(tx.execute(q).await? == 1)
}

/// Gives an unused verification a new code: attempts start again, and so does its lifetime.
/// Returns the verification, or `None` if it is used or gone.
///
/// # Errors
/// Database failures.
pub async fn renew(
    tx: &mut Tx,
    key: Key<'_>,
    code_hash: &str,
    expire_at: i64,
    now: i64,
) -> Result<Option<Verification>, StoreError> {
    let (condition, values) = key.condition(4);
    let mut q = tx
        .query_owned(format!(
            "UPDATE identity_verifications SET code_hash = $1, attempts = 0, expire_at = $2, updated_at = $3 \
             WHERE {condition} AND consumed_at IS NULL RETURNING {COLUMNS}"
        ))
        .bind(code_hash)
        .bind(expire_at)
        .bind(now);
    for value in values {
        q = q.bind(value);
    }
    tx.fetch_optional(q)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// The unused verifications of a user for one purpose, oldest first (expired ones included:
/// they can be sent again).
///
/// # Errors
/// Database failures.
pub async fn list_open(
    tx: &mut Tx,
    user_id: &str,
    purpose: Purpose,
) -> Result<Vec<Verification>, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT {COLUMNS} FROM identity_verifications \
             WHERE user_id = $1 AND purpose = $2 AND consumed_at IS NULL ORDER BY created_at, id"
        ))
        .bind(user_id)
        .bind(purpose.as_str());
    tx.fetch_all(q).await?.iter().map(from_row).collect()
}

/// Deletes one verification.
///
/// # Errors
/// Database failures.
pub async fn delete(tx: &mut Tx, id: &str) -> Result<(), StoreError> {
    let q = tx
        .query("DELETE FROM identity_verifications WHERE id = $1")
        .bind(id);
    tx.execute(q).await?;
    Ok(())
}

/// Turns every open verification of an address into a stand-in (the address was released or
/// removed): its code can no longer verify anything.
///
/// # Errors
/// Database failures.
pub async fn detach_address(tx: &mut Tx, email_address_id: &str) -> Result<(), StoreError> {
    let q = tx
        .query(
            "UPDATE identity_verifications SET email_address_id = NULL WHERE email_address_id = $1",
        )
        .bind(email_address_id);
    tx.execute(q).await?;
    Ok(())
}

/// Forgets sign-up, sign-in and reset verifications that ended (used or expired) before
/// `before`. Added addresses stay listed until their owner verifies or cancels them.
///
/// # Errors
/// Database failures.
pub async fn sweep(tx: &mut Tx, before: i64) -> Result<u64, StoreError> {
    let q = tx
        .query(
            "DELETE FROM identity_verifications \
             WHERE purpose <> 'add_email' AND (expire_at < $1 OR consumed_at < $1)",
        )
        .bind(before);
    tx.execute(q).await
}
