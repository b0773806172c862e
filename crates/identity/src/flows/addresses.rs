//! Changing addresses from the account page: add one (a code goes to it), verify it, make it
//! primary (the old primary address is told), remove one. Every step that changes the user
//! writes its `user.updated` in the same transaction.
//!
//! Adding an address someone else holds looks exactly like adding a free one: a pending entry
//! with a code "on its way" (a stand-in), listed, sent again and cancelled the same way.

use latchkey_protocol::clerk::EventType;
use latchkey_store::StoreError;

use super::{CodeError, Opening, RequestError};
use crate::events;
use crate::flows;
use crate::flows::sign_up;
use crate::mail;
use crate::mail::MailKind;
use crate::state::Identity;
use crate::users::{UserRecord, address_rows, validate};
use crate::verifications::{self, Code, Key, Purpose, Verification};

/// Addresses waiting for a code, at most, per user.
pub const MAX_PENDING: usize = 3;

/// Why an address change was refused.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("{0}")]
    Field(#[from] validate::FieldError),
    #[error("That address is already on your account.")]
    AlreadyYours,
    #[error("Finish or cancel the addresses waiting for a code first.")]
    TooManyPending,
    #[error("That address is not a verified address of your account.")]
    NotFound,
    #[error("Your primary address cannot be removed; make another address primary first.")]
    Primary,
    #[error("{0}")]
    Request(RequestError),
    #[error("{0}")]
    Code(#[from] CodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RequestError> for EmailError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::Field(field) => Self::Field(field),
            RequestError::Store(store) => Self::Store(store),
            other => Self::Request(other),
        }
    }
}

/// The user's addresses waiting for a code (stand-ins included), oldest first.
///
/// # Errors
/// Database failures.
pub async fn pending_emails(
    identity: &Identity,
    user_id: &str,
) -> Result<Vec<Verification>, StoreError> {
    let mut tx = identity.db().begin_read().await?;
    let pending = verifications::list_open(&mut tx, user_id, Purpose::AddEmail).await?;
    tx.commit().await?;
    Ok(pending)
}

/// Adds `address` to `user` unverified and mails it a code; if someone else holds it, a
/// stand-in takes its place. The answer is the same.
///
/// # Errors
/// See [`EmailError`].
pub async fn add_email(
    identity: &Identity,
    user: &UserRecord,
    address: &str,
) -> Result<(), EmailError> {
    let email = validate::email(address)?;
    if user
        .emails
        .iter()
        .any(|e| e.email_address.to_lowercase() == email.normalized)
    {
        return Err(EmailError::AlreadyYours);
    }
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let pending = verifications::list_open(&mut tx, &user.id, Purpose::AddEmail).await?;
    if pending
        .iter()
        .any(|v| v.email_address.to_lowercase() == email.normalized)
    {
        return Err(EmailError::AlreadyYours);
    }
    if pending.len() >= MAX_PENDING {
        return Err(EmailError::TooManyPending);
    }
    if let Err(refused) = flows::take_mail_slot(identity, &mut tx, &email.normalized, now).await? {
        tx.commit().await?;
        return Err(refused.into());
    }
    sign_up::release_stale_address(identity, &mut tx, &email.normalized, now).await?;
    let expire_at = now + identity.config().email_code_lifetime_ms;
    let added = address_rows::add(&mut tx, &user.id, &email, expire_at, now).await?;
    let opening = Opening {
        purpose: Purpose::AddEmail,
        token: None,
        user_id: Some(&user.id),
        email_address_id: added.as_deref(),
        address: &email.address,
        redirect_url: "",
    };
    flows::open_verification(identity, &mut tx, opening, now).await?;
    if added.is_some() {
        events::emit_user(identity, &mut tx, EventType::UserUpdated, &user.id, None).await?;
    }
    tx.commit().await?;
    tracing::info!(user.id = %user.id, "address added; waiting for its code");
    Ok(())
}

/// Checks the code of an address `user_id` added; if right, the address is verified.
///
/// # Errors
/// See [`CodeError`]. A wrong code still counts.
pub async fn verify_added_email(
    identity: &Identity,
    user_id: &str,
    verification_id: &str,
    code: &str,
) -> Result<(), CodeError> {
    let code = Code::parse(code).ok_or(CodeError::Malformed)?;
    let key = Key::OfUser {
        id: verification_id,
        user_id,
    };
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    match verifications::find(&mut tx, key).await? {
        Some(v) if v.purpose == Purpose::AddEmail => {}
        _ => return Err(CodeError::Ended),
    }
    let verification = match flows::check_code(identity, &mut tx, key, &code, now).await? {
        Ok(verification) => verification,
        Err(refused) => {
            tx.commit().await?;
            return Err(refused);
        }
    };
    if let Some(email_id) = &verification.email_address_id
        && address_rows::mark_verified(&mut tx, email_id, verification.attempts, now)
            .await?
            .is_some()
    {
        events::emit_user(identity, &mut tx, EventType::UserUpdated, user_id, None).await?;
    }
    tx.commit().await?;
    tracing::info!(user.id = %user_id, "added address verified");
    Ok(())
}

/// Sends an address waiting for its code a new one.
///
/// # Errors
/// See [`RequestError`].
pub async fn resend_added_email_code(
    identity: &Identity,
    user_id: &str,
    verification_id: &str,
) -> Result<(), RequestError> {
    let key = Key::OfUser {
        id: verification_id,
        user_id,
    };
    match flows::renew_verification(identity, key, identity.now_ms()).await? {
        Purpose::AddEmail => Ok(()),
        _ => Err(RequestError::Ended),
    }
}

/// Withdraws an address waiting for its code (and the address, if it was added).
///
/// # Errors
/// [`EmailError::NotFound`] or database failures.
pub async fn cancel_added_email(
    identity: &Identity,
    user_id: &str,
    verification_id: &str,
) -> Result<(), EmailError> {
    let key = Key::OfUser {
        id: verification_id,
        user_id,
    };
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let Some(found) = verifications::find(&mut tx, key)
        .await?
        .filter(|v| v.purpose == Purpose::AddEmail && v.consumed_at.is_none())
    else {
        return Err(EmailError::NotFound);
    };
    verifications::delete(&mut tx, &found.id).await?;
    if let Some(email_id) = &found.email_address_id
        && address_rows::remove(&mut tx, user_id, email_id, now).await?
    {
        events::emit_user(identity, &mut tx, EventType::UserUpdated, user_id, None).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Makes a verified address of the user primary and tells the previous one by mail.
///
/// # Errors
/// [`EmailError::NotFound`] or database failures.
pub async fn set_primary_email(
    identity: &Identity,
    user_id: &str,
    email_id: &str,
) -> Result<(), EmailError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    match address_rows::set_primary(&mut tx, user_id, email_id, now).await? {
        address_rows::Primary::Changed { previous } => {
            if let Some(previous) = previous {
                mail::queue_mail(
                    identity,
                    &mut tx,
                    &previous,
                    Some(user_id),
                    &MailKind::PrimaryChanged,
                )
                .await?;
            }
            events::emit_user(identity, &mut tx, EventType::UserUpdated, user_id, None).await?;
            tx.commit().await?;
            tracing::info!(user.id = %user_id, "primary address changed");
            Ok(())
        }
        address_rows::Primary::Unchanged => Ok(()),
        address_rows::Primary::Refused => Err(EmailError::NotFound),
    }
}

/// Removes an address of the user that is not its primary one.
///
/// # Errors
/// [`EmailError::Primary`], [`EmailError::NotFound`] or database failures.
pub async fn remove_email(
    identity: &Identity,
    user: &UserRecord,
    email_id: &str,
) -> Result<(), EmailError> {
    if user.primary_email_address_id.as_deref() == Some(email_id) {
        return Err(EmailError::Primary);
    }
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if !address_rows::remove(&mut tx, &user.id, email_id, now).await? {
        return Err(EmailError::NotFound);
    }
    verifications::detach_address(&mut tx, email_id).await?;
    events::emit_user(identity, &mut tx, EventType::UserUpdated, &user.id, None).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user.id, "address removed");
    Ok(())
}
