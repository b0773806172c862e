//! Identity accounts and their email addresses: the records, and the data functions that
//! change them inside a caller's transaction (so each change can commit with its event).
//!
//! Every change to a user moves `updated_at` strictly forward, even twice in one millisecond:
//! receivers apply a `user.updated` only if it is newer than what they hold.

pub mod address_rows;
mod clerk_json;
mod credentials;
pub mod metadata;
mod query;
pub mod validate;

use latchkey_store::{DbRow, Row as _, StoreError, Tx};
use serde_json::Value;

pub use clerk_json::{Lockout, to_clerk};
pub use credentials::{Credentials, credentials_by_email, password_hash, replace_password_hash};
pub use query::{ConsoleFilters, ListQuery, OrderBy, count, list};

/// Prefixes of the ids this module mints.
pub const USER_PREFIX: &str = "user";
pub const EMAIL_PREFIX: &str = "idn";

/// `updated_at = max(now, updated_at + 1)`, as SQL with the new time in `$1`.
pub(crate) const BUMP_UPDATED_AT: &str =
    "updated_at = CASE WHEN updated_at >= $1 THEN updated_at + 1 ELSE $1 END";

/// An identity account.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: String,
    pub external_id: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub has_password: bool,
    pub password_updated_at: Option<i64>,
    pub public_metadata: Value,
    pub private_metadata: Value,
    pub unsafe_metadata: Value,
    pub primary_email_address_id: Option<String>,
    pub banned_at: Option<i64>,
    pub last_sign_in_at: Option<i64>,
    pub last_active_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub emails: Vec<EmailRecord>,
    /// When the authenticator app was confirmed; `None` without one.
    pub totp_enabled_at: Option<i64>,
    /// Unused backup codes.
    pub backup_codes_left: i64,
    /// Registered passkeys, oldest first.
    pub passkeys: Vec<crate::passkeys::PasskeyRecord>,
    /// Linked provider accounts (social sign-in), oldest first.
    pub external_accounts: Vec<crate::oauth::accounts::ExternalAccountRecord>,
}

impl UserRecord {
    /// The primary email address, if the user has one.
    #[must_use]
    pub fn primary_email(&self) -> Option<&EmailRecord> {
        let id = self.primary_email_address_id.as_deref()?;
        self.emails.iter().find(|e| e.id == id)
    }

    /// "First Last", or the username, or the email, for greeting people.
    #[must_use]
    pub fn display_name(&self) -> String {
        let full = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if !full.is_empty() {
            return full;
        }
        self.username
            .clone()
            .or_else(|| self.primary_email().map(|e| e.email_address.clone()))
            .unwrap_or_else(|| self.id.clone())
    }
}

/// An email address of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRecord {
    pub id: String,
    pub email_address: String,
    /// `unverified` or `verified`.
    pub verification_status: String,
    /// How it was or is being verified (`email_code`, `admin`).
    pub verification_strategy: Option<String>,
    /// Code attempts made in its current or last verification.
    pub verification_attempts: Option<i64>,
    /// When the code of its current or last verification expires (ms).
    pub verification_expire_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a new account starts with.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// The id to keep (an imported user's); `None` makes a new one.
    pub id: Option<String>,
    /// When the account was made elsewhere (an imported user's); `None` is now.
    pub created_at: Option<i64>,
    pub email: Option<validate::Email>,
    /// How the email is known to be the user's (`admin` for operators, `None` if unverified).
    pub email_verified_by: Option<String>,
    pub password_hash: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub image_url: Option<String>,
    pub external_id: Option<String>,
    pub public_metadata: Option<Value>,
    pub private_metadata: Option<Value>,
    pub unsafe_metadata: Option<Value>,
}

/// Why an account could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("that email address is taken")]
    EmailTaken,
    #[error("that username is taken")]
    UsernameTaken,
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates an account with its (optional) email address.
///
/// # Errors
/// [`AccountError::EmailTaken`] or [`AccountError::UsernameTaken`] (the transaction must then be
/// abandoned), or a database failure.
pub async fn create(tx: &mut Tx, new: NewUser, now: i64) -> Result<UserRecord, AccountError> {
    let id = new
        .id
        .clone()
        .unwrap_or_else(|| latchkey_protocol::id::new_id(USER_PREFIX));
    let email_id = new
        .email
        .as_ref()
        .map(|_| latchkey_protocol::id::new_id(EMAIL_PREFIX));
    let object = |v: Option<Value>| {
        v.unwrap_or_else(|| Value::Object(serde_json::Map::new()))
            .to_string()
    };
    let q = tx
        .query(
            "INSERT INTO identity_users (id, external_id, username, username_normalized, first_name, \
                 last_name, image_url, password_hash, password_updated_at, public_metadata, \
                 private_metadata, unsafe_metadata, primary_email_address_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $15, $14) \
             ON CONFLICT (username_normalized) DO NOTHING RETURNING id",
        )
        .bind(&id)
        .bind(new.external_id)
        .bind(new.username.as_deref())
        .bind(new.username.as_deref().map(str::to_lowercase))
        .bind(new.first_name)
        .bind(new.last_name)
        .bind(new.image_url)
        .bind(new.password_hash.as_deref())
        .bind(new.password_hash.as_ref().map(|_| now))
        .bind(object(new.public_metadata))
        .bind(object(new.private_metadata))
        .bind(object(new.unsafe_metadata))
        .bind(email_id.as_deref())
        .bind(now)
        .bind(new.created_at.unwrap_or(now));
    if tx.fetch_optional(q).await?.is_none() {
        return Err(AccountError::UsernameTaken);
    }
    if let (Some(email), Some(email_id)) = (new.email, email_id) {
        let status = if new.email_verified_by.is_some() {
            "verified"
        } else {
            "unverified"
        };
        let q = tx
            .query(
                "INSERT INTO identity_email_addresses (id, user_id, email_address, email_normalized, \
                     verification_status, verification_strategy, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (email_normalized) DO NOTHING RETURNING id",
            )
            .bind(email_id)
            .bind(&id)
            .bind(email.address)
            .bind(email.normalized)
            .bind(status)
            .bind(new.email_verified_by)
            .bind(now);
        if tx.fetch_optional(q).await?.is_none() {
            return Err(AccountError::EmailTaken);
        }
    }
    get(tx, &id).await?.ok_or(AccountError::NotFound)
}

const USER_COLUMNS: &str = "id, external_id, username, first_name, last_name, image_url, \
    CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS has_password, password_updated_at, public_metadata, \
    private_metadata, unsafe_metadata, primary_email_address_id, banned_at, last_sign_in_at, \
    last_active_at, created_at, updated_at, \
    (SELECT confirmed_at FROM identity_totp WHERE identity_totp.user_id = identity_users.id) AS totp_enabled_at, \
    (SELECT count(*) FROM identity_backup_codes WHERE identity_backup_codes.user_id = identity_users.id \
        AND identity_backup_codes.used_at IS NULL) AS backup_codes_left";

/// One account with its email addresses.
///
/// # Errors
/// Database failures.
pub async fn get(tx: &mut Tx, id: &str) -> Result<Option<UserRecord>, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT {USER_COLUMNS} FROM identity_users WHERE id = $1"
        ))
        .bind(id);
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(None);
    };
    let mut user = user_from_row(&row)?;
    attach_children(tx, std::slice::from_mut(&mut user)).await?;
    Ok(Some(user))
}

/// An account as seen through one of its sessions ([`get_in_session`]).
#[derive(Debug)]
pub enum InSession {
    /// No such account.
    NoUser,
    /// The session is not an active session of the account (ended, expired, someone else's).
    Ended,
    /// The account, with its email addresses.
    Active(Box<UserRecord>),
}

/// [`get`], if `session_id` is an active session of the account at `now`; the session is read
/// with the account in one statement (what `/v1/me` needs to refuse a token whose session
/// ended).
///
/// # Errors
/// Database failures.
pub async fn get_in_session(
    tx: &mut Tx,
    id: &str,
    session_id: &str,
    now: i64,
) -> Result<InSession, StoreError> {
    let q = tx
        .query_owned(format!(
            "SELECT {USER_COLUMNS}, (SELECT count(*) FROM identity_sessions \
                 WHERE id = $2 AND user_id = $1 AND status = 'active' AND expire_at > $3) AS active_sessions \
             FROM identity_users WHERE id = $1"
        ))
        .bind(id)
        .bind(session_id)
        .bind(now);
    let Some(row) = tx.fetch_optional(q).await? else {
        return Ok(InSession::NoUser);
    };
    if row.try_get::<i64, _>("active_sessions")? == 0 {
        return Ok(InSession::Ended);
    }
    let mut user = user_from_row(&row)?;
    attach_children(tx, std::slice::from_mut(&mut user)).await?;
    Ok(InSession::Active(Box::new(user)))
}

/// Fills in the email addresses, passkeys and linked provider accounts of `users`.
pub(crate) async fn attach_children(
    tx: &mut Tx,
    users: &mut [UserRecord],
) -> Result<(), StoreError> {
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut emails = address_rows::emails_of(tx, &id_refs).await?;
    let mut passkeys = crate::passkeys::of_users(tx, &id_refs).await?;
    let mut accounts = crate::oauth::accounts::of_users(tx, &id_refs).await?;
    for user in users {
        user.emails = emails.remove(&user.id).unwrap_or_default();
        user.passkeys = passkeys.remove(&user.id).unwrap_or_default();
        user.external_accounts = accounts.remove(&user.id).unwrap_or_default();
    }
    Ok(())
}

pub(crate) fn user_from_row(row: &DbRow) -> Result<UserRecord, StoreError> {
    let json = |column: &str| -> Result<Value, StoreError> {
        let text: String = row.try_get(column)?;
        Ok(serde_json::from_str(&text).unwrap_or_else(|_| Value::Object(serde_json::Map::new())))
    };
    Ok(UserRecord {
        id: row.try_get("id")?,
        external_id: row.try_get("external_id")?,
        username: row.try_get("username")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        image_url: row.try_get("image_url")?,
        has_password: row.try_get::<i64, _>("has_password")? != 0,
        password_updated_at: row.try_get("password_updated_at")?,
        public_metadata: json("public_metadata")?,
        private_metadata: json("private_metadata")?,
        unsafe_metadata: json("unsafe_metadata")?,
        primary_email_address_id: row.try_get("primary_email_address_id")?,
        banned_at: row.try_get("banned_at")?,
        last_sign_in_at: row.try_get("last_sign_in_at")?,
        last_active_at: row.try_get("last_active_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        emails: Vec::new(),
        totp_enabled_at: row.try_get("totp_enabled_at")?,
        backup_codes_left: row.try_get("backup_codes_left")?,
        passkeys: Vec::new(),
        external_accounts: Vec::new(),
    })
}

/// Profile fields to change; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub username: Option<Option<String>>,
    pub image_url: Option<Option<String>>,
    pub external_id: Option<Option<String>>,
    pub public_metadata: Option<Value>,
    pub private_metadata: Option<Value>,
    pub unsafe_metadata: Option<Value>,
}

/// Applies `change` and returns the updated record.
///
/// # Errors
/// [`AccountError::NotFound`], [`AccountError::UsernameTaken`] (abandon the transaction), or a
/// database failure.
pub async fn update_profile(
    tx: &mut Tx,
    id: &str,
    change: ProfileChange,
    now: i64,
) -> Result<UserRecord, AccountError> {
    let mut sets = vec![BUMP_UPDATED_AT.to_owned()];
    let mut values: Vec<Option<String>> = Vec::new();
    let mut push = |column: &str, value: Option<String>| {
        values.push(value);
        sets.push(format!("{column} = ${}", values.len() + 2));
    };
    if let Some(v) = change.first_name {
        push("first_name", v);
    }
    if let Some(v) = change.last_name {
        push("last_name", v);
    }
    if let Some(v) = change.username {
        push("username_normalized", v.as_deref().map(str::to_lowercase));
        push("username", v);
    }
    if let Some(v) = change.image_url {
        push("image_url", v);
    }
    if let Some(v) = change.external_id {
        push("external_id", v);
    }
    for (column, value) in [
        ("public_metadata", change.public_metadata),
        ("private_metadata", change.private_metadata),
        ("unsafe_metadata", change.unsafe_metadata),
    ] {
        if let Some(value) = value {
            push(column, Some(value.to_string()));
        }
    }
    let mut q = tx
        .query_owned(format!(
            "UPDATE identity_users SET {} WHERE id = $2",
            sets.join(", ")
        ))
        .bind(now)
        .bind(id);
    for value in values {
        q = q.bind(value);
    }
    match tx.execute(q).await {
        Ok(0) => return Err(AccountError::NotFound),
        Ok(_) => {}
        Err(StoreError::UniqueViolation(_)) => return Err(AccountError::UsernameTaken),
        Err(error) => return Err(error.into()),
    }
    get(tx, id).await?.ok_or(AccountError::NotFound)
}

/// Replaces the password hash; `None` removes the password (the account then signs in by
/// code until one is set).
///
/// # Errors
/// Database failures; [`AccountError::NotFound`].
pub async fn set_password(
    tx: &mut Tx,
    id: &str,
    hash: Option<&str>,
    now: i64,
) -> Result<(), AccountError> {
    let q = tx
        .query_owned(format!(
            "UPDATE identity_users SET password_hash = $3, password_updated_at = $1, {BUMP_UPDATED_AT} WHERE id = $2"
        ))
        .bind(now)
        .bind(id)
        .bind(hash);
    match tx.execute(q).await? {
        0 => Err(AccountError::NotFound),
        _ => Ok(()),
    }
}

/// Bans or unbans an account.
///
/// # Errors
/// Database failures; [`AccountError::NotFound`].
pub async fn set_banned(tx: &mut Tx, id: &str, banned: bool, now: i64) -> Result<(), AccountError> {
    let q = tx
        .query_owned(format!(
            "UPDATE identity_users SET banned_at = $3, {BUMP_UPDATED_AT} WHERE id = $2"
        ))
        .bind(now)
        .bind(id)
        .bind(banned.then_some(now));
    match tx.execute(q).await? {
        0 => Err(AccountError::NotFound),
        _ => Ok(()),
    }
}

/// Marks the account changed (a second factor added, used or removed): `updated_at` moves on,
/// so receivers order the `user.updated` that follows.
///
/// # Errors
/// Database failures.
pub async fn touch_updated(tx: &mut Tx, id: &str, now: i64) -> Result<(), StoreError> {
    let q = tx
        .query_owned(format!(
            "UPDATE identity_users SET {BUMP_UPDATED_AT} WHERE id = $2"
        ))
        .bind(now)
        .bind(id);
    tx.execute(q).await?;
    Ok(())
}

/// Records a successful sign-in (activity fields only; not a profile change).
///
/// # Errors
/// Database failures.
pub async fn record_sign_in(tx: &mut Tx, id: &str, now: i64) -> Result<(), StoreError> {
    crate::daily::active(tx, id, now).await?;
    let q = tx
        .query("UPDATE identity_users SET last_sign_in_at = $1, last_active_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id);
    tx.execute(q).await?;
    Ok(())
}

/// Deletes an account with its addresses and sessions. Returns whether it existed.
///
/// # Errors
/// Database failures.
pub async fn delete(tx: &mut Tx, id: &str) -> Result<bool, StoreError> {
    // Explicit deletes rather than relying on cascades, which SQLite only honours with
    // foreign keys enabled on the connection.
    for sql in [
        "DELETE FROM identity_sessions WHERE user_id = $1",
        "DELETE FROM identity_verifications WHERE user_id = $1",
        "DELETE FROM identity_totp WHERE user_id = $1",
        "DELETE FROM identity_backup_codes WHERE user_id = $1",
        "DELETE FROM identity_mfa_challenges WHERE user_id = $1",
        "DELETE FROM identity_passkeys WHERE user_id = $1",
        "DELETE FROM identity_webauthn_ceremonies WHERE user_id = $1",
        "DELETE FROM identity_webauthn_users WHERE user_id = $1",
        "DELETE FROM identity_email_addresses WHERE user_id = $1",
    ] {
        let q = tx.query(sql).bind(id);
        tx.execute(q).await?;
    }
    let q = tx
        .query("DELETE FROM identity_users WHERE id = $1")
        .bind(id);
    Ok(tx.execute(q).await? > 0)
}
