//! What operators (the CLI) and the management API do to accounts: create them with chosen
//! fields, look them up, ban and unban them, end their sessions. Same rules and validation as
//! the pages; every change commits in one transaction.

use latchkey_protocol::clerk;
use latchkey_protocol::clerk::EventType;
use latchkey_store::StoreError;
use serde_json::Value;

use crate::events;
use crate::flows::account::ChangeError;
use crate::lockout;
use crate::passwords::foreign::ImportedDigest;
use crate::passwords::{Password, PolicyError, check_new_password};
use crate::sessions::EndReason;
use crate::sessions::lifecycle;
use crate::state::Identity;
use crate::users::{self, AccountError, ListQuery, NewUser, UserRecord, validate};

/// Why an operator's change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    // Transparent, so the command line's one error line says the message once, not once for
    // the error and again for its source.
    #[error(transparent)]
    Field(#[from] validate::FieldError),
    #[error(transparent)]
    Password(#[from] PolicyError),
    #[error("that email address is taken")]
    EmailTaken,
    #[error("that username is taken")]
    UsernameTaken,
    #[error("no such user")]
    NotFound,
    #[error("the password hasher is busy; try again")]
    Busy,
    #[error("something went wrong; it has been logged")]
    Internal,
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::passwords::busy_or_internal!(AdminError);

impl From<AccountError> for AdminError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::EmailTaken => Self::EmailTaken,
            AccountError::UsernameTaken => Self::UsernameTaken,
            AccountError::NotFound => Self::NotFound,
            AccountError::Store(e) => Self::Store(e),
        }
    }
}

impl From<ChangeError> for AdminError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::Field(e) => Self::Field(e),
            ChangeError::Password(e) => Self::Password(e),
            ChangeError::UsernameTaken => Self::UsernameTaken,
            // Operators never give a current password; these cannot reach them.
            ChangeError::NotFound
            | ChangeError::WrongPassword
            | ChangeError::TooManyAttempts { .. } => Self::NotFound,
            ChangeError::Busy => Self::Busy,
            ChangeError::Internal => Self::Internal,
            ChangeError::Store(e) => Self::Store(e),
        }
    }
}

/// An account an operator creates.
#[derive(Debug, Default)]
pub struct CreateUser {
    pub email_address: Option<String>,
    pub password: Option<Password>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub image_url: Option<String>,
    pub external_id: Option<String>,
    pub public_metadata: Option<Value>,
    pub private_metadata: Option<Value>,
    pub unsafe_metadata: Option<Value>,
    /// A digest made by another system, stored as it is (Clerk's `password_digest`); the first
    /// sign-in with the password re-hashes it. Exclusive with `password`.
    pub password_digest: Option<ImportedDigest>,
    /// Skip the common-password and length checks (Clerk's `skip_password_checks`).
    pub skip_password_checks: bool,
}

/// Creates an account; its email counts as verified by the operator.
///
/// # Errors
/// See [`AdminError`]; nothing is written on error.
pub async fn create_user(
    identity: &Identity,
    create: CreateUser,
) -> Result<UserRecord, AdminError> {
    let email = create
        .email_address
        .as_deref()
        .map(validate::email)
        .transpose()?;
    let first_name = create
        .first_name
        .as_deref()
        .map(|n| validate::name("first_name", n))
        .transpose()?
        .flatten();
    let last_name = create
        .last_name
        .as_deref()
        .map(|n| validate::name("last_name", n))
        .transpose()?
        .flatten();
    let username = create
        .username
        .as_deref()
        .map(validate::username)
        .transpose()?
        .flatten();
    let image_url = create
        .image_url
        .as_deref()
        .map(validate::image_url)
        .transpose()?
        .flatten();
    if email.is_none() && username.is_none() {
        return Err(AdminError::Field(validate::FieldError {
            field: "email_address",
            message: "An account needs an email address or a username.",
        }));
    }
    let password_hash = match create.password {
        Some(password) => {
            if !create.skip_password_checks {
                let context: Vec<&str> = email
                    .iter()
                    .map(|e| e.normalized.as_str())
                    .chain(username.as_deref())
                    .collect();
                check_new_password(password.expose(), &context)?;
            }
            Some(identity.hasher().hash(password).await?.into_string())
        }
        None => create
            .password_digest
            .map(|digest| digest.as_stored().to_owned()),
    };
    let new = NewUser {
        id: None,
        created_at: None,
        email,
        email_verified_by: Some("admin".to_owned()),
        password_hash,
        first_name,
        last_name,
        username,
        image_url,
        external_id: create.external_id,
        public_metadata: create.public_metadata,
        private_metadata: create.private_metadata,
        unsafe_metadata: create.unsafe_metadata,
    };
    let mut tx = identity.db().begin().await?;
    let user = users::create(&mut tx, new, identity.now_ms()).await?;
    events::emit_user(identity, &mut tx, EventType::UserCreated, &user.id, None).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user.id, "account created by an operator");
    Ok(user)
}

/// One account by id, or by email address if `key` contains `@`.
///
/// # Errors
/// Database failures.
pub async fn find_user(identity: &Identity, key: &str) -> Result<Option<UserRecord>, StoreError> {
    let mut tx = identity.db().begin_read().await?;
    let user = if key.contains('@') {
        let query = ListQuery {
            limit: 1,
            email_addresses: vec![key.to_owned()],
            ..ListQuery::default()
        };
        users::list(&mut tx, &query).await?.into_iter().next()
    } else {
        users::get(&mut tx, key).await?
    };
    tx.commit().await?;
    Ok(user)
}

/// Clerk's JSON for an account, lockout state included.
///
/// # Errors
/// Database failures.
pub async fn user_json(identity: &Identity, user: &UserRecord) -> Result<clerk::User, StoreError> {
    let mut tx = identity.db().begin_read().await?;
    let lockout = lockout::lockout_of(identity, &mut tx, user).await?;
    tx.commit().await?;
    Ok(users::to_clerk(user, lockout))
}

/// One page of accounts as Clerk's JSON (keyset paging as [`users::list`]), listed and
/// rendered in one read transaction, so a page is one consistent snapshot and costs one
/// `BEGIN`/`COMMIT` however many users it holds.
///
/// # Errors
/// Database failures.
pub async fn list_users_json(
    identity: &Identity,
    query: &ListQuery,
) -> Result<Vec<clerk::User>, StoreError> {
    let mut tx = identity.db().begin_read().await?;
    let records = users::list(&mut tx, query).await?;
    let rendered = users_json_in(identity, &mut tx, &records).await?;
    tx.commit().await?;
    Ok(rendered)
}

/// Clerk's JSON for `records`, lockout state read in `tx`.
///
/// # Errors
/// Database failures.
pub async fn users_json_in(
    identity: &Identity,
    tx: &mut latchkey_store::Tx,
    records: &[UserRecord],
) -> Result<Vec<clerk::User>, StoreError> {
    let mut rendered = Vec::with_capacity(records.len());
    for user in records {
        let lockout = lockout::lockout_of(identity, tx, user).await?;
        rendered.push(users::to_clerk(user, lockout));
    }
    Ok(rendered)
}

/// Bans (ending every session) or unbans an account.
///
/// # Errors
/// [`AdminError::NotFound`] or database failures.
pub async fn set_banned(
    identity: &Identity,
    user_id: &str,
    banned: bool,
) -> Result<UserRecord, AdminError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    users::set_banned(&mut tx, user_id, banned, now).await?;
    if banned {
        lifecycle::end_all_sessions_in(identity, &mut tx, user_id, None, EndReason::Revoked, now)
            .await?;
    }
    let user = users::get(&mut tx, user_id)
        .await?
        .ok_or(AdminError::NotFound)?;
    events::emit_user(identity, &mut tx, EventType::UserUpdated, user_id, None).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, banned, "ban state changed");
    Ok(user)
}

/// Removes every second factor of an account (a person locked out of theirs); the
/// `user.updated` it emits records it. Returns whether there was one.
///
/// # Errors
/// [`AdminError::NotFound`] or database failures.
pub async fn reset_mfa(identity: &Identity, user_id: &str) -> Result<bool, AdminError> {
    if find_user(identity, user_id).await?.is_none() {
        return Err(AdminError::NotFound);
    }
    let removed = crate::flows::factor_enrolment::remove_factors(identity, user_id, None).await?;
    tracing::info!(user.id = %user_id, removed, "second factors reset by an operator");
    Ok(removed)
}

/// Disconnects one of a user's provider accounts and emits `user.updated`; `false` if the
/// user has no such account.
///
/// # Errors
/// [`AdminError::NotFound`] for an unknown user, or database failures.
pub async fn unlink_external_account(
    identity: &Identity,
    user_id: &str,
    account_id: &str,
) -> Result<bool, AdminError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if users::get(&mut tx, user_id).await?.is_none() {
        return Err(AdminError::NotFound);
    }
    if !crate::oauth::accounts::unlink(&mut tx, user_id, account_id).await? {
        return Ok(false);
    }
    events::user_updated(identity, &mut tx, user_id, None, now).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, "external account removed by an operator");
    Ok(true)
}
