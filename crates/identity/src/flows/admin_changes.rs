//! Account changes only the management API makes: an operator's update of any profile field
//! and the password, and metadata replaced or merged. Each commits in one transaction with its
//! `user.updated` event (and `session.revoked` events when sessions end), exactly as the pages'
//! changes do. Password hashing happens before the transaction, never inside it.

use latchkey_protocol::clerk::EventType;
use serde_json::Value;

use crate::events;
use crate::flows::admin::AdminError;
use crate::passwords::foreign::ImportedDigest;
use crate::passwords::{Password, check_new_password};
use crate::sessions::EndReason;
use crate::sessions::lifecycle;
use crate::state::Identity;
use crate::users::metadata::merge;
use crate::users::validate::FieldError;
use crate::users::{self, ProfileChange, UserRecord};

/// What `PATCH /v1/users/{id}` changes.
#[derive(Debug, Default)]
pub(crate) struct UserUpdate {
    pub profile: ProfileChange,
    pub password: Option<Password>,
    /// A digest made by another system (Clerk's `password_digest`); exclusive with `password`.
    pub password_digest: Option<ImportedDigest>,
    /// Skip the common-password and length checks (Clerk's `skip_password_checks`).
    pub skip_password_checks: bool,
    /// Revoke every session of the user (Clerk's `sign_out_of_other_sessions`).
    pub sign_out_of_other_sessions: bool,
}

/// Metadata to write; `None` leaves that kind as it is.
#[derive(Debug, Default)]
pub(crate) struct MetadataChange {
    pub public: Option<Value>,
    pub private: Option<Value>,
    pub unsafe_: Option<Value>,
}

/// Applies an operator's update to an account.
///
/// # Errors
/// [`AdminError::NotFound`], a refused password or username, or database failures;
/// nothing is written on error.
pub(crate) async fn update_user_as_operator(
    identity: &Identity,
    user_id: &str,
    update: UserUpdate,
) -> Result<UserRecord, AdminError> {
    let hash = match update.password {
        Some(password) => {
            if !update.skip_password_checks {
                let mut tx = identity.db().begin_read().await?;
                let user = users::get(&mut tx, user_id).await?;
                tx.commit().await?;
                let user = user.ok_or(AdminError::NotFound)?;
                let mut context: Vec<&str> = user
                    .emails
                    .iter()
                    .map(|e| e.email_address.as_str())
                    .collect();
                if let Some(username) = update.profile.username.as_ref().unwrap_or(&user.username) {
                    context.push(username);
                }
                check_new_password(password.expose(), &context)?;
            }
            Some(identity.hasher().hash(password).await?.into_string())
        }
        None => update
            .password_digest
            .map(|digest| digest.as_stored().to_owned()),
    };
    let now = identity.now_ms();
    let mut tx = identity.db().begin().await?;
    let mut user = users::update_profile(&mut tx, user_id, update.profile, now).await?;
    if let Some(hash) = &hash {
        users::set_password(&mut tx, user_id, Some(hash.as_str()), now).await?;
    }
    let ended = if update.sign_out_of_other_sessions {
        lifecycle::end_all_sessions_in(identity, &mut tx, user_id, None, EndReason::Revoked, now)
            .await?
            .len()
    } else {
        0
    };
    if hash.is_some() {
        user = users::get(&mut tx, user_id)
            .await?
            .ok_or(AdminError::NotFound)?;
    }
    events::emit_user(identity, &mut tx, EventType::UserUpdated, user_id, None).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, password.changed = hash.is_some(), sessions.ended = ended, "account updated by an operator");
    Ok(user)
}

/// Replaces (`merge == false`) or deep-merges each given kind of metadata.
///
/// # Errors
/// [`AdminError::NotFound`] or database failures.
pub(crate) async fn change_metadata(
    identity: &Identity,
    user_id: &str,
    change: MetadataChange,
    merge_into: bool,
) -> Result<UserRecord, AdminError> {
    let mut tx = identity.db().begin().await?;
    let current = users::get(&mut tx, user_id)
        .await?
        .ok_or(AdminError::NotFound)?;
    let combine = |current: &Value, given: Option<Value>| {
        given.map(|given| {
            if merge_into {
                let mut merged = if current.is_object() {
                    current.clone()
                } else {
                    Value::Object(serde_json::Map::new())
                };
                merge(&mut merged, given);
                merged
            } else {
                given
            }
        })
    };
    let profile = ProfileChange {
        public_metadata: combine(&current.public_metadata, change.public),
        private_metadata: combine(&current.private_metadata, change.private),
        unsafe_metadata: combine(&current.unsafe_metadata, change.unsafe_),
        ..ProfileChange::default()
    };
    // Merges add up: the result must fit as much as a body may give at once.
    for (name, merged) in [
        ("public_metadata", &profile.public_metadata),
        ("private_metadata", &profile.private_metadata),
        ("unsafe_metadata", &profile.unsafe_metadata),
    ] {
        if let Some(merged) = merged
            && serde_json::to_vec(merged).map_or(usize::MAX, |b| b.len())
                > users::metadata::MAX_METADATA_BYTES
        {
            return Err(AdminError::Field(FieldError {
                field: name,
                message: "Metadata may take at most 8 KB as JSON, merged.",
            }));
        }
    }
    let user = users::update_profile(&mut tx, user_id, profile, identity.now_ms()).await?;
    events::emit_user(identity, &mut tx, EventType::UserUpdated, user_id, None).await?;
    tx.commit().await?;
    tracing::info!(user.id = %user_id, "metadata changed by an operator");
    Ok(user)
}
