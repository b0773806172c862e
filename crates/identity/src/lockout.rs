//! The account lockout: failed password attempts per account, counted in a throttle bucket
//! keyed by the address (so the table holds no addresses), and read back for Clerk's `locked`
//! fields. Sign-in counts into it; events and the management API read it.

use hmac::{KeyInit as _, Mac as _};
use latchkey_store::{StoreError, Tx};

use crate::audit;
use crate::context::RequestContext;
use crate::state::Identity;
use crate::throttle::{self, Limit};
use crate::users::{self, UserRecord};

/// The lockout bucket of an email address: keyed, so the table holds no addresses.
pub(crate) fn account_bucket(identity: &Identity, normalized_email: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(identity.throttle_key())
        .expect("any key length");
    mac.update(normalized_email.as_bytes());
    let digest = hex::encode(mac.finalize().into_bytes());
    format!("account:{digest}")
}

/// The account's lockout state, for Clerk's `locked` fields.
///
/// # Errors
/// Database failures.
pub async fn lockout_of(
    identity: &Identity,
    tx: &mut latchkey_store::Tx,
    user: &UserRecord,
) -> Result<users::Lockout, StoreError> {
    let Some(email) = user.primary_email() else {
        return Ok(users::Lockout::default());
    };
    let bucket = account_bucket(identity, &email.email_address.to_lowercase());
    let now = identity.now_ms();
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

/// Records in the audit log that the account holding `normalized_email` (if one does) was just
/// locked, and counts the lockout for the day; called on the first refused attempt of a
/// window. Unknown addresses lock (and count) the same way but leave no audit entry: there is
/// no account to name.
///
/// # Errors
/// Database failures.
pub(crate) async fn record_lockout(
    identity: &Identity,
    tx: &mut Tx,
    normalized_email: &str,
    ctx: &RequestContext,
) -> Result<(), StoreError> {
    crate::daily::bump(tx, crate::daily::Metric::Lockouts, identity.now_ms()).await?;
    let Some(credentials) = users::credentials_by_email(tx, normalized_email).await? else {
        return Ok(());
    };
    let mut entry = audit::Entry::new("user.locked_out", Some(&credentials.user_id))
        .by(audit::Actor::System)
        .with(serde_json::json!({ "failed_attempts": Limit::ACCOUNT_LOCKOUT.max }));
    entry.ip = ctx.ip_text();
    audit::record(identity, tx, entry).await
}
