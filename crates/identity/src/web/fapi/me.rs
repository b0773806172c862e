//! `/v1/me`: what `<UserButton>` and `<UserProfile>` do to the signed-in account, through
//! the same use cases as `/user`: `flows::account` (profile, password, deletion),
//! `flows::addresses` (add, verify, make primary, remove) and `sessions::lifecycle`
//! (revoking a session).
//!
//! An added address waiting for its code is named by its verification's id (`ver_…`), as in
//! the user JSON (see `json::pending_email`), so a stand-in for an address someone else
//! holds looks like any other.

use axum::extract::{Path, State};
use axum::response::{IntoResponse as _, Response};
use serde_json::{Value, json};

use super::attempt::ClientState;
use super::client::{self, reply};
use super::json::{self, Current};
use super::{FapiError, Input};
use crate::flows::{account, addresses};
use crate::passwords::Password;
use crate::sessions::{self, lifecycle};
use crate::state::Identity;
use crate::users::{self, ProfileChange, validate};
use crate::verifications::Verification;

/// A second `prepare_verification` this soon after the code went out sends nothing again
/// (Clerk's components ask once as soon as an address is added; its mail is already sent).
const RESEND_AFTER_MS: i64 = 30_000;

/// `{response, client}` for the signed-in browser.
async fn answer(
    identity: &Identity,
    input: &Input,
    current: &Current,
    response: Value,
) -> Result<Response, FapiError> {
    let state = ClientState::read(identity, &input.headers);
    reply(
        identity,
        input,
        &state,
        Some(current),
        Some(response),
        Vec::new(),
    )
    .await
}

/// `{response: user, client}` for the signed-in browser.
async fn answer_user(
    identity: &Identity,
    input: &Input,
    current: &Current,
) -> Result<Response, FapiError> {
    let user = json::user(identity, &current.1).await?;
    answer(identity, input, current, user).await
}

/// The signed-in session with its account read again (after a change).
async fn reread(identity: &Identity, current: Current) -> Result<Current, FapiError> {
    let (session, user) = current;
    let mut tx = identity.db().begin_read().await?;
    let fresh = users::get(&mut tx, &user.id).await?;
    tx.commit().await?;
    Ok((session, fresh.ok_or_else(FapiError::signed_out)?))
}

/// `GET /v1/me`.
pub(crate) async fn get(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    answer_user(&identity, &input, &current).await
}

fn name_change(input: &Input, field: &'static str) -> Result<Option<Option<String>>, FapiError> {
    input
        .form
        .get(field)
        .map(|text| validate::name(field, text))
        .transpose()
        .map_err(FapiError::from)
}

/// `PATCH /v1/me`: first and last name, unsafe metadata, and the primary address
/// (`primary_email_address_id`).
pub(crate) async fn update(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    let unsafe_metadata = match input.form.get("unsafe_metadata") {
        None => None,
        Some(text) => {
            let value: Value = serde_json::from_str(text).map_err(|_| {
                FapiError::param_invalid(
                    "unsafe_metadata",
                    "unsafe_metadata must be a JSON object.",
                )
            })?;
            if !value.is_object() || text.len() > users::metadata::MAX_METADATA_BYTES {
                return Err(FapiError::param_invalid(
                    "unsafe_metadata",
                    "unsafe_metadata must be a JSON object of at most 8 KB.",
                ));
            }
            Some(value)
        }
    };
    let change = ProfileChange {
        first_name: name_change(&input, "first_name")?,
        last_name: name_change(&input, "last_name")?,
        unsafe_metadata,
        ..ProfileChange::default()
    };
    let primary = input.field("primary_email_address_id").map(str::to_owned);
    if primary.as_deref().is_some_and(|id| id.starts_with("ver_")) {
        return Err(FapiError::param_invalid(
            "primary_email_address_id",
            "Verify the address before making it primary.",
        ));
    }
    let changes_profile = change.first_name.is_some()
        || change.last_name.is_some()
        || change.unsafe_metadata.is_some();
    if changes_profile {
        account::update_profile(&identity, &current.1.id, change).await?;
    }
    if let Some(email_id) = &primary {
        addresses::set_primary_email(&identity, &current.1.id, email_id).await?;
    }
    let current = reread(&identity, current).await?;
    answer_user(&identity, &input, &current).await
}

/// `DELETE /v1/me`: deletes the account (its sessions end with it).
pub(crate) async fn delete(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    let (_, user) = client::require(&identity, &input).await?;
    account::delete_account(&identity, &user.id).await?;
    let response = json!({"object": "user", "id": user.id, "deleted": true});
    client::reply_signed_out(&identity, &input, Some(response)).await
}

/// `POST`/`DELETE /v1/me/profile_image`: latchkey stores no images; removing one clears the
/// image URL, uploading is refused.
pub(crate) async fn profile_image(
    State(identity): State<Identity>,
    method: http::Method,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    if method != http::Method::DELETE {
        return Err(FapiError::param_invalid(
            "file",
            "Profile image uploads are not supported by this server.",
        ));
    }
    let change = ProfileChange {
        image_url: Some(None),
        ..ProfileChange::default()
    };
    account::update_profile(&identity, &current.1.id, change).await?;
    let current = reread(&identity, current).await?;
    answer_user(&identity, &input, &current).await
}

/// `POST /v1/me/change_password` `{current_password, new_password,
/// sign_out_of_other_sessions}`: every other session ends, as on `/user`.
pub(crate) async fn change_password(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    let new = input.required_raw("new_password")?;
    let old = input.raw("current_password").unwrap_or_default();
    account::change_password(
        &identity,
        &current.1,
        &current.0.id,
        Password::new(old.to_owned()),
        Password::new(new.to_owned()),
    )
    .await?;
    let current = reread(&identity, current).await?;
    answer_user(&identity, &input, &current).await
}

/// The user's addresses as the user JSON lists them.
async fn emails(identity: &Identity, current: &Current) -> Result<Vec<Value>, FapiError> {
    let user = json::user(identity, &current.1).await?;
    Ok(user
        .get("email_addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

async fn email(identity: &Identity, current: &Current, id: &str) -> Result<Value, FapiError> {
    emails(identity, current)
        .await?
        .into_iter()
        .find(|e| e.get("id").and_then(Value::as_str) == Some(id))
        .ok_or_else(FapiError::not_found)
}

/// The account's address `id` waiting for its code (a verification).
async fn pending_email(
    identity: &Identity,
    current: &Current,
    id: &str,
) -> Result<Verification, FapiError> {
    addresses::pending_emails(identity, &current.1.id)
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(FapiError::verification_missing)
}

/// `GET /v1/me/email_addresses`.
pub(crate) async fn list_emails(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    let list = emails(&identity, &current).await?;
    answer(&identity, &input, &current, Value::Array(list)).await
}

/// `GET /v1/me/email_addresses/{id}`.
pub(crate) async fn get_email(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    let found = email(&identity, &current, &id).await?;
    answer(&identity, &input, &current, found).await
}

/// `POST /v1/me/email_addresses` `{email_address}`: added unverified, a code mailed to it (or
/// a stand-in, if someone else holds it).
pub(crate) async fn add_email(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    let address = input.required("email_address")?;
    let checked = validate::email(address)?;
    addresses::add_email(&identity, &current.1, address).await?;
    let pending = addresses::pending_emails(&identity, &current.1.id).await?;
    let added = pending
        .iter()
        .rev()
        .find(|v| v.email_address.to_lowercase() == checked.normalized)
        .map(json::pending_email)
        .ok_or_else(FapiError::not_found)?;
    let current = reread(&identity, current).await?;
    answer(&identity, &input, &current, added).await
}

/// `POST /v1/me/email_addresses/{id}/prepare_verification` `{strategy: email_code}`.
pub(crate) async fn prepare_email(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    input.require_strategy("email_code")?;
    let found = pending_email(&identity, &current, &id).await?;
    if identity.now_ms() - found.created_at >= RESEND_AFTER_MS || found.attempts > 0 {
        addresses::resend_added_email_code(&identity, &current.1.id, &id).await?;
    }
    let found = email(&identity, &current, &id).await?;
    answer(&identity, &input, &current, found).await
}

/// `POST /v1/me/email_addresses/{id}/attempt_verification` `{code}`.
pub(crate) async fn attempt_email(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    let code = input.required("code")?;
    let address = pending_email(&identity, &current, &id)
        .await?
        .email_address
        .to_lowercase();
    addresses::verify_added_email(&identity, &current.1.id, &id, code).await?;
    let current = reread(&identity, current).await?;
    let verified = emails(&identity, &current)
        .await?
        .into_iter()
        .find(|e| {
            e.get("email_address")
                .and_then(Value::as_str)
                .is_some_and(|a| a.to_lowercase() == address)
        })
        .ok_or_else(FapiError::not_found)?;
    answer(&identity, &input, &current, verified).await
}

/// `DELETE /v1/me/email_addresses/{id}`: cancels a pending address, or removes a verified
/// one that is not primary.
pub(crate) async fn remove_email(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    if id.starts_with("ver_") {
        addresses::cancel_added_email(&identity, &current.1.id, &id).await?;
    } else {
        addresses::remove_email(&identity, &current.1, &id).await?;
    }
    let current = reread(&identity, current).await?;
    let response = json!({"object": "email_address", "id": id, "deleted": true});
    answer(&identity, &input, &current, response).await
}

/// `GET /v1/me/sessions/active`: the account's active sessions with their activity, a bare
/// array (clerk-js reads this one answer without the envelope).
pub(crate) async fn active_sessions(
    State(identity): State<Identity>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    let now = identity.now_ms();
    let mut tx = identity.db().begin_read().await?;
    let listed = sessions::list_active(&mut tx, &current.1.id, now).await?;
    tx.commit().await?;
    let list: Vec<Value> = listed.iter().map(|s| activity_json(s, now)).collect();
    Ok(axum::Json(Value::Array(list)).into_response())
}

fn activity_json(session: &sessions::SessionRecord, now: i64) -> Value {
    let mut value =
        serde_json::to_value(sessions::to_clerk(session, None, now)).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("user".to_owned(), Value::Null);
        object.insert("tasks".to_owned(), json!([]));
        object.insert("last_active_token".to_owned(), Value::Null);
        object.insert("public_user_data".to_owned(), json!({}));
    }
    value
}

/// `POST /v1/me/sessions/{id}/revoke`.
pub(crate) async fn revoke_session(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    input: Input,
) -> Result<Response, FapiError> {
    let current = client::require(&identity, &input).await?;
    let revoked = lifecycle::revoke_session(&identity, &current.1.id, &id)
        .await?
        .ok_or_else(FapiError::not_found)?;
    let response = activity_json(&revoked, identity.now_ms());
    if revoked.id == current.0.id {
        return client::reply_signed_out(&identity, &input, Some(response)).await;
    }
    answer(&identity, &input, &current, response).await
}
