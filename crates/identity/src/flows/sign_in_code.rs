//! Signing in with a mailed code: asking for one (passwordless, or after the right password on
//! an account that never verified its address), and entering it, which verifies the address
//! (if it was not yet) and starts the session. A sign-up's code ends the same way.

use latchkey_protocol::clerk::EventType;
use latchkey_store::{StoreError, Tx};

use super::{CodeError, Opening, Pending, RequestError};
use crate::context::RequestContext;
use crate::events;
use crate::flows;
use crate::flows::second_factor;
use crate::mfa;
use crate::mfa::challenge::ChallengeToken;
use crate::sessions::ClientToken;
use crate::sessions::SignedIn;
use crate::sessions::lifecycle;
use crate::state::Identity;
use crate::users::{self, Credentials, address_rows, validate};
use crate::verifications::{self, BrowserToken, Code, Key, Purpose, Verification};

/// Mails a sign-in code to `email_address` if it signs in to an account; otherwise writes
/// a stand-in and mails nothing. The answer is the same.
///
/// # Errors
/// See [`RequestError`].
pub async fn request_sign_in_code(
    identity: &Identity,
    email_address: &str,
    redirect_url: &str,
    ctx: &RequestContext,
) -> Result<Pending, RequestError> {
    request_code(identity, Purpose::SignIn, email_address, redirect_url, ctx).await
}

/// Opens a sign-in or reset verification for whatever account `email_address` signs in
/// to, or a stand-in.
pub(crate) async fn request_code(
    identity: &Identity,
    purpose: Purpose,
    email_address: &str,
    redirect_url: &str,
    ctx: &RequestContext,
) -> Result<Pending, RequestError> {
    let email = validate::email(email_address)?;
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    if let Some(retry_after_secs) = flows::take_ip_slot(identity, &mut tx, ctx, now).await? {
        tx.commit().await?;
        return Err(RequestError::Throttled { retry_after_secs });
    }
    if let Err(refused) = flows::take_mail_slot(identity, &mut tx, &email.normalized, now).await? {
        tx.commit().await?;
        return Err(refused);
    }
    let credentials = users::credentials_by_email(&mut tx, &email.normalized).await?;
    let token = BrowserToken::generate();
    let opening = match &credentials {
        Some(found) => Opening {
            purpose,
            token: Some(&token),
            user_id: Some(&found.user_id),
            email_address_id: Some(&found.email_address_id),
            address: &found.email_address,
            redirect_url,
        },
        None => Opening {
            purpose,
            token: Some(&token),
            user_id: None,
            email_address_id: None,
            address: &email.address,
            redirect_url,
        },
    };
    flows::open_verification(identity, &mut tx, opening, now).await?;
    tx.commit().await?;
    tracing::info!(purpose = purpose.as_str(), "code requested");
    Ok(Pending { token, purpose })
}

/// In `tx`: mails a sign-in code to the address `credentials` signed in with (the right
/// password on an account that never verified it).
pub(crate) async fn open_sign_in_code(
    identity: &Identity,
    tx: &mut Tx,
    credentials: &Credentials,
    redirect_url: &str,
    now: i64,
) -> Result<Result<Pending, RequestError>, StoreError> {
    let normalized = credentials.email_address.to_lowercase();
    if let Err(refused) = flows::take_mail_slot(identity, tx, &normalized, now).await? {
        return Ok(Err(refused));
    }
    let token = BrowserToken::generate();
    let opening = Opening {
        purpose: Purpose::SignInWithPassword,
        token: Some(&token),
        user_id: Some(&credentials.user_id),
        email_address_id: Some(&credentials.email_address_id),
        address: &credentials.email_address,
        redirect_url,
    };
    flows::open_verification(identity, tx, opening, now).await?;
    Ok(Ok(Pending {
        token,
        purpose: Purpose::SignInWithPassword,
    }))
}

/// The unused verification behind a browser's cookie, if any.
///
/// # Errors
/// Database failures.
pub async fn pending_verification(
    identity: &Identity,
    token: &BrowserToken,
) -> Result<Option<Verification>, StoreError> {
    let mut tx = identity.db().begin_read().await?;
    let found = verifications::find(&mut tx, Key::Token(token)).await?;
    tx.commit().await?;
    Ok(found.filter(|v| v.consumed_at.is_none()))
}

/// Sends the verification behind a browser's cookie a new code.
///
/// # Errors
/// See [`RequestError`].
pub async fn resend_code(
    identity: &Identity,
    token: &BrowserToken,
) -> Result<Purpose, RequestError> {
    flows::renew_verification(identity, Key::Token(token), identity.now_ms()).await
}

/// How a right sign-in code ends.
#[derive(Debug)]
pub enum CodeOutcome {
    /// The session started; where to go.
    SignedIn(Box<SignedIn>, String),
    /// The account has a second factor: no session yet, but this pending second step.
    SecondFactor(ChallengeToken),
}

/// Checks the code of a sign-up or sign-in; if right, verifies the address (if it was not
/// yet) and starts a session, ending the browser's previous one (or, for an account with a
/// second factor, opens its second step). Returns the session and where to go.
///
/// # Errors
/// See [`CodeError`]. A wrong code still counts.
pub async fn sign_in_with_code(
    identity: &Identity,
    token: &BrowserToken,
    code: &str,
    previous: Option<&ClientToken>,
    ctx: &RequestContext,
) -> Result<CodeOutcome, CodeError> {
    let code = Code::parse(code).ok_or(CodeError::Malformed)?;
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    match verifications::find(&mut tx, Key::Token(token)).await? {
        Some(v)
            if matches!(
                v.purpose,
                Purpose::SignUp | Purpose::SignIn | Purpose::SignInWithPassword
            ) => {}
        _ => return Err(CodeError::Ended),
    }
    if let Some(retry_after_secs) = flows::take_ip_slot(identity, &mut tx, ctx, now).await? {
        tx.commit().await?;
        return Err(CodeError::Throttled { retry_after_secs });
    }
    let verification =
        match flows::check_code(identity, &mut tx, Key::Token(token), &code, now).await? {
            Ok(verification) => verification,
            Err(refused) => {
                tx.commit().await?;
                return Err(refused);
            }
        };
    let user = match &verification.user_id {
        Some(id) => users::get(&mut tx, id).await?,
        None => None,
    };
    let Some(user) = user else {
        return Err(CodeError::Ended);
    };
    if user.banned_at.is_some() {
        tx.commit().await?;
        tracing::info!(user.id = %user.id, "code sign-in refused: banned");
        return Err(CodeError::Banned);
    }
    if let Some(email_id) = &verification.email_address_id
        && address_rows::mark_verified(&mut tx, email_id, verification.attempts, now)
            .await?
            .is_some()
    {
        // An account whose primary address was never verified was made by someone who
        // never proved it was theirs, and so was its password: whoever proves the address
        // by code alone takes the account over without it, or the maker could sign in
        // later with the password they chose (account pre-hijacking). A password given in
        // this same flow (`SignInWithPassword`) or at sign-up is the prover's and stays.
        if verification.purpose == Purpose::SignIn
            && user.has_password
            && user.primary_email_address_id.as_deref() == Some(email_id.as_str())
        {
            users::set_password(&mut tx, &user.id, None, now)
                .await
                .map_err(|error| match error {
                    users::AccountError::Store(error) => CodeError::Store(error),
                    _ => CodeError::Ended,
                })?;
            tracing::info!(user.id = %user.id, "password of an unproven account removed");
        }
        events::emit_user(
            identity,
            &mut tx,
            EventType::UserUpdated,
            &user.id,
            Some(ctx),
        )
        .await?;
        tracing::info!(user.id = %user.id, "email address verified");
    }
    if mfa::has_second_factor(&mut tx, &user.id).await? {
        let token =
            second_factor::open_challenge(&mut tx, &user.id, &verification.redirect_url, now)
                .await?;
        tx.commit().await?;
        return Ok(CodeOutcome::SecondFactor(token));
    }
    let signed = lifecycle::open_session(identity, tx, &user.id, previous, ctx, now).await?;
    Ok(CodeOutcome::SignedIn(
        Box::new(signed),
        verification.redirect_url,
    ))
}
