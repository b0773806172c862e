//! Shadow mode: while real Clerk is still the app's issuer, latchkey's identity keeps its own
//! accounts current from the same verified `user.*` webhooks the app's receiver applies
//! (`LATCHKEY_IDENTITY_SHADOW`), so switching the issuer to latchkey is a change of
//! configuration with nothing to catch up on. The app's receiver calls these functions inside
//! the transaction that records the message, after its own order guard has judged the event
//! the newest: a duplicate or an older version never reaches them, and an event is mirrored
//! exactly when the app applies it.
//!
//! Clerk is the source of truth until the cutover: an account is made to match what Clerk
//! sends (profile, metadata, ban, and addresses: the ones Clerk no longer lists are removed,
//! its primary becomes the primary), and nothing is emitted (the app hears from Clerk).
//! Passwords and authenticator apps are not in Clerk's events; they come from the export
//! (`latchkey import clerk --csv`), and a mirrored update leaves them as they are.

use latchkey_store::{StoreError, Tx};

use super::import::{self, ImportError, Imported, ImportedUser};
use crate::state::Identity;
use crate::users::{self, address_rows, validate};

/// How addresses Clerk verified are marked here.
const VERIFIED_BY: &str = "import";

/// Makes the account `user.id` match `user`, creating it if need be.
///
/// # Errors
/// See [`ImportError`]. After an error other than [`ImportError::Store`] the caller rolls back
/// to a savepoint taken before the call: a refused account must not stop the app's own write.
pub async fn mirror_in(
    identity: &Identity,
    tx: &mut Tx,
    user: &ImportedUser,
    now: i64,
) -> Result<Imported, ImportError> {
    let mut outcome = import::import_in(identity, tx, user, now).await?;
    if align_addresses(tx, user, now).await? && outcome == Imported::Unchanged {
        outcome = Imported::Updated;
    }
    Ok(outcome)
}

/// Removes the account Clerk deleted, with its addresses, sessions and factors. Returns
/// whether there was one.
///
/// # Errors
/// Database failures.
pub async fn remove_in(tx: &mut Tx, user_id: &str) -> Result<bool, StoreError> {
    users::delete(tx, user_id).await
}

/// Verification, primary and removal: what adding the addresses an account lacks (all an
/// import does) leaves different from Clerk. Answers whether anything changed.
async fn align_addresses(tx: &mut Tx, user: &ImportedUser, now: i64) -> Result<bool, StoreError> {
    let Some(account) = users::get(tx, &user.id).await? else {
        return Ok(false);
    };
    let wanted: Vec<(String, bool)> = user
        .emails
        .iter()
        .filter_map(|e| {
            validate::email(&e.address)
                .ok()
                .map(|checked| (checked.normalized, e.verified))
        })
        .collect();
    let mut changed = false;
    for held in &account.emails {
        let normalized = normalized(&held.email_address);
        let verified_there = wanted
            .iter()
            .find(|(address, _)| *address == normalized)
            .map(|(_, verified)| *verified);
        if verified_there == Some(true) && held.verification_status != "verified" {
            changed |= address_rows::mark_verified_by(tx, &held.id, VERIFIED_BY, now)
                .await?
                .is_some();
        }
    }
    if let Some((primary, true)) = wanted.first() {
        let held = account
            .emails
            .iter()
            .find(|e| normalized(&e.email_address) == *primary);
        if let Some(held) = held {
            changed |= matches!(
                address_rows::set_primary(tx, &user.id, &held.id, now).await?,
                address_rows::Primary::Changed { .. }
            );
        }
    }
    for held in &account.emails {
        let normalized = normalized(&held.email_address);
        if !wanted.iter().any(|(address, _)| *address == normalized) {
            changed |= address_rows::remove(tx, &user.id, &held.id, now).await?;
        }
    }
    Ok(changed)
}

/// An address as uniqueness compares it.
fn normalized(address: &str) -> String {
    validate::email(address).map_or_else(|_| address.to_lowercase(), |e| e.normalized)
}

/// [`mirror_in`] in a transaction of its own (`latchkey sync check --fix`).
///
/// # Errors
/// See [`ImportError`]; nothing is written on error.
pub async fn mirror(identity: &Identity, user: &ImportedUser) -> Result<Imported, ImportError> {
    let mut tx = identity.db().begin().await?;
    let outcome = mirror_in(identity, &mut tx, user, identity.now_ms()).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// [`remove_in`] in a transaction of its own.
///
/// # Errors
/// Database failures.
pub async fn remove(identity: &Identity, user_id: &str) -> Result<bool, StoreError> {
    let mut tx = identity.db().begin().await?;
    let removed = remove_in(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(removed)
}

/// The fields (named as in Clerk's User JSON) in which `ours` differs from `theirs` in what
/// shadow mode keeps current; empty when the account matches. Addresses compare by text and
/// verification, whatever their ids.
#[must_use]
pub fn differences(theirs: &ImportedUser, ours: &ImportedUser) -> Vec<&'static str> {
    let text = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let metadata = |value: &Option<serde_json::Value>| {
        value
            .clone()
            .filter(|v| !v.is_null())
            .unwrap_or_else(|| serde_json::json!({}))
    };
    let addresses = |user: &ImportedUser| {
        let mut all: Vec<(String, bool)> = user
            .emails
            .iter()
            .map(|e| (normalized(&e.address), e.verified))
            .collect();
        all.sort();
        all
    };
    let primary = |user: &ImportedUser| user.emails.first().map(|e| normalized(&e.address));
    let mut fields = Vec::new();
    for (name, differs) in [
        (
            "first_name",
            text(&theirs.first_name) != text(&ours.first_name),
        ),
        (
            "last_name",
            text(&theirs.last_name) != text(&ours.last_name),
        ),
        ("username", text(&theirs.username) != text(&ours.username)),
        ("external_id", theirs.external_id != ours.external_id),
        ("email_addresses", addresses(theirs) != addresses(ours)),
        ("primary_email_address_id", primary(theirs) != primary(ours)),
        (
            "public_metadata",
            metadata(&theirs.public_metadata) != metadata(&ours.public_metadata),
        ),
        (
            "private_metadata",
            metadata(&theirs.private_metadata) != metadata(&ours.private_metadata),
        ),
        (
            "unsafe_metadata",
            metadata(&theirs.unsafe_metadata) != metadata(&ours.unsafe_metadata),
        ),
        ("banned", theirs.banned != ours.banned),
    ] {
        if differs {
            fields.push(name);
        }
    }
    fields
}
