//! Signing in with an email address and a password.
//!
//! Credential failures all read the same ("the email or password is incorrect") whether the
//! address exists or not, and unknown addresses cost a full password verification against a
//! dummy hash. Attempts are counted before the password is checked, so parallel guesses cannot
//! exceed the lockout limit. An account whose address was never verified is sent a code
//! instead of a session (see `flows::sign_in_code`).

use latchkey_store::StoreError;

use crate::context::RequestContext;
use crate::flows::{Pending, RequestError};
use crate::flows::{second_factor, sign_in_code};
use crate::lockout;
use crate::mfa;
use crate::mfa::challenge::ChallengeToken;
use crate::passwords::{self, Password};
use crate::sessions::lifecycle;
use crate::sessions::{ClientToken, SignedIn};
use crate::state::Identity;
use crate::throttle::{self, Limit};
use crate::users::{self, validate};

/// How a sign-in with the right password ends.
#[derive(Debug)]
pub enum SignInOutcome {
    SignedIn(Box<SignedIn>),
    /// The account never verified its address: a code was mailed to it, to be entered at
    /// `/verify` before any session starts.
    VerifyEmail(Pending),
    /// The account has a second factor: no session yet; the browser holds this pending
    /// second step's token in its `latchkey_mfa` cookie.
    SecondFactor(ChallengeToken),
}

/// Why sign-in was refused. The messages are what people see.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("The email address or password is incorrect.")]
    InvalidCredentials,
    #[error("This account is locked after too many failed sign-in attempts. Try again in {} minutes.", minutes(*retry_after_secs))]
    Locked { retry_after_secs: u64 },
    #[error("This account is banned. Contact the site's operator.")]
    Banned,
    #[error("Too many sign-in attempts from your network. Try again in {} minutes.", minutes(*retry_after_secs))]
    Throttled { retry_after_secs: u64 },
    #[error("Too many emails were sent to this address. Try again in {} minutes.", minutes(*retry_after_secs))]
    TooManyMails { retry_after_secs: u64 },
    #[error("The service is busy; try again in a moment.")]
    Busy,
    #[error("Something went wrong on our side; it has been logged.")]
    Internal,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn minutes(seconds: u64) -> u64 {
    seconds.div_ceil(60).max(1)
}

crate::passwords::busy_or_internal!(SignInError);

/// Signs in with an email address and password, ending the browser's previous session; an
/// account whose address was never verified is sent a code instead. `redirect_url` (a
/// checked same-origin path, or empty) is kept for after the code.
///
/// # Errors
/// See [`SignInError`].
pub async fn sign_in(
    identity: &Identity,
    email_address: &str,
    password: Password,
    previous: Option<&ClientToken>,
    redirect_url: &str,
    ctx: &RequestContext,
) -> Result<SignInOutcome, SignInError> {
    let normalized = validate::email(email_address).map(|e| e.normalized).ok();
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if let Some(ip) = ctx.throttle_key() {
        let attempt = throttle::take(
            &mut tx,
            &format!("signin-ip:{ip}"),
            identity.config().sign_in_ip_limit,
            now,
        )
        .await?;
        if attempt.refused() {
            tx.commit().await?;
            return Err(SignInError::Throttled {
                retry_after_secs: attempt.retry_after_secs(now),
            });
        }
    }
    let (credentials, bucket) = match &normalized {
        Some(email) => {
            let bucket = lockout::account_bucket(identity, email);
            let attempt = throttle::take(&mut tx, &bucket, Limit::ACCOUNT_LOCKOUT, now).await?;
            if attempt.refused() {
                if attempt.number == attempt.max + 1 {
                    lockout::record_lockout(identity, &mut tx, email, ctx).await?;
                }
                tx.commit().await?;
                return Err(SignInError::Locked {
                    retry_after_secs: attempt.retry_after_secs(now),
                });
            }
            (
                users::credentials_by_email(&mut tx, email).await?,
                Some(bucket),
            )
        }
        None => (None, None),
    };
    tx.commit().await?;

    let stored = credentials
        .as_ref()
        .and_then(|c| c.password_hash.as_deref());
    // A digest from elsewhere (an import) or with older parameters is replaced by a fresh
    // argon2id hash once the password is known to be right.
    let keep_for_rehash = stored
        .is_some_and(passwords::needs_rehash)
        .then(|| password.clone());
    let matches = identity.hasher().verify(password, stored).await?;
    let Some(credentials) = credentials.filter(|_| matches) else {
        tracing::info!("sign-in refused: wrong credentials");
        let mut tx = identity.db().begin().await?;
        crate::daily::bump(&mut tx, crate::daily::Metric::SignInFailures, now).await?;
        tx.commit().await?;
        return Err(SignInError::InvalidCredentials);
    };
    if credentials.banned {
        tracing::info!(user.id = %credentials.user_id, "sign-in refused: banned");
        return Err(SignInError::Banned);
    }

    let rehashed = match (keep_for_rehash, &credentials.password_hash) {
        (Some(password), Some(old)) => match identity.hasher().hash(password).await {
            Ok(new) => Some((old.clone(), new)),
            // Busy or failing: the next sign-in tries again.
            Err(error) => {
                passwords::busy(&error);
                None
            }
        },
        _ => None,
    };

    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if let Some(bucket) = &bucket {
        throttle::clear(&mut tx, bucket).await?;
    }
    if let Some((old, new)) = &rehashed
        && users::replace_password_hash(&mut tx, &credentials.user_id, old, new.as_str()).await?
    {
        tracing::info!(user.id = %credentials.user_id, "password re-hashed with the current parameters");
    }
    if !credentials.email_verified {
        let opened =
            sign_in_code::open_sign_in_code(identity, &mut tx, &credentials, redirect_url, now)
                .await?;
        tx.commit().await?;
        return match opened {
            Ok(pending) => {
                tracing::info!(user.id = %credentials.user_id, "sign-in waits for the address to be verified");
                Ok(SignInOutcome::VerifyEmail(pending))
            }
            Err(RequestError::TooManyMails { retry_after_secs }) => {
                Err(SignInError::TooManyMails { retry_after_secs })
            }
            Err(RequestError::Store(error)) => Err(error.into()),
            Err(_) => Err(SignInError::Internal),
        };
    }
    if mfa::has_second_factor(&mut tx, &credentials.user_id).await? {
        let token =
            second_factor::open_challenge(&mut tx, &credentials.user_id, redirect_url, now).await?;
        tx.commit().await?;
        return Ok(SignInOutcome::SecondFactor(token));
    }
    let signed =
        lifecycle::open_session(identity, tx, &credentials.user_id, previous, ctx, now).await?;
    Ok(SignInOutcome::SignedIn(Box::new(signed)))
}
