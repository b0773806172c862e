//! The use cases: what people and operators do with accounts, one module each. Every one takes
//! the [`Identity`] as its context and commits each change in one transaction with its events.
//!
//! - `sign_up`, `sign_in` (password), `sign_in_code`, `reset`: getting in.
//! - `addresses`: adding, verifying, choosing and removing email addresses.
//! - `account`: the profile, the password, deleting the account.
//! - `second_factor`, `factor_enrolment`: the second step of a sign-in and step-up; enrolling
//!   authenticator apps, backup codes, removing them.
//! - `admin`, `admin_changes`: what the CLI and the management API do to accounts;
//!   `operators`: who may use the console; `console`: what operators do there.
//! - `import`: accounts moved in from Clerk, keeping their ids and password digests.
//! - `social`: signing in and up through Google, Microsoft or any OpenID Connect provider.
//! - `shadow`: accounts kept current from Clerk's webhooks until the issuer switches.
//!
//! Several go through a mailed code: verified sign-up, sign-in by code (and a password sign-in
//! of an account that never verified its address), password reset, and adding an address. What
//! they share lives here: opening a verification and mailing its code, checking a typed code,
//! and the per-address limit on mail.
//!
//! None of them tells whether an address has an account. An unknown address (or, at sign-up, a
//! taken one) gets a stand-in verification written the same way in the same transaction shape,
//! and the same answer; only the mail differs, which only the address's owner can read.

pub mod account;
pub mod addresses;
pub mod admin;
pub mod admin_changes;
pub mod console;
pub mod factor_enrolment;
pub mod import;
pub mod operators;
pub mod passkeys;
pub mod reset;
pub mod second_factor;
pub mod shadow;
pub mod sign_in;
pub mod sign_in_code;
pub mod sign_up;
pub mod social;

use hmac::{KeyInit as _, Mac as _};
use latchkey_store::{StoreError, Tx};
use subtle::ConstantTimeEq as _;

use crate::context::RequestContext;
use crate::mail::MailKind;
use crate::passwords::PolicyError;
use crate::state::Identity;
use crate::throttle::{self, Limit};
use crate::users::{self, validate};
use crate::verifications::{self, BrowserToken, Code, Key, NewVerification, Purpose, Refused};

use crate::mail;
pub use addresses::{EmailError, MAX_PENDING};
pub use sign_up::{SignUp, SignUpError};

/// An email address id no row has (ids are `idn_` + random): what a stand-in's statements
/// touch.
const STAND_IN_EMAIL_ID: &str = "idn_stand_in";

/// Who a code goes to, and what for.
struct Recipient<'a> {
    purpose: Purpose,
    user_id: Option<&'a str>,
    /// `None` for a stand-in.
    email_address_id: Option<&'a str>,
    address: &'a str,
    expire_at: i64,
}

/// The cookie that ties a pending verification to the browser that asked for it.
pub const VERIFICATION_COOKIE: &str = "latchkey_verification";

/// Mail to one address: at most 5 an hour, counted whether or not it has an account. With 5
/// attempts a code, that bounds guessing to 25 tries an hour against any one address.
pub const MAILS_PER_ADDRESS: Limit = Limit {
    max: 5,
    window_ms: 60 * 60 * 1000,
};

/// A code is on its way (or, for a stand-in, seems to be); the browser keeps `token` in its
/// verification cookie to enter it.
#[derive(Debug)]
pub struct Pending {
    pub token: BrowserToken,
    pub purpose: Purpose,
}

fn minutes(seconds: u64) -> u64 {
    seconds.div_ceil(60).max(1)
}

/// Why asking for a code was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    Field(#[from] validate::FieldError),
    #[error("Too many emails were sent to this address. Try again in {} minutes.", minutes(*retry_after_secs))]
    TooManyMails { retry_after_secs: u64 },
    #[error("Too many attempts from your network. Try again in {} minutes.", minutes(*retry_after_secs))]
    Throttled { retry_after_secs: u64 },
    #[error("This request has ended. Start again.")]
    Ended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a typed code was refused.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("Enter the 6-digit code from the email.")]
    Malformed,
    #[error("That code is incorrect. {}", tries(*remaining))]
    Wrong { remaining: i64 },
    #[error("That code has expired. Send a new one.")]
    Expired,
    #[error("Too many wrong codes. Send a new one.")]
    TooManyAttempts,
    #[error("That code was already used.")]
    Used,
    #[error("This request has ended. Start again.")]
    Ended,
    #[error("This account is banned. Contact the site's operator.")]
    Banned,
    #[error("{0}")]
    Password(#[from] PolicyError),
    #[error("Too many attempts from your network. Try again in {} minutes.", minutes(*retry_after_secs))]
    Throttled { retry_after_secs: u64 },
    #[error("The service is busy; try again in a moment.")]
    Busy,
    #[error("Something went wrong on our side; it has been logged.")]
    Internal,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn tries(n: i64) -> String {
    match n {
        0 => "Send a new one.".to_owned(),
        1 => "1 try left.".to_owned(),
        n => format!("{n} tries left."),
    }
}

crate::passwords::busy_or_internal!(CodeError);

/// What a new verification is for and where its code goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opening<'a> {
    pub purpose: Purpose,
    pub token: Option<&'a BrowserToken>,
    pub user_id: Option<&'a str>,
    /// The address verified; `None` opens a stand-in, whose code is mailed to nobody.
    pub email_address_id: Option<&'a str>,
    pub address: &'a str,
    pub redirect_url: &'a str,
}

fn code_hash(identity: &Identity, verification_id: &str, code: &Code) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(identity.code_key())
        .expect("HMAC takes any key length");
    mac.update(b"latchkey code v1\0");
    mac.update(verification_id.as_bytes());
    mac.update(b"\0");
    mac.update(code.expose().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn code_lifetime_ms(identity: &Identity, purpose: Purpose) -> i64 {
    let config = &identity.config();
    match purpose {
        Purpose::ResetPassword => config.reset_code_lifetime_ms,
        _ => config.email_code_lifetime_ms,
    }
}

/// The throttle bucket of mail to an address: keyed, so the table holds no addresses.
fn mail_bucket(identity: &Identity, normalized: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(identity.throttle_key())
        .expect("HMAC takes any key length");
    mac.update(b"mail\0");
    mac.update(normalized.as_bytes());
    format!("mail:{}", hex::encode(mac.finalize().into_bytes()))
}

/// Counts one mail to `normalized`, known address or not.
pub(crate) async fn take_mail_slot(
    identity: &Identity,
    tx: &mut Tx,
    normalized: &str,
    now: i64,
) -> Result<Result<(), RequestError>, StoreError> {
    let attempt = throttle::take(
        tx,
        &mail_bucket(identity, normalized),
        MAILS_PER_ADDRESS,
        now,
    )
    .await?;
    Ok(if attempt.refused() {
        Err(RequestError::TooManyMails {
            retry_after_secs: attempt.retry_after_secs(now),
        })
    } else {
        Ok(())
    })
}

/// Counts one sign-in-like attempt from the client's address.
pub(crate) async fn take_ip_slot(
    identity: &Identity,
    tx: &mut Tx,
    ctx: &RequestContext,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    let Some(ip) = ctx.throttle_key() else {
        return Ok(None);
    };
    let attempt = throttle::take(
        tx,
        &format!("signin-ip:{ip}"),
        identity.config().sign_in_ip_limit,
        now,
    )
    .await?;
    Ok(attempt.refused().then(|| attempt.retry_after_secs(now)))
}

/// Writes a verification with a fresh code and, unless it is a stand-in, mails the code.
pub(crate) async fn open_verification(
    identity: &Identity,
    tx: &mut Tx,
    opening: Opening<'_>,
    now: i64,
) -> Result<(), StoreError> {
    let id = latchkey_protocol::id::new_id(verifications::PREFIX);
    let code = Code::generate();
    let code_hash = code_hash(identity, &id, &code);
    let expire_at = now + code_lifetime_ms(identity, opening.purpose);
    let new = NewVerification {
        id: &id,
        purpose: opening.purpose,
        token: opening.token,
        user_id: opening.user_id,
        email_address_id: opening.email_address_id,
        email_address: opening.address,
        code_hash: &code_hash,
        expire_at,
        redirect_url: opening.redirect_url,
    };
    verifications::create(tx, &new, now).await?;
    let to = Recipient {
        purpose: opening.purpose,
        user_id: opening.user_id,
        email_address_id: opening.email_address_id,
        address: opening.address,
        expire_at,
    };
    send_code(identity, tx, &to, &code).await
}

/// In `tx`: marks the address as sent a code and mails `code` to it. A stand-in (no
/// address id) runs the same statements, on no address and with its mail withheld, so the
/// answer for an unknown address takes as long as for a known one.
async fn send_code(
    identity: &Identity,
    tx: &mut Tx,
    to: &Recipient<'_>,
    code: &Code,
) -> Result<(), StoreError> {
    if to.purpose != Purpose::ResetPassword {
        let email_id = to.email_address_id.unwrap_or(STAND_IN_EMAIL_ID);
        users::address_rows::code_sent(tx, email_id, to.expire_at).await?;
    }
    let mail = code_mail(to.purpose, code);
    if to.email_address_id.is_some() {
        mail::queue_mail(identity, tx, to.address, to.user_id, &mail).await
    } else {
        mail::withhold_mail(identity, tx, to.address, &mail).await
    }
}

/// Gives the verification behind `key` a new code (mailed unless it is a stand-in), after
/// counting a mail to its address.
pub(crate) async fn renew_verification(
    identity: &Identity,
    key: Key<'_>,
    now: i64,
) -> Result<Purpose, RequestError> {
    let mut tx = identity.db().begin().await?;
    let Some(found) = verifications::find(&mut tx, key).await? else {
        return Err(RequestError::Ended);
    };
    if found.consumed_at.is_some() {
        return Err(RequestError::Ended);
    }
    let normalized = found.email_address.to_lowercase();
    if let Err(refused) = take_mail_slot(identity, &mut tx, &normalized, now).await? {
        tx.commit().await?;
        return Err(refused);
    }
    let code = Code::generate();
    let expire_at = now + code_lifetime_ms(identity, found.purpose);
    let renewed = verifications::renew(
        &mut tx,
        key,
        &code_hash(identity, &found.id, &code),
        expire_at,
        now,
    )
    .await?
    .ok_or(RequestError::Ended)?;
    let to = Recipient {
        purpose: renewed.purpose,
        user_id: renewed.user_id.as_deref(),
        email_address_id: renewed.email_address_id.as_deref(),
        address: &renewed.email_address,
        expire_at,
    };
    send_code(identity, &mut tx, &to, &code).await?;
    tx.commit().await?;
    tracing::info!(verification.id = %renewed.id, "code sent again");
    Ok(renewed.purpose)
}

/// Takes an attempt at the verification behind `key` and checks `code`, spending the
/// verification if it matches. `Ok(Err(_))` leaves the counted attempt in `tx`: the caller
/// must commit it.
pub(crate) async fn check_code(
    identity: &Identity,
    tx: &mut Tx,
    key: Key<'_>,
    code: &Code,
    now: i64,
) -> Result<Result<verifications::Verification, CodeError>, StoreError> {
    let taken = match verifications::take_attempt(tx, key, now).await? {
        Ok(taken) => taken,
        Err(refused) => {
            return Ok(Err(match refused {
                Refused::NotFound => CodeError::Ended,
                Refused::Used => CodeError::Used,
                Refused::Expired => CodeError::Expired,
                Refused::TooManyAttempts => CodeError::TooManyAttempts,
            }));
        }
    };
    let verification = taken.verification;
    let expected = code_hash(identity, &verification.id, code);
    let matches: bool = expected.as_bytes().ct_eq(taken.code_hash.as_bytes()).into();
    // A stand-in's code went to nobody: even a lucky guess verifies nothing.
    if !matches || verification.email_address_id.is_none() {
        if let Some(email_id) = &verification.email_address_id {
            users::address_rows::record_attempts(tx, email_id, verification.attempts).await?;
        }
        return Ok(Err(CodeError::Wrong {
            remaining: verification.attempts_left(),
        }));
    }
    if !verifications::consume(tx, &verification.id, now).await? {
        return Ok(Err(CodeError::Used));
    }
    Ok(Ok(verification))
}

/// The mail that carries a code for `purpose`.
fn code_mail(purpose: Purpose, code: &Code) -> MailKind<'_> {
    match purpose {
        Purpose::SignUp => MailKind::SignUpCode(code),
        Purpose::SignIn | Purpose::SignInWithPassword => MailKind::SignInCode(code),
        Purpose::ResetPassword => MailKind::ResetCode(code),
        Purpose::AddEmail => MailKind::AddEmailCode(code),
    }
}
