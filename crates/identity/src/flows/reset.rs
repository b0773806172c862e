//! Password reset: a code mailed to the address (30 minutes), then a new password under the
//! same policy as sign-up, which ends every session. Known and unknown addresses get the same
//! answer after the same database work; only known ones are mailed.

use super::{CodeError, Pending, RequestError};
use crate::context::RequestContext;
use crate::events;
use crate::flows;
use crate::flows::sign_in_code;
use crate::lockout;
use crate::passwords::{Password, check_new_password};
use crate::sessions::EndReason;
use crate::sessions::lifecycle;
use crate::state::Identity;
use crate::throttle;
use crate::users::{self, address_rows};
use crate::verifications::{self, BrowserToken, Code, Key, Purpose};
use latchkey_protocol::clerk::EventType;

/// Mails a reset code to `email_address` if it signs in to an account; otherwise writes a
/// stand-in. The answer is the same.
///
/// # Errors
/// See [`RequestError`].
pub async fn request_password_reset(
    identity: &Identity,
    email_address: &str,
    ctx: &RequestContext,
) -> Result<Pending, RequestError> {
    sign_in_code::request_code(identity, Purpose::ResetPassword, email_address, "", ctx).await
}

/// Checks the reset code behind a browser's cookie and sets `new_password`; every session
/// of the account ends. Returns how many.
///
/// # Errors
/// See [`CodeError`]. The password is checked before the code, and a weak one costs no
/// attempt; a wrong code still counts. The new password is hashed (argon2, the expensive
/// part) only for a request within the network's limit on an open verification, so each
/// verification buys at most [`verifications::MAX_ATTEMPTS`] hashes.
pub async fn reset_password(
    identity: &Identity,
    token: &BrowserToken,
    code: &str,
    new_password: Password,
    ctx: &RequestContext,
) -> Result<usize, CodeError> {
    let code = Code::parse(code).ok_or(CodeError::Malformed)?;
    let mut tx = identity.db().begin().await?;
    if let Some(retry_after_secs) =
        flows::take_ip_slot(identity, &mut tx, ctx, identity.now_ms()).await?
    {
        tx.commit().await?;
        return Err(CodeError::Throttled { retry_after_secs });
    }
    let found = verifications::find(&mut tx, Key::Token(token)).await?;
    tx.commit().await?;
    let Some(found) = found.filter(|v| v.purpose == Purpose::ResetPassword) else {
        return Err(CodeError::Ended);
    };
    if found.consumed_at.is_some() {
        return Err(CodeError::Used);
    }
    if found.attempts_left() == 0 {
        return Err(CodeError::TooManyAttempts);
    }
    if found.expire_at <= identity.now_ms() {
        return Err(CodeError::Expired);
    }
    let normalized = found.email_address.to_lowercase();
    let local_part = normalized.split('@').next().unwrap_or_default().to_owned();
    check_new_password(new_password.expose(), &[&normalized, &local_part])?;
    let hash = identity.hasher().hash(new_password).await?;

    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let verification =
        match flows::check_code(identity, &mut tx, Key::Token(token), &code, now).await? {
            Ok(verification) => verification,
            Err(refused) => {
                tx.commit().await?;
                return Err(refused);
            }
        };
    let Some(user_id) = verification.user_id.clone() else {
        return Err(CodeError::Ended);
    };
    match users::set_password(&mut tx, &user_id, Some(hash.as_str()), now).await {
        Ok(()) => {}
        Err(users::AccountError::Store(error)) => return Err(error.into()),
        Err(_) => return Err(CodeError::Ended),
    }
    // The code proved the address is theirs.
    if let Some(email_id) = &verification.email_address_id {
        address_rows::mark_verified(&mut tx, email_id, verification.attempts, now).await?;
    }
    throttle::clear(&mut tx, &lockout::account_bucket(identity, &normalized)).await?;
    crate::audit::security(identity, &mut tx, "password.reset", &user_id, Some(ctx)).await?;
    let ended =
        lifecycle::end_all_sessions_in(identity, &mut tx, &user_id, None, EndReason::Revoked, now)
            .await?;
    events::emit_user(
        identity,
        &mut tx,
        EventType::UserUpdated,
        &user_id,
        Some(ctx),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, sessions.ended = ended.len(), "password reset");
    Ok(ended.len())
}
