//! What people do with their own accounts once signed in: change their profile and password,
//! delete the account. Pages, the CLI and the management API call these; each change commits
//! in one transaction with its events.

use latchkey_protocol::clerk::EventType;
use latchkey_store::StoreError;

use crate::events;
use crate::events::SessionEvent;
use crate::passwords::{Password, PolicyError, check_new_password};
use crate::sessions::lifecycle;
use crate::sessions::{self, EndReason};
use crate::state::Identity;
use crate::throttle::{self, Limit};
use crate::users::{self, AccountError, ProfileChange, UserRecord, validate};

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("{0}")]
    Field(#[from] validate::FieldError),
    #[error("{0}")]
    Password(#[from] PolicyError),
    #[error("The current password is incorrect.")]
    WrongPassword,
    #[error("Too many wrong passwords. Try again in {} minutes.", retry_after_secs.div_ceil(60).max(1))]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("That username is taken.")]
    UsernameTaken,
    #[error("Not found.")]
    NotFound,
    #[error("The service is busy; try again in a moment.")]
    Busy,
    #[error("Something went wrong on our side; it has been logged.")]
    Internal,
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::passwords::busy_or_internal!(ChangeError);

impl From<AccountError> for ChangeError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::UsernameTaken => Self::UsernameTaken,
            AccountError::NotFound | AccountError::EmailTaken => Self::NotFound,
            AccountError::Store(e) => Self::Store(e),
        }
    }
}

/// Changes profile fields.
///
/// # Errors
/// See [`ChangeError`].
pub async fn update_profile(
    identity: &Identity,
    user_id: &str,
    change: ProfileChange,
) -> Result<UserRecord, ChangeError> {
    let mut tx = identity.db().begin().await?;
    let user = users::update_profile(&mut tx, user_id, change, identity.now_ms()).await?;
    events::emit_user(identity, &mut tx, EventType::UserUpdated, user_id, None).await?;
    tx.commit().await?;
    Ok(user)
}

/// Changes the password after checking the current one, and ends every other session. An
/// account without a password (one that signs in by code) sets one without `current`.
/// Wrong current passwords count toward a lockout of their own (10 an hour, as at sign-in),
/// so a stolen session cannot be used to guess the password.
///
/// # Errors
/// See [`ChangeError`].
pub async fn change_password(
    identity: &Identity,
    user: &UserRecord,
    keep_session: &str,
    current: Password,
    new: Password,
) -> Result<usize, ChangeError> {
    let mut context: Vec<&str> = user
        .emails
        .iter()
        .map(|e| e.email_address.as_str())
        .collect();
    if let Some(username) = &user.username {
        context.push(username);
    }
    check_new_password(new.expose(), &context)?;
    let bucket = format!("change-password:{}", user.id);
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let stored = users::password_hash(&mut tx, &user.id).await?;
    if stored.is_some() {
        let attempt = throttle::take(&mut tx, &bucket, Limit::ACCOUNT_LOCKOUT, now).await?;
        if attempt.refused() {
            tx.commit().await?;
            return Err(ChangeError::TooManyAttempts {
                retry_after_secs: attempt.retry_after_secs(now),
            });
        }
    }
    tx.commit().await?;
    if stored.is_some() && !identity.hasher().verify(current, stored.as_deref()).await? {
        tracing::info!(user.id = %user.id, "password change refused: wrong current password");
        return Err(ChangeError::WrongPassword);
    }
    let hash = identity.hasher().hash(new).await?;
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    throttle::clear(&mut tx, &bucket).await?;
    users::set_password(&mut tx, &user.id, Some(hash.as_str()), now).await?;
    crate::audit::security(identity, &mut tx, "password.changed", &user.id, None).await?;
    let ended = lifecycle::end_all_sessions_in(
        identity,
        &mut tx,
        &user.id,
        Some(keep_session),
        EndReason::Revoked,
        now,
    )
    .await?;
    events::emit_user(identity, &mut tx, EventType::UserUpdated, &user.id, None).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user.id, sessions.ended = ended.len(), "password changed");
    Ok(ended.len())
}

/// Deletes the account, its addresses and sessions.
///
/// # Errors
/// [`ChangeError::NotFound`] or database failures.
pub async fn delete_account(identity: &Identity, user_id: &str) -> Result<(), ChangeError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let Some(user) = users::get(&mut tx, user_id).await? else {
        return Err(ChangeError::NotFound);
    };
    let ended = sessions::end_all(&mut tx, user_id, None, EndReason::Removed, now).await?;
    events::emit_sessions(
        identity,
        &mut tx,
        SessionEvent::Removed,
        &ended,
        Some(&user),
        None,
    )
    .await?;
    if !users::delete(&mut tx, user_id).await? {
        return Err(ChangeError::NotFound);
    }
    events::emit_user_deleted(identity, &mut tx, &user, None).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, "account deleted");
    Ok(())
}
