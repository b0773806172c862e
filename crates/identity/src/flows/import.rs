//! Moving accounts in from another system (Clerk's user export or its Backend API; see
//! `latchkey import clerk`). Each account keeps its id (`user_…`), so the rows an app holds
//! for it still point at the same user, and its password digest, so nobody has to reset a
//! password: the first sign-in re-hashes it (see `flows::sign_in`).
//!
//! Importing is idempotent: an account already here is brought up to date (names, username,
//! external id, metadata, ban, addresses it lacks) and one that matches is left alone. A
//! password the person has since used here (re-hashed with argon2id) is never overwritten by
//! the old digest. Each account is one transaction: a refused one writes nothing. By default no
//! event is emitted (the app already has these users); `emit_events` sends `user.created` /
//! `user.updated` as for any change. An authenticator-app secret from the export arrives
//! confirmed, so the person's app keeps working; one enrolled here since is never replaced.

use latchkey_protocol::clerk::{self, EventType};
use latchkey_store::{StoreError, Tx};
use serde_json::Value;

use crate::events;
use crate::mfa::{self, TotpSecret, totp};
use crate::passwords::foreign::ImportedDigest;
use crate::state::Identity;
use crate::users::{
    self, AccountError, NewUser, ProfileChange, UserRecord, address_rows, validate,
};

/// How imported addresses are marked verified.
const VERIFIED_BY: &str = "import";

/// One account as the other system describes it.
#[derive(Debug, Clone, Default)]
pub struct ImportedUser {
    /// The other system's id, kept: `user_` and 1 to 64 letters or digits.
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    /// The primary address first.
    pub emails: Vec<ImportedEmail>,
    pub password: Option<ImportedDigest>,
    pub external_id: Option<String>,
    pub public_metadata: Option<Value>,
    pub private_metadata: Option<Value>,
    pub unsafe_metadata: Option<Value>,
    pub banned: bool,
    /// Unix milliseconds; `None` is now.
    pub created_at: Option<i64>,
    /// The authenticator app's secret (Clerk's export: `totp_secret`, base32).
    pub totp_secret: Option<TotpSecret>,
}

impl ImportedUser {
    /// A user as Clerk's Backend API or its webhooks describe it (no password digest or TOTP
    /// secret: neither ever leaves Clerk that way). The primary address comes first.
    #[must_use]
    pub fn from_clerk(user: clerk::User) -> Self {
        let primary = user.primary_email_address_id.clone();
        let mut addresses = user.email_addresses;
        addresses.sort_by_key(|e| Some(&e.id) != primary.as_ref());
        Self {
            emails: addresses
                .into_iter()
                .map(|e| ImportedEmail {
                    verified: e.verification.is_some_and(|v| v.status == "verified"),
                    address: e.email_address,
                })
                .collect(),
            id: user.id,
            first_name: user.first_name,
            last_name: user.last_name,
            username: user.username,
            password: None,
            external_id: user.external_id,
            public_metadata: Some(user.public_metadata),
            private_metadata: Some(user.private_metadata),
            unsafe_metadata: Some(user.unsafe_metadata),
            banned: user.banned,
            created_at: Some(user.created_at),
            totp_secret: None,
        }
    }
}

/// An address and whether the other system had verified it.
#[derive(Debug, Clone)]
pub struct ImportedEmail {
    pub address: String,
    pub verified: bool,
}

/// What importing one account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Created,
    Updated,
    Unchanged,
}

/// Why an account was not imported. Nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the id must be `user_` followed by 1 to 64 letters or digits")]
    InvalidId,
    #[error("{0}")]
    Field(#[from] validate::FieldError),
    #[error("the account has neither an email address nor a username")]
    NoIdentifier,
    #[error("the address {0} belongs to another account")]
    EmailTaken(String),
    #[error("the username belongs to another account")]
    UsernameTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AccountError> for ImportError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::UsernameTaken => Self::UsernameTaken,
            AccountError::EmailTaken => Self::EmailTaken(String::new()),
            AccountError::NotFound => Self::Store(StoreError::Invariant(
                "an account vanished during its own import".to_owned(),
            )),
            AccountError::Store(error) => Self::Store(error),
        }
    }
}

/// The fields of an import, checked as sign-up and the management API check them.
struct Checked {
    emails: Vec<(validate::Email, bool)>,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
}

fn check(user: &ImportedUser) -> Result<Checked, ImportError> {
    let id_ok = user.id.strip_prefix("user_").is_some_and(|rest| {
        (1..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !id_ok {
        return Err(ImportError::InvalidId);
    }
    let mut emails: Vec<(validate::Email, bool)> = Vec::new();
    for email in &user.emails {
        let checked = validate::email(&email.address)?;
        match emails
            .iter_mut()
            .find(|(e, _)| e.normalized == checked.normalized)
        {
            Some((_, verified)) => *verified |= email.verified,
            None => emails.push((checked, email.verified)),
        }
    }
    let name = |field, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| validate::name(field, v))
            .transpose()
            .map(Option::flatten)
    };
    let username = user
        .username
        .as_deref()
        .map(validate::username)
        .transpose()?
        .flatten();
    if emails.is_empty() && username.is_none() {
        return Err(ImportError::NoIdentifier);
    }
    Ok(Checked {
        first_name: name("first_name", &user.first_name)?,
        last_name: name("last_name", &user.last_name)?,
        username,
        emails,
    })
}

/// Creates or brings up to date one account; see the module documentation.
///
/// # Errors
/// See [`ImportError`]; nothing is written on error.
pub async fn import_user(
    identity: &Identity,
    user: ImportedUser,
    emit_events: bool,
) -> Result<Imported, ImportError> {
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let outcome = import_in(identity, &mut tx, &user, now).await?;
    if emit_events {
        let kind = match outcome {
            Imported::Created => Some(EventType::UserCreated),
            Imported::Updated => Some(EventType::UserUpdated),
            Imported::Unchanged => None,
        };
        if let Some(kind) = kind {
            events::emit_user(identity, &mut tx, kind, &user.id, None).await?;
        }
    }
    tx.commit().await?;
    Ok(outcome)
}

/// [`import_user`] inside the caller's transaction, emitting nothing. On an error other than
/// [`ImportError::Store`] nothing was written, unless the database refused a statement (a
/// taken address or username), after which the caller must roll back (to a savepoint).
///
/// # Errors
/// See [`ImportError`].
pub async fn import_in(
    identity: &Identity,
    tx: &mut Tx,
    user: &ImportedUser,
    now: i64,
) -> Result<Imported, ImportError> {
    let checked = check(user)?;
    let mut outcome = match users::get(tx, &user.id).await? {
        None => {
            create(tx, user, &checked, now).await?;
            Imported::Created
        }
        Some(existing) => {
            if update(tx, &existing, user, &checked, now).await? {
                Imported::Updated
            } else {
                Imported::Unchanged
            }
        }
    };
    if let Some(secret) = &user.totp_secret
        && import_totp(identity, tx, &user.id, secret, now).await?
        && outcome == Imported::Unchanged
    {
        outcome = Imported::Updated;
    }
    Ok(outcome)
}

/// Stores an authenticator app's secret as confirmed, unless the account already has one
/// (enrolled here, or imported before). Codes of the current step and later are accepted.
async fn import_totp(
    identity: &Identity,
    tx: &mut Tx,
    user_id: &str,
    secret: &TotpSecret,
    now: i64,
) -> Result<bool, StoreError> {
    if mfa::has_second_factor(tx, user_id).await? {
        return Ok(false);
    }
    let sealed = mfa::seal(identity.master(), user_id, secret);
    if !mfa::put_pending_totp(tx, user_id, &sealed, now).await? {
        return Ok(false);
    }
    // The step before the drift window: every code an app shows from now on is accepted once.
    let spent = totp::step_of(now / 1000) - totp::DRIFT_STEPS - 1;
    mfa::confirm_totp(tx, user_id, spent, now).await?;
    users::touch_updated(tx, user_id, now).await?;
    Ok(true)
}

async fn create(
    tx: &mut Tx,
    user: &ImportedUser,
    checked: &Checked,
    now: i64,
) -> Result<(), ImportError> {
    let mut emails = checked.emails.iter();
    let primary = emails.next();
    let new = NewUser {
        id: Some(user.id.clone()),
        created_at: user.created_at,
        email: primary.map(|(email, _)| email.clone()),
        email_verified_by: primary
            .filter(|(_, verified)| *verified)
            .map(|_| VERIFIED_BY.to_owned()),
        password_hash: user
            .password
            .as_ref()
            .map(|digest| digest.as_stored().to_owned()),
        first_name: checked.first_name.clone(),
        last_name: checked.last_name.clone(),
        username: checked.username.clone(),
        image_url: None,
        external_id: user.external_id.clone(),
        public_metadata: user.public_metadata.clone(),
        private_metadata: user.private_metadata.clone(),
        unsafe_metadata: user.unsafe_metadata.clone(),
    };
    users::create(tx, new, now)
        .await
        .map_err(|error| match error {
            AccountError::EmailTaken => ImportError::EmailTaken(
                primary
                    .map(|(email, _)| email.address.clone())
                    .unwrap_or_default(),
            ),
            other => other.into(),
        })?;
    for (email, verified) in emails {
        add_address(tx, &user.id, email, *verified, now).await?;
    }
    if user.banned {
        users::set_banned(tx, &user.id, true, now).await?;
    }
    Ok(())
}

/// Adds an address the account lacks; one it already has is left as it is.
async fn add_address(
    tx: &mut Tx,
    user_id: &str,
    email: &validate::Email,
    verified: bool,
    now: i64,
) -> Result<bool, ImportError> {
    let verified_by = verified.then_some(VERIFIED_BY);
    if address_rows::insert_known(tx, user_id, email, verified_by, now).await? {
        return Ok(true);
    }
    match address_rows::owner(tx, &email.normalized).await? {
        Some(owner) if owner.user_id == user_id => Ok(false),
        _ => Err(ImportError::EmailTaken(email.address.clone())),
    }
}

/// Brings `existing` up to date with `user`; answers whether anything changed.
async fn update(
    tx: &mut Tx,
    existing: &UserRecord,
    user: &ImportedUser,
    checked: &Checked,
    now: i64,
) -> Result<bool, ImportError> {
    let differs = |new: &Option<String>, old: &Option<String>| (new != old).then(|| new.clone());
    let metadata = |new: &Option<Value>, old: &Value| new.as_ref().filter(|v| *v != old).cloned();
    let change = ProfileChange {
        first_name: differs(&checked.first_name, &existing.first_name),
        last_name: differs(&checked.last_name, &existing.last_name),
        username: differs(&checked.username, &existing.username),
        image_url: None,
        external_id: differs(&user.external_id, &existing.external_id),
        public_metadata: metadata(&user.public_metadata, &existing.public_metadata),
        private_metadata: metadata(&user.private_metadata, &existing.private_metadata),
        unsafe_metadata: metadata(&user.unsafe_metadata, &existing.unsafe_metadata),
    };
    let mut changed = false;
    if change.first_name.is_some()
        || change.last_name.is_some()
        || change.username.is_some()
        || change.external_id.is_some()
        || change.public_metadata.is_some()
        || change.private_metadata.is_some()
        || change.unsafe_metadata.is_some()
    {
        users::update_profile(tx, &existing.id, change, now).await?;
        changed = true;
    }
    for (email, verified) in &checked.emails {
        changed |= add_address(tx, &existing.id, email, *verified, now).await?;
    }
    if let Some(digest) = &user.password {
        let stored = users::password_hash(tx, &existing.id).await?;
        // Only a digest nobody has signed in with here yet is replaced: once the person signs
        // in, their password lives in latchkey's own hash and the old digest is history.
        let replaceable = stored
            .as_deref()
            .is_none_or(|s| s != digest.as_stored() && !s.starts_with("$argon2id$"));
        if replaceable {
            users::set_password(tx, &existing.id, Some(digest.as_stored()), now).await?;
            changed = true;
        }
    }
    if user.banned != existing.banned_at.is_some() {
        users::set_banned(tx, &existing.id, user.banned, now).await?;
        changed = true;
    }
    Ok(changed)
}
