//! Sign-up: the account is created with its address unverified and no session; the mailed code
//! (see `sign_in`) verifies the address and starts the session.
//!
//! An address that already has an account gets exactly the same answer ("we sent a code"), a
//! stand-in verification, and a password hash computed all the same; its owner is mailed a
//! notice instead of a code. So the form cannot be used to learn who has an account.

use latchkey_protocol::clerk::EventType;
use latchkey_store::StoreError;

use super::{Opening, Pending, RequestError};
use crate::context::RequestContext;
use crate::events;
use crate::flows;
use crate::mail;
use crate::mail::MailKind;
use crate::passwords::{Password, PolicyError, check_new_password};
use crate::state::Identity;
use crate::throttle;
use crate::users::{self, AccountError, NewUser, address_rows, validate};
use crate::verifications::{self, BrowserToken, Purpose};

/// What the sign-up form collects.
#[derive(Debug)]
pub struct SignUp {
    pub email_address: String,
    pub password: Password,
    pub first_name: String,
    pub last_name: String,
    /// Where to go once verified: a same-origin path (checked by the caller), or empty.
    pub redirect_url: String,
}

/// Why sign-up was refused. None of these depends on whether the address has an account.
#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("{0}")]
    Field(#[from] validate::FieldError),
    #[error("{0}")]
    Password(#[from] PolicyError),
    #[error("Too many accounts were created from your network. Try again in {} minutes.", super::minutes(*retry_after_secs))]
    Throttled { retry_after_secs: u64 },
    #[error("Too many emails were sent to this address. Try again in {} minutes.", super::minutes(*retry_after_secs))]
    TooManyMails { retry_after_secs: u64 },
    #[error("The service is busy; try again in a moment.")]
    Busy,
    #[error("Something went wrong on our side; it has been logged.")]
    Internal,
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::passwords::busy_or_internal!(SignUpError);

/// Checked sign-up fields.
struct Checked {
    email: validate::Email,
    first_name: Option<String>,
    last_name: Option<String>,
    redirect_url: String,
}

/// Creates an unverified account and mails its code, or, if the address is taken, mails
/// its owner a notice; the answer is the same.
///
/// # Errors
/// See [`SignUpError`]; nothing is written on error.
pub async fn sign_up(
    identity: &Identity,
    form: SignUp,
    ctx: &RequestContext,
) -> Result<Pending, SignUpError> {
    let email = validate::email(&form.email_address)?;
    let first_name = validate::name("first_name", &form.first_name)?;
    let last_name = validate::name("last_name", &form.last_name)?;
    let local_part = email
        .normalized
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    check_new_password(form.password.expose(), &[&email.normalized, &local_part])?;

    if let Some(ip) = ctx.throttle_key() {
        let now = identity.now_ms();
        let mut tx = identity.db().begin().await?;
        let attempt = throttle::take(
            &mut tx,
            &format!("signup-ip:{ip}"),
            identity.config().sign_up_ip_limit,
            now,
        )
        .await?;
        tx.commit().await?;
        if attempt.refused() {
            return Err(SignUpError::Throttled {
                retry_after_secs: attempt.retry_after_secs(now),
            });
        }
    }
    // Hashed whether or not the address is taken, so both answers take as long.
    let hash = identity.hasher().hash(form.password).await?.into_string();
    let checked = Checked {
        email,
        first_name,
        last_name,
        redirect_url: form.redirect_url,
    };
    // A parallel sign-up may take the address between the look-up and the insert; the
    // second round then finds it taken.
    for _ in 0..2 {
        if let Some(pending) = write_sign_up(identity, &checked, &hash, ctx).await? {
            return Ok(pending);
        }
    }
    Err(SignUpError::Store(StoreError::Invariant(
        "an address was taken and released during one sign-up".to_owned(),
    )))
}

/// One attempt at the sign-up's transaction; `None` if the address was taken meanwhile.
async fn write_sign_up(
    identity: &Identity,
    checked: &Checked,
    hash: &str,
    ctx: &RequestContext,
) -> Result<Option<Pending>, SignUpError> {
    let email = &checked.email;
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if let Err(refused) = flows::take_mail_slot(identity, &mut tx, &email.normalized, now).await? {
        tx.commit().await?;
        return Err(match refused {
            RequestError::TooManyMails { retry_after_secs } => {
                SignUpError::TooManyMails { retry_after_secs }
            }
            _ => SignUpError::Internal,
        });
    }
    release_stale_address(identity, &mut tx, &email.normalized, now).await?;
    let token = BrowserToken::generate();
    let mut opening = Opening {
        purpose: Purpose::SignUp,
        token: Some(&token),
        user_id: None,
        email_address_id: None,
        address: &email.address,
        redirect_url: &checked.redirect_url,
    };
    if let Some(owner) = address_rows::owner(&mut tx, &email.normalized).await? {
        flows::open_verification(identity, &mut tx, opening, now).await?;
        mail::queue_mail(
            identity,
            &mut tx,
            &owner.email_address,
            Some(&owner.user_id),
            &MailKind::AccountExists,
        )
        .await?;
        tx.commit().await?;
        tracing::info!("sign-up for an address that has an account; its owner was told");
        return Ok(Some(Pending {
            token,
            purpose: Purpose::SignUp,
        }));
    }
    let new = NewUser {
        id: None,
        created_at: None,
        email: Some(email.clone()),
        password_hash: Some(hash.to_owned()),
        first_name: checked.first_name.clone(),
        last_name: checked.last_name.clone(),
        ..NewUser::default()
    };
    let user = match users::create(&mut tx, new, now).await {
        Ok(user) => user,
        Err(AccountError::EmailTaken) => return Ok(None),
        Err(AccountError::Store(e)) => return Err(e.into()),
        Err(AccountError::UsernameTaken | AccountError::NotFound) => {
            return Err(SignUpError::Internal);
        }
    };
    opening.user_id = Some(&user.id);
    opening.email_address_id = user.primary_email_address_id.as_deref();
    flows::open_verification(identity, &mut tx, opening, now).await?;
    events::emit_user(
        identity,
        &mut tx,
        EventType::UserCreated,
        &user.id,
        Some(ctx),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user.id = %user.id, "account created; waiting for its address to be verified");
    Ok(Some(Pending {
        token,
        purpose: Purpose::SignUp,
    }))
}

/// Frees `normalized` if someone added it but never verified it in time (see
/// [`address_rows::release_if_stale`]), telling the holder's receivers.
pub(crate) async fn release_stale_address(
    identity: &Identity,
    tx: &mut latchkey_store::Tx,
    normalized: &str,
    now: i64,
) -> Result<(), StoreError> {
    if let Some((holder, email_id)) = address_rows::release_if_stale(tx, normalized, now).await? {
        verifications::detach_address(tx, &email_id).await?;
        events::emit_user(identity, tx, EventType::UserUpdated, &holder, None).await?;
        tracing::info!(user.id = %holder, "released an address its holder never verified");
    }
    Ok(())
}
