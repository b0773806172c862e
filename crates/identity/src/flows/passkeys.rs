//! Passkeys: registering one to the signed-in account (after a step-up, checked by the page),
//! renaming and removing it, and signing in with one as the only factor.
//!
//! Each ceremony is taken from the table before its answer is checked and stays taken whatever
//! the check says, so a challenge is good for one answer. Every refused sign-in reads the same
//! ("that passkey could not be verified") whether the credential is unknown, belongs to another
//! site, or fails its signature or counter, so answers reveal nothing about accounts. Sign-in
//! attempts count toward the network's sign-in limit, as passwords do.

use latchkey_protocol::clerk::EventType;
use latchkey_store::StoreError;
use subtle::ConstantTimeEq as _;

use crate::context::RequestContext;
use crate::events;
use crate::flows;
use crate::passkeys::ceremony::{self, BrowserToken, Purpose};
use crate::passkeys::rp::{RegistrationAnswer, RelyingParty, RpError, SignInAnswer};
use crate::passkeys::{self, MAX_NAME_CHARS, MAX_PER_USER};
use crate::sessions::lifecycle;
use crate::sessions::{ClientToken, SignedIn};
use crate::state::Identity;
use crate::throttle;
use crate::users::{self, UserRecord};

/// Why a passkey action was refused. The messages are what people see.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("Your browser's passkey answer could not be read. Try again.")]
    Malformed,
    #[error("That passkey could not be verified. Try again, or sign in another way.")]
    Refused,
    #[error("This passkey request has ended. Try again.")]
    Ended,
    #[error("That passkey is already registered.")]
    Duplicate,
    #[error("Give the passkey a name of 1 to {MAX_NAME_CHARS} characters.")]
    BadName,
    #[error("An account can have at most {MAX_PER_USER} passkeys. Remove one first.")]
    TooMany,
    #[error("No such passkey.")]
    NotFound,
    #[error("Passkeys need the site to be served under a domain name.")]
    NoRelyingParty,
    #[error("Too many sign-in attempts from your network. Try again in {} minutes.", retry_after_secs.div_ceil(60).max(1))]
    Throttled { retry_after_secs: u64 },
    #[error("This account is banned. Contact the site's operator.")]
    Banned,
    #[error("Something went wrong on our side; it has been logged.")]
    Internal,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn relying_party(identity: &Identity) -> Result<RelyingParty, PasskeyError> {
    RelyingParty::new(&identity.config().public_url).ok_or(PasskeyError::NoRelyingParty)
}

fn internal(error: &RpError) -> PasskeyError {
    tracing::error!(error = %error, "passkey state unusable");
    PasskeyError::Internal
}

/// Options for the browser to register a new passkey to `user`, its ceremony bound to
/// `browser`.
///
/// # Errors
/// [`PasskeyError::TooMany`], database failures.
pub async fn begin_registration(
    identity: &Identity,
    user: &UserRecord,
    browser: &BrowserToken,
) -> Result<serde_json::Value, PasskeyError> {
    let rp = relying_party(identity)?;
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if passkeys::count(&mut tx, &user.id).await? >= MAX_PER_USER {
        return Err(PasskeyError::TooMany);
    }
    let handle = passkeys::user_handle(&mut tx, &user.id, now).await?;
    let existing = passkeys::credential_ids(&mut tx, &user.id).await?;
    let address = user
        .primary_email()
        .map_or(user.id.as_str(), |e| e.email_address.as_str());
    let started = rp
        .start_registration(&handle, address, &user.display_name(), existing)
        .map_err(|e| internal(&e))?;
    ceremony::create(
        &mut tx,
        started.challenge,
        browser,
        Purpose::Register,
        Some(&user.id),
        &started.server_state,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(started.options)
}

/// Takes the ceremony an answer names (it cannot be answered twice); `Ended` if there is none
/// for this browser, it expired, or it belongs to someone else.
async fn take_ceremony(
    identity: &Identity,
    challenge: u128,
    browser: &BrowserToken,
    purpose: Purpose,
    user_id: Option<&str>,
) -> Result<Vec<u8>, PasskeyError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let taken = ceremony::take(&mut tx, challenge, browser, purpose).await?;
    tx.commit().await?;
    match taken {
        Some(t) if t.expire_at > now && t.user_id.as_deref() == user_id => Ok(t.server_state),
        _ => Err(PasskeyError::Ended),
    }
}

/// Checks the browser's answer to a registration and stores the passkey under `name`.
/// Returns its id.
///
/// # Errors
/// See [`PasskeyError`].
pub async fn finish_registration(
    identity: &Identity,
    user_id: &str,
    browser: &BrowserToken,
    name: &str,
    answer: &str,
    ctx: &RequestContext,
) -> Result<String, PasskeyError> {
    let name = passkeys::clean_name(name).ok_or(PasskeyError::BadName)?;
    let rp = relying_party(identity)?;
    let (answer, challenge) =
        RegistrationAnswer::parse(answer.as_bytes()).map_err(|_| PasskeyError::Malformed)?;
    let state = take_ceremony(
        identity,
        challenge,
        browser,
        Purpose::Register,
        Some(user_id),
    )
    .await?;
    let credential = match rp.finish_registration(&state, &answer) {
        Ok(credential) => credential,
        Err(RpError::Refused(reason)) => {
            tracing::info!(user.id = %user_id, reason = %reason, "passkey registration refused");
            return Err(PasskeyError::Refused);
        }
        Err(error) => return Err(internal(&error)),
    };
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if passkeys::count(&mut tx, user_id).await? >= MAX_PER_USER {
        return Err(PasskeyError::TooMany);
    }
    let Some(id) = passkeys::insert(
        &mut tx,
        user_id,
        &credential.credential_id,
        &credential.static_state,
        &credential.dynamic_state,
        &name,
        now,
    )
    .await?
    else {
        return Err(PasskeyError::Duplicate);
    };
    crate::audit::security(identity, &mut tx, "passkey.added", user_id, Some(ctx)).await?;
    changed(identity, tx, user_id, ctx, now).await?;
    tracing::info!(user.id = %user_id, passkey.id = %id, "passkey registered");
    Ok(id)
}

/// Moves the user's `updated_at` and writes `user.updated`, then commits.
async fn changed(
    identity: &Identity,
    mut tx: latchkey_store::Tx,
    user_id: &str,
    ctx: &RequestContext,
    now: i64,
) -> Result<(), StoreError> {
    users::touch_updated(&mut tx, user_id, now).await?;
    events::emit_user(
        identity,
        &mut tx,
        EventType::UserUpdated,
        user_id,
        Some(ctx),
    )
    .await?;
    tx.commit().await
}

/// Renames one of the account's passkeys.
///
/// # Errors
/// [`PasskeyError::BadName`], [`PasskeyError::NotFound`], database failures.
pub async fn rename(
    identity: &Identity,
    user_id: &str,
    passkey_id: &str,
    name: &str,
    ctx: &RequestContext,
) -> Result<(), PasskeyError> {
    let name = passkeys::clean_name(name).ok_or(PasskeyError::BadName)?;
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if !passkeys::rename(&mut tx, user_id, passkey_id, &name, now).await? {
        return Err(PasskeyError::NotFound);
    }
    changed(identity, tx, user_id, ctx, now).await?;
    Ok(())
}

/// Removes one of the account's passkeys.
///
/// # Errors
/// [`PasskeyError::NotFound`], database failures.
pub async fn remove(
    identity: &Identity,
    user_id: &str,
    passkey_id: &str,
    ctx: &RequestContext,
) -> Result<(), PasskeyError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if !passkeys::remove(&mut tx, user_id, passkey_id).await? {
        return Err(PasskeyError::NotFound);
    }
    crate::audit::security(identity, &mut tx, "passkey.removed", user_id, Some(ctx)).await?;
    changed(identity, tx, user_id, ctx, now).await?;
    tracing::info!(user.id = %user_id, passkey.id = %passkey_id, "passkey removed");
    Ok(())
}

/// Options for the browser to sign in with any of its passkeys for this site, the ceremony
/// bound to `browser`. Counted per network in its own bucket (the sign-in page asks on every
/// load, for autofill), with the sign-in limit.
///
/// # Errors
/// [`PasskeyError::Throttled`], database failures.
pub async fn begin_sign_in(
    identity: &Identity,
    browser: &BrowserToken,
    ctx: &RequestContext,
) -> Result<serde_json::Value, PasskeyError> {
    let rp = relying_party(identity)?;
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if let Some(ip) = ctx.throttle_key() {
        let limit = identity.config().sign_in_ip_limit;
        let attempt =
            throttle::take(&mut tx, &format!("passkey-options-ip:{ip}"), limit, now).await?;
        if attempt.refused() {
            tx.commit().await?;
            return Err(PasskeyError::Throttled {
                retry_after_secs: attempt.retry_after_secs(now),
            });
        }
    }
    let started = rp.start_sign_in().map_err(|e| internal(&e))?;
    ceremony::create(
        &mut tx,
        started.challenge,
        browser,
        Purpose::SignIn,
        None,
        &started.server_state,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(started.options)
}

/// Checks the browser's answer to a sign-in and, if right, starts a session whose holder
/// proved both factors now (the passkey required user verification), ending the browser's
/// previous one.
///
/// # Errors
/// See [`PasskeyError`]; every refusal of the passkey itself is [`PasskeyError::Refused`].
pub async fn finish_sign_in(
    identity: &Identity,
    browser: &BrowserToken,
    answer: &str,
    previous: Option<&ClientToken>,
    ctx: &RequestContext,
) -> Result<SignedIn, PasskeyError> {
    let rp = relying_party(identity)?;
    let (answer, challenge) =
        SignInAnswer::parse(answer.as_bytes()).map_err(|_| PasskeyError::Malformed)?;
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let throttled = flows::take_ip_slot(identity, &mut tx, ctx, now).await?;
    tx.commit().await?;
    if let Some(retry_after_secs) = throttled {
        return Err(PasskeyError::Throttled { retry_after_secs });
    }
    let state = take_ceremony(identity, challenge, browser, Purpose::SignIn, None).await?;
    let mut tx = identity.db().begin().await?;
    let stored = passkeys::by_credential_id(&mut tx, answer.credential_id()).await?;
    tx.commit().await?;
    let Some(stored) = stored else {
        tracing::info!("passkey sign-in refused: unknown credential");
        return Err(PasskeyError::Refused);
    };
    if !bool::from(stored.user_handle.ct_eq(answer.user_handle())) {
        tracing::info!("passkey sign-in refused: user handle does not match");
        return Err(PasskeyError::Refused);
    }
    let dynamic = match rp.finish_sign_in(
        &state,
        &answer,
        &stored.static_state,
        &stored.dynamic_state,
        &stored.user_handle,
    ) {
        Ok(dynamic) => dynamic,
        Err(RpError::Refused(reason)) => {
            tracing::info!(user.id = %stored.user_id, reason = %reason, "passkey sign-in refused");
            return Err(PasskeyError::Refused);
        }
        Err(error) => return Err(internal(&error)),
    };
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let Some(user) = users::get(&mut tx, &stored.user_id).await? else {
        return Err(PasskeyError::Refused);
    };
    if user.banned_at.is_some() {
        tracing::info!(user.id = %user.id, "passkey sign-in refused: banned");
        return Err(PasskeyError::Banned);
    }
    if !passkeys::record_use(
        &mut tx,
        &stored.passkey_id,
        &stored.dynamic_state,
        &dynamic,
        now,
    )
    .await?
    {
        tracing::info!(user.id = %user.id, "passkey sign-in refused: raced by another use");
        return Err(PasskeyError::Refused);
    }
    let signed = lifecycle::open_session_with_factors(
        identity,
        tx,
        &user.id,
        previous,
        ctx,
        now,
        Some((now, now)),
    )
    .await?;
    tracing::info!(user.id = %user.id, "signed in with a passkey");
    Ok(signed)
}
