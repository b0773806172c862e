//! Managing second factors: enrolling an authenticator app (a new secret, confirmed by its
//! first code), backup codes (made at enrolment, replaced on request), and removing them all
//! (by the owner after a step-up, or by an operator). Their use at sign-in and in step-up is
//! in `second_factor`.

use latchkey_protocol::clerk::EventType;
use latchkey_store::{StoreError, Tx};

use super::second_factor::{FactorError, account_bucket, take_account_slot};
use crate::context::RequestContext;
use crate::events;
use crate::mfa::{self, TotpSecret, backup, totp};
use crate::state::Identity;
use crate::throttle;
use crate::users;

/// Starts enrolling an authenticator app: a new secret, unconfirmed until its first code.
///
/// # Errors
/// [`FactorError::AlreadyEnrolled`], database failures.
pub async fn start_totp(identity: &Identity, user_id: &str) -> Result<(), FactorError> {
    let secret = TotpSecret::generate();
    let sealed = mfa::seal(identity.master(), user_id, &secret);
    let mut tx = identity.db().begin().await?;
    if !mfa::put_pending_totp(&mut tx, user_id, &sealed, identity.now_ms()).await? {
        return Err(FactorError::AlreadyEnrolled);
    }
    tx.commit().await?;
    Ok(())
}

/// The secret of an enrolment waiting for its first code, if any.
///
/// # Errors
/// Database failures; [`FactorError::Internal`] if it cannot be opened.
pub async fn pending_totp(
    identity: &Identity,
    user_id: &str,
) -> Result<Option<TotpSecret>, FactorError> {
    let mut tx = identity.db().begin_read().await?;
    let row = mfa::totp_of(&mut tx, user_id).await?;
    tx.commit().await?;
    match row {
        Some(row) if row.confirmed_at.is_none() => {
            mfa::open(identity.master(), user_id, &row.secret_sealed)
                .map(Some)
                .map_err(|_| FactorError::Internal)
        }
        _ => Ok(None),
    }
}

/// New backup codes for `user_id` in `tx`, replacing the old; returns them as shown.
async fn new_backup_codes(
    identity: &Identity,
    tx: &mut Tx,
    user_id: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let codes: Vec<String> = (0..mfa::BACKUP_CODES).map(|_| backup::generate()).collect();
    let hashes: Vec<String> = codes
        .iter()
        .filter_map(|c| backup::normalize(c))
        .map(|n| backup::hash(identity.code_key(), user_id, &n))
        .collect();
    mfa::replace_backup_codes(tx, user_id, &hashes, now).await?;
    Ok(codes)
}

/// Confirms the pending enrolment with its first code; returns the 10 backup codes, shown
/// once.
///
/// # Errors
/// See [`FactorError`]. A wrong code counts toward the account's limit.
pub async fn confirm_totp(
    identity: &Identity,
    user_id: &str,
    typed: &str,
    ctx: &RequestContext,
) -> Result<Vec<String>, FactorError> {
    let compact: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if !totp::looks_like_code(&compact) {
        return Err(FactorError::Malformed);
    }
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let left = match take_account_slot(&mut tx, user_id, now).await? {
        Ok(left) => left,
        Err(locked) => {
            tx.commit().await?;
            return Err(locked);
        }
    };
    let row = match mfa::totp_of(&mut tx, user_id).await? {
        Some(row) if row.confirmed_at.is_none() => row,
        Some(_) => return Err(FactorError::AlreadyEnrolled),
        None => return Err(FactorError::NotEnrolled),
    };
    let secret = mfa::open(identity.master(), user_id, &row.secret_sealed)
        .map_err(|_| FactorError::Internal)?;
    let Some(step) = secret.matching_step(&compact, now.div_euclid(1000)) else {
        tx.commit().await?;
        return Err(FactorError::Wrong { remaining: left });
    };
    if !mfa::confirm_totp(&mut tx, user_id, step, now).await? {
        return Err(FactorError::AlreadyEnrolled);
    }
    let codes = new_backup_codes(identity, &mut tx, user_id, now).await?;
    crate::audit::security(identity, &mut tx, "mfa.totp_enabled", user_id, Some(ctx)).await?;
    throttle::clear(&mut tx, &account_bucket(user_id)).await?;
    users::touch_updated(&mut tx, user_id, now).await?;
    events::emit_user(
        identity,
        &mut tx,
        EventType::UserUpdated,
        user_id,
        Some(ctx),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, "authenticator app enrolled");
    Ok(codes)
}

/// Replaces the backup codes of an account with an app; returns the new ones, shown once.
///
/// # Errors
/// [`FactorError::NotEnrolled`], database failures.
pub async fn regenerate_backup_codes(
    identity: &Identity,
    user_id: &str,
) -> Result<Vec<String>, FactorError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if !mfa::has_second_factor(&mut tx, user_id).await? {
        return Err(FactorError::NotEnrolled);
    }
    let codes = new_backup_codes(identity, &mut tx, user_id, now).await?;
    crate::audit::security(
        identity,
        &mut tx,
        "mfa.backup_codes_regenerated",
        user_id,
        None,
    )
    .await?;
    users::touch_updated(&mut tx, user_id, now).await?;
    events::emit_user(identity, &mut tx, EventType::UserUpdated, user_id, None).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, "backup codes regenerated");
    Ok(codes)
}

/// Removes every second factor of the account (by its owner after a step-up, or by an
/// operator); emits `user.updated` if there was one. Returns whether there was.
///
/// # Errors
/// Database failures.
pub async fn remove_factors(
    identity: &Identity,
    user_id: &str,
    ctx: Option<&RequestContext>,
) -> Result<bool, StoreError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let removed = mfa::remove_all(&mut tx, user_id).await?;
    throttle::clear(&mut tx, &account_bucket(user_id)).await?;
    if removed {
        crate::audit::security(identity, &mut tx, "mfa.removed", user_id, ctx).await?;
        users::touch_updated(&mut tx, user_id, now).await?;
        events::emit_user(identity, &mut tx, EventType::UserUpdated, user_id, ctx).await?;
    }
    tx.commit().await?;
    if removed {
        tracing::info!(user.id = %user_id, "second factors removed");
    }
    Ok(removed)
}
