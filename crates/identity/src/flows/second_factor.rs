//! Using second factors: the second step of a sign-in and step-up (re-proving a factor before a
//! sensitive change); enrolling and removing them is in `factor_enrolment`.
//!
//! Every code typed counts before it is checked: once on the pending sign-in (5 attempts) and
//! once in the account's own bucket (10 an hour), each a single atomic statement, so parallel
//! guesses cannot exceed either limit. A right first factor does not reset the account's bucket
//! (only a right second factor does), so knowing the password buys no extra guesses.

use latchkey_protocol::clerk::EventType;
use latchkey_store::{StoreError, Tx};

use crate::context::RequestContext;
use crate::events;
use crate::flows;
use crate::mfa::challenge::{self, ChallengeToken, Refused};
use crate::mfa::{self, Proved, backup, totp};
use crate::passwords::Password;
use crate::sessions::lifecycle;
use crate::sessions::{ClientToken, SessionRecord, SignedIn};
use crate::state::Identity;
use crate::throttle::{self, Limit};
use crate::users;

/// Why a second factor (or a step-up) was refused. The messages are what people see.
#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("Enter the 6-digit code from your authenticator app, or a backup code.")]
    Malformed,
    #[error("That code is incorrect. {}", tries(*remaining))]
    Wrong { remaining: i64 },
    #[error("That code was already used. Wait for the next one.")]
    Replayed,
    #[error("The password is incorrect.")]
    WrongPassword,
    #[error("Too many wrong codes. Sign in again.")]
    TooManyAttempts,
    #[error("Too many wrong attempts for this account. Try again in {} minutes.", minutes(*retry_after_secs))]
    Locked { retry_after_secs: u64 },
    #[error("Too many attempts from your network. Try again in {} minutes.", minutes(*retry_after_secs))]
    Throttled { retry_after_secs: u64 },
    #[error("This sign-in has ended. Start again.")]
    Ended,
    #[error("This account is banned. Contact the site's operator.")]
    Banned,
    #[error("An authenticator app is already set up. Remove it first.")]
    AlreadyEnrolled,
    #[error("No authenticator app is set up.")]
    NotEnrolled,
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

fn tries(n: i64) -> String {
    match n {
        0 => "No tries left.".to_owned(),
        1 => "1 try left.".to_owned(),
        n => format!("{n} tries left."),
    }
}

crate::passwords::busy_or_internal!(FactorError);

/// Which second factor a code proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Totp,
    BackupCode,
}

/// The account's bucket of second-factor attempts (10 an hour).
pub(super) fn account_bucket(user_id: &str) -> String {
    format!("mfa:{user_id}")
}

/// Counts one second-factor attempt against the account; `Err` if over the limit.
pub(super) async fn take_account_slot(
    tx: &mut Tx,
    user_id: &str,
    now: i64,
) -> Result<Result<i64, FactorError>, StoreError> {
    let attempt = throttle::take(tx, &account_bucket(user_id), Limit::ACCOUNT_LOCKOUT, now).await?;
    Ok(if attempt.refused() {
        Err(FactorError::Locked {
            retry_after_secs: attempt.retry_after_secs(now),
        })
    } else {
        Ok(attempt.remaining())
    })
}

/// Whether `typed` has the shape of a TOTP code or a backup code.
fn well_formed(typed: &str) -> bool {
    let compact: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    totp::looks_like_code(&compact) || backup::normalize(typed).is_some()
}

/// In `tx`: checks `typed` against the account's confirmed app (spending its step) or its
/// unused backup codes (spending the code). The attempt must already be counted.
async fn check_factor(
    identity: &Identity,
    tx: &mut Tx,
    user_id: &str,
    typed: &str,
    now: i64,
) -> Result<Result<Factor, FactorError>, StoreError> {
    let compact: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if totp::looks_like_code(&compact) {
        let Some(row) = mfa::totp_of(tx, user_id).await? else {
            return Ok(Err(FactorError::NotEnrolled));
        };
        if row.confirmed_at.is_none() {
            return Ok(Err(FactorError::NotEnrolled));
        }
        let Ok(secret) = mfa::open(identity.master(), user_id, &row.secret_sealed) else {
            tracing::error!(user.id = %user_id, "an authenticator secret cannot be opened");
            return Ok(Err(FactorError::Internal));
        };
        return Ok(match secret.matching_step(&compact, now.div_euclid(1000)) {
            None => Err(FactorError::Wrong { remaining: 0 }),
            Some(step) if mfa::spend_step(tx, user_id, step).await? => Ok(Factor::Totp),
            Some(_) => Err(FactorError::Replayed),
        });
    }
    let Some(normalized) = backup::normalize(typed) else {
        return Ok(Err(FactorError::Malformed));
    };
    let hash = backup::hash(identity.code_key(), user_id, &normalized);
    Ok(if mfa::spend_backup_code(tx, user_id, &hash, now).await? {
        Ok(Factor::BackupCode)
    } else {
        Err(FactorError::Wrong { remaining: 0 })
    })
}

/// In `tx`: a pending second step for `user_id`, whose first factor was proved at `now`.
pub(crate) async fn open_challenge(
    tx: &mut Tx,
    user_id: &str,
    redirect_url: &str,
    now: i64,
) -> Result<ChallengeToken, StoreError> {
    let token = challenge::create(tx, user_id, redirect_url, now, now).await?;
    tracing::info!(user.id = %user_id, "sign-in waits for a second factor");
    Ok(token)
}

/// The open pending second step behind a browser's cookie, if any.
///
/// # Errors
/// Database failures.
pub async fn pending_sign_in(
    identity: &Identity,
    token: &ChallengeToken,
) -> Result<Option<challenge::Pending>, StoreError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin_read().await?;
    let found = challenge::find(&mut tx, token).await?;
    tx.commit().await?;
    Ok(found.filter(|p| {
        p.consumed_at.is_none() && p.expire_at > now && p.attempts < challenge::MAX_ATTEMPTS
    }))
}

/// Checks the second factor of a pending sign-in; if right, starts the session (ending the
/// browser's previous one). Returns it with where to go.
///
/// # Errors
/// See [`FactorError`]. A wrong code still counts.
pub async fn complete_sign_in(
    identity: &Identity,
    token: &ChallengeToken,
    typed: &str,
    previous: Option<&ClientToken>,
    ctx: &RequestContext,
) -> Result<(SignedIn, String), FactorError> {
    if !well_formed(typed) {
        return Err(FactorError::Malformed);
    }
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if challenge::find(&mut tx, token).await?.is_none() {
        return Err(FactorError::Ended);
    }
    if let Some(retry_after_secs) = flows::take_ip_slot(identity, &mut tx, ctx, now).await? {
        tx.commit().await?;
        return Err(FactorError::Throttled { retry_after_secs });
    }
    let pending = match challenge::take_attempt(&mut tx, token, now).await? {
        Ok(pending) => pending,
        Err(refused) => {
            tx.commit().await?;
            return Err(match refused {
                Refused::TooManyAttempts => FactorError::TooManyAttempts,
                Refused::NotFound | Refused::Used | Refused::Expired => FactorError::Ended,
            });
        }
    };
    let account_left = match take_account_slot(&mut tx, &pending.user_id, now).await? {
        Ok(left) => left,
        Err(locked) => {
            tx.commit().await?;
            return Err(locked);
        }
    };
    let factor = match check_factor(identity, &mut tx, &pending.user_id, typed, now).await? {
        Ok(factor) => factor,
        Err(FactorError::Wrong { .. }) => {
            tx.commit().await?;
            tracing::info!(user.id = %pending.user_id, "second factor refused: wrong code");
            return Err(FactorError::Wrong {
                remaining: pending.attempts_left().min(account_left),
            });
        }
        Err(refused) => {
            tx.commit().await?;
            tracing::info!(user.id = %pending.user_id, "second factor refused");
            return Err(refused);
        }
    };
    if !challenge::consume(&mut tx, token, now).await? {
        return Err(FactorError::Ended);
    }
    let Some(user) = users::get(&mut tx, &pending.user_id).await? else {
        return Err(FactorError::Ended);
    };
    if user.banned_at.is_some() {
        tx.commit().await?;
        return Err(FactorError::Banned);
    }
    throttle::clear(&mut tx, &account_bucket(&user.id)).await?;
    if factor == Factor::BackupCode {
        users::touch_updated(&mut tx, &user.id, now).await?;
        events::emit_user(
            identity,
            &mut tx,
            EventType::UserUpdated,
            &user.id,
            Some(ctx),
        )
        .await?;
        tracing::info!(user.id = %user.id, "backup code used");
    }
    let signed = lifecycle::open_session_with_factors(
        identity,
        tx,
        &user.id,
        previous,
        ctx,
        now,
        Some((pending.first_factor_at, now)),
    )
    .await?;
    Ok((signed, pending.redirect_url))
}

/// Whether the session's holder proved a factor recently enough for a sensitive change.
#[must_use]
pub fn recently_verified(identity: &Identity, session: &SessionRecord) -> bool {
    identity.now_ms() - session.last_factor_ms() <= mfa::STEP_UP_MS
}

/// Step-up: the session's holder proves a factor again now, by password or by a second
/// factor's code.
///
/// # Errors
/// See [`FactorError`]. A wrong password or code still counts.
pub async fn reverify(
    identity: &Identity,
    session: &SessionRecord,
    password: Option<Password>,
    code: Option<&str>,
) -> Result<Proved, FactorError> {
    let user_id = &session.user_id;
    let now = identity.now_ms();
    if let Some(code) = code {
        if !well_formed(code) {
            return Err(FactorError::Malformed);
        }
        let mut tx = identity.db().begin().await?;
        let left = match take_account_slot(&mut tx, user_id, now).await? {
            Ok(left) => left,
            Err(locked) => {
                tx.commit().await?;
                return Err(locked);
            }
        };
        let factor = match check_factor(identity, &mut tx, user_id, code, now).await? {
            Ok(factor) => factor,
            Err(FactorError::Wrong { .. }) => {
                tx.commit().await?;
                return Err(FactorError::Wrong { remaining: left });
            }
            Err(refused) => {
                tx.commit().await?;
                return Err(refused);
            }
        };
        throttle::clear(&mut tx, &account_bucket(user_id)).await?;
        mfa::mark_session(&mut tx, &session.id, Proved::Second, now).await?;
        if factor == Factor::BackupCode {
            users::touch_updated(&mut tx, user_id, now).await?;
            events::emit_user(identity, &mut tx, EventType::UserUpdated, user_id, None).await?;
        }
        tx.commit().await?;
        tracing::info!(user.id = %user_id, "step-up by second factor");
        return Ok(Proved::Second);
    }
    let Some(password) = password else {
        return Err(FactorError::WrongPassword);
    };
    // The password change's own bucket: a stolen session cannot guess the password here
    // any faster than there.
    let bucket = format!("change-password:{user_id}");
    let mut tx = identity.db().begin().await?;
    let stored = users::password_hash(&mut tx, user_id).await?;
    let attempt = throttle::take(&mut tx, &bucket, Limit::ACCOUNT_LOCKOUT, now).await?;
    tx.commit().await?;
    if attempt.refused() {
        return Err(FactorError::Locked {
            retry_after_secs: attempt.retry_after_secs(now),
        });
    }
    let Some(stored) = stored else {
        return Err(FactorError::WrongPassword);
    };
    if !identity.hasher().verify(password, Some(&stored)).await? {
        tracing::info!(user.id = %user_id, "step-up refused: wrong password");
        return Err(FactorError::WrongPassword);
    }
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    throttle::clear(&mut tx, &bucket).await?;
    mfa::mark_session(&mut tx, &session.id, Proved::First, now).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, "step-up by password");
    Ok(Proved::First)
}
