//! What people do with their accounts: sign in, sign out, change their profile and password,
//! manage sessions, delete the account (sign-up and the other flows that go through a mailed
//! code are in `flows`). Pages, the CLI and the management API call
//! these; each change commits in one transaction.
//!
//! Credential failures all read the same ("the email or password is incorrect") whether the
//! address exists or not, and unknown addresses cost a full password verification against a
//! dummy hash. Attempts are counted before the password is checked, so parallel guesses cannot
//! exceed the lockout limit.

use hmac::{KeyInit as _, Mac as _};
use latchkey_protocol::clerk::EventType;
use latchkey_store::StoreError;

use crate::context::RequestContext;
use crate::events::SessionEvent;
use crate::flows::{Pending, RequestError};
use crate::passwords::{HashError, Password, PolicyError, check_new_password};
use crate::sessions::{self, ClientToken, EndReason, SessionRecord};
use crate::state::Identity;
use crate::throttle::{self, Limit};
use crate::users::{self, AccountError, ProfileChange, UserRecord, validate};

/// A fresh session and what the browser needs to hold it.
#[derive(Debug)]
pub struct SignedIn {
    pub user_id: String,
    pub session: SessionRecord,
    pub client_token: ClientToken,
    pub session_token: String,
}

/// How a sign-in with the right password ends.
#[derive(Debug)]
pub enum SignInOutcome {
    SignedIn(Box<SignedIn>),
    /// The account never verified its address: a code was mailed to it, to be entered at
    /// `/verify` before any session starts.
    VerifyEmail(Pending),
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

/// Logs a hashing failure that is not just a full queue: a corrupt stored hash or a broken
/// worker is a bug to look at.
fn hash_failure(error: &HashError) {
    if !matches!(error, HashError::Busy | HashError::Stopped) {
        tracing::error!(error = %error, "password hashing failed");
    }
}

fn session_event(reason: EndReason) -> SessionEvent {
    match reason {
        EndReason::Ended => SessionEvent::Ended,
        EndReason::Revoked => SessionEvent::Revoked,
        EndReason::Removed => SessionEvent::Removed,
    }
}

fn minutes(seconds: u64) -> u64 {
    seconds.div_ceil(60).max(1)
}

impl From<HashError> for SignInError {
    fn from(error: HashError) -> Self {
        hash_failure(&error);
        match error {
            HashError::Busy | HashError::Stopped => Self::Busy,
            _ => Self::Internal,
        }
    }
}

impl From<HashError> for ChangeError {
    fn from(error: HashError) -> Self {
        hash_failure(&error);
        match error {
            HashError::Busy | HashError::Stopped => Self::Busy,
            _ => Self::Internal,
        }
    }
}

impl From<AccountError> for ChangeError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::UsernameTaken => Self::UsernameTaken,
            AccountError::NotFound | AccountError::EmailTaken => Self::NotFound,
            AccountError::Store(e) => Self::Store(e),
        }
    }
}

impl Identity {
    /// The lockout bucket of an email address: keyed, so the table holds no addresses.
    pub(crate) fn account_bucket(&self, normalized_email: &str) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.inner.throttle_key)
            .expect("any key length");
        mac.update(normalized_email.as_bytes());
        let digest = hex::encode(mac.finalize().into_bytes());
        format!("account:{digest}")
    }

    /// Signs in with an email address and password, ending the browser's previous session; an
    /// account whose address was never verified is sent a code instead. `redirect_url` (a
    /// checked same-origin path, or empty) is kept for after the code.
    ///
    /// # Errors
    /// See [`SignInError`].
    pub async fn sign_in(
        &self,
        email_address: &str,
        password: Password,
        previous: Option<&ClientToken>,
        redirect_url: &str,
        ctx: &RequestContext,
    ) -> Result<SignInOutcome, SignInError> {
        let normalized = validate::email(email_address).map(|e| e.normalized).ok();
        let now = self.now_ms();
        let mut tx = self.inner.db.begin().await?;
        if let Some(ip) = ctx.throttle_key() {
            let attempt = throttle::take(
                &mut tx,
                &format!("signin-ip:{ip}"),
                self.inner.config.sign_in_ip_limit,
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
                let bucket = self.account_bucket(email);
                let attempt = throttle::take(&mut tx, &bucket, Limit::ACCOUNT_LOCKOUT, now).await?;
                if attempt.refused() {
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
        let matches = self.inner.hasher.verify(password, stored).await?;
        let Some(credentials) = credentials.filter(|_| matches) else {
            tracing::info!("sign-in refused: wrong credentials");
            return Err(SignInError::InvalidCredentials);
        };
        if credentials.banned {
            tracing::info!(user.id = %credentials.user_id, "sign-in refused: banned");
            return Err(SignInError::Banned);
        }

        let now = self.now_ms();
        let mut tx = self.inner.db.begin().await?;
        if let Some(bucket) = &bucket {
            throttle::clear(&mut tx, bucket).await?;
        }
        if !credentials.email_verified {
            let opened = self
                .open_sign_in_code(&mut tx, &credentials, redirect_url, now)
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
        let signed = self
            .open_session(tx, &credentials.user_id, previous, ctx, now)
            .await?;
        Ok(SignInOutcome::SignedIn(Box::new(signed)))
    }

    /// Ends the browser's previous session, starts one for `user_id` and records its event,
    /// all in `tx`; commits it, then mints the first session token.
    pub(crate) async fn open_session(
        &self,
        mut tx: latchkey_store::Tx,
        user_id: &str,
        previous: Option<&ClientToken>,
        ctx: &RequestContext,
        now: i64,
    ) -> Result<SignedIn, StoreError> {
        if let Some(previous) = previous
            && let Some(old) = sessions::find_active(&mut tx, previous, now).await?
        {
            self.end_session_in(&mut tx, &old.id, EndReason::Ended, now)
                .await?;
        }
        let (session, client_token) = self.start_session(&mut tx, user_id, ctx, now).await?;
        self.emit_sessions(
            &mut tx,
            SessionEvent::Created,
            std::slice::from_ref(&session),
            None,
            Some(ctx),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(user.id = %user_id, session.id = %session.id, "signed in");
        let session_token = self.mint_session_token(&session).await;
        Ok(SignedIn {
            user_id: user_id.to_owned(),
            session,
            client_token,
            session_token,
        })
    }

    pub(crate) async fn start_session(
        &self,
        tx: &mut latchkey_store::Tx,
        user_id: &str,
        ctx: &RequestContext,
        now: i64,
    ) -> Result<(SessionRecord, ClientToken), StoreError> {
        let (session, token) = sessions::create(
            tx,
            user_id,
            ctx.user_agent.as_deref(),
            ctx.ip_text().as_deref(),
            now,
            self.inner.config.session_lifetime_ms,
        )
        .await?;
        users::record_sign_in(tx, user_id, now).await?;
        Ok((session, token))
    }

    /// Ends one session and records its event.
    pub(crate) async fn end_session_in(
        &self,
        tx: &mut latchkey_store::Tx,
        session_id: &str,
        reason: EndReason,
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let ended = sessions::end(tx, session_id, reason, now).await?;
        if let Some(session) = &ended {
            self.emit_sessions(
                tx,
                session_event(reason),
                std::slice::from_ref(session),
                None,
                None,
            )
            .await?;
        }
        Ok(ended)
    }

    /// Ends every session of a user but `keep`, recording their events.
    pub(crate) async fn end_all_sessions_in(
        &self,
        tx: &mut latchkey_store::Tx,
        user_id: &str,
        keep: Option<&str>,
        reason: EndReason,
        now: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let ended = sessions::end_all(tx, user_id, keep, reason, now).await?;
        self.emit_sessions(tx, session_event(reason), &ended, None, None)
            .await?;
        Ok(ended)
    }

    /// The active session and account behind a `__client` cookie, recording activity.
    ///
    /// # Errors
    /// Database failures.
    pub async fn authenticate(
        &self,
        token: &ClientToken,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        let now = self.now_ms();
        let mut tx = self.inner.db.begin_read().await?;
        let Some(session) = sessions::find_active(&mut tx, token, now).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let user = users::get(&mut tx, &session.user_id).await?;
        tx.commit().await?;
        let Some(user) = user.filter(|u| u.banned_at.is_none()) else {
            return Ok(None);
        };
        if sessions::needs_touch(&session, now) {
            let mut tx = self.inner.db.begin().await?;
            sessions::touch(
                &mut tx,
                &session.id,
                now,
                self.inner.config.session_lifetime_ms,
            )
            .await?;
            tx.commit().await?;
        }
        Ok(Some((session, user)))
    }

    /// Ends the session behind a `__client` cookie (signing out).
    ///
    /// # Errors
    /// Database failures.
    pub async fn sign_out(&self, token: &ClientToken) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut tx = self.inner.db.begin().await?;
        if let Some(session) = sessions::find_active(&mut tx, token, now).await? {
            self.end_session_in(&mut tx, &session.id, EndReason::Ended, now)
                .await?;
            tracing::info!(session.id = %session.id, "signed out");
        }
        tx.commit().await
    }

    /// Changes profile fields.
    ///
    /// # Errors
    /// See [`ChangeError`].
    pub async fn update_profile(
        &self,
        user_id: &str,
        change: ProfileChange,
    ) -> Result<UserRecord, ChangeError> {
        let mut tx = self.inner.db.begin().await?;
        let user = users::update_profile(&mut tx, user_id, change, self.now_ms()).await?;
        self.emit_user(&mut tx, EventType::UserUpdated, user_id, None)
            .await?;
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
        &self,
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
        let now = self.now_ms();
        let mut tx = self.inner.db.begin().await?;
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
        if stored.is_some() && !self.inner.hasher.verify(current, stored.as_deref()).await? {
            tracing::info!(user.id = %user.id, "password change refused: wrong current password");
            return Err(ChangeError::WrongPassword);
        }
        let hash = self.inner.hasher.hash(new).await?;
        let now = self.now_ms();
        let mut tx = self.inner.db.begin().await?;
        throttle::clear(&mut tx, &bucket).await?;
        users::set_password(&mut tx, &user.id, Some(hash.as_str()), now).await?;
        let ended = self
            .end_all_sessions_in(
                &mut tx,
                &user.id,
                Some(keep_session),
                EndReason::Revoked,
                now,
            )
            .await?;
        self.emit_user(&mut tx, EventType::UserUpdated, &user.id, None)
            .await?;
        tx.commit().await?;
        tracing::info!(user.id = %user.id, sessions.ended = ended.len(), "password changed");
        Ok(ended.len())
    }

    /// Revokes one of the user's sessions.
    ///
    /// # Errors
    /// [`ChangeError::NotFound`] if it is not an active session of this user.
    pub async fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<SessionRecord, ChangeError> {
        let now = self.now_ms();
        let mut tx = self.inner.db.begin().await?;
        match sessions::get(&mut tx, session_id).await? {
            Some(session) if session.user_id == user_id => {}
            _ => return Err(ChangeError::NotFound),
        }
        let ended = self
            .end_session_in(&mut tx, session_id, EndReason::Revoked, now)
            .await?
            .ok_or(ChangeError::NotFound)?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Revokes every session of the user except `keep`; returns how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn revoke_other_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<usize, StoreError> {
        let now = self.now_ms();
        let mut tx = self.inner.db.begin().await?;
        let ended = self
            .end_all_sessions_in(&mut tx, user_id, keep, EndReason::Revoked, now)
            .await?;
        tx.commit().await?;
        Ok(ended.len())
    }

    /// Deletes the account, its addresses and sessions.
    ///
    /// # Errors
    /// [`ChangeError::NotFound`] or database failures.
    pub async fn delete_account(&self, user_id: &str) -> Result<(), ChangeError> {
        let now = self.now_ms();
        let mut tx = self.inner.db.begin().await?;
        let Some(user) = users::get(&mut tx, user_id).await? else {
            return Err(ChangeError::NotFound);
        };
        let ended = sessions::end_all(&mut tx, user_id, None, EndReason::Removed, now).await?;
        self.emit_sessions(&mut tx, SessionEvent::Removed, &ended, Some(&user), None)
            .await?;
        if !users::delete(&mut tx, user_id).await? {
            return Err(ChangeError::NotFound);
        }
        self.emit_user_deleted(&mut tx, &user, None).await?;
        tx.commit().await?;
        tracing::info!(user.id = %user_id, "account deleted");
        Ok(())
    }

    /// The account's lockout state, for Clerk's `locked` fields.
    ///
    /// # Errors
    /// Database failures.
    pub async fn lockout_of(
        &self,
        tx: &mut latchkey_store::Tx,
        user: &UserRecord,
    ) -> Result<users::Lockout, StoreError> {
        let Some(email) = user.primary_email() else {
            return Ok(users::Lockout::default());
        };
        let bucket = self.account_bucket(&email.email_address.to_lowercase());
        let now = self.now_ms();
        Ok(
            match throttle::peek(tx, &bucket, Limit::ACCOUNT_LOCKOUT, now).await? {
                Some(attempt) => users::Lockout {
                    locked: attempt.number >= attempt.max,
                    expires_in_seconds: (attempt.number >= attempt.max)
                        .then(|| i64::try_from(attempt.retry_after_secs(now)).unwrap_or(i64::MAX)),
                    attempts_remaining: Some(attempt.remaining()),
                },
                None => users::Lockout {
                    locked: false,
                    expires_in_seconds: None,
                    attempts_remaining: Some(Limit::ACCOUNT_LOCKOUT.max),
                },
            },
        )
    }
}
