//! Clerk's Frontend API JSON (`packages/shared/src/types/json.ts` in clerk/javascript): the
//! client, its sessions with their user and last token, the in-progress sign-in and sign-up.
//! Timestamps are Unix milliseconds. A browser never sees `private_metadata`.

use latchkey_store::StoreError;
use serde_json::{Value, json};

use super::attempt::{ClientState, SignInState, SignUpState};
use crate::flows::{addresses, admin};
use crate::sessions::{SessionRecord, token};
use crate::state::Identity;
use crate::users::UserRecord;
use crate::verifications::Verification;

/// An abandoned sign-in or sign-up is forgotten after a day, as Clerk's are.
const ABANDON_MS: i64 = 24 * 60 * 60 * 1000;

/// The signed-in session of a request (or just started), with its account.
pub(crate) type Current = (SessionRecord, UserRecord);

/// An added address waiting for its code, shown from its verification (`ver_…` id) the same
/// way whether the address was free or a stand-in took its place, as `/user` shows it.
pub(crate) fn pending_email(pending: &Verification) -> Value {
    json!({
        "object": "email_address",
        "id": pending.id,
        "email_address": pending.email_address,
        "reserved": false,
        "verification": {
            "object": "verification",
            "status": "unverified",
            "strategy": "email_code",
            "attempts": pending.attempts,
            "expire_at": pending.expire_at,
            "error": null,
        },
        "linked_to": [],
        "matches_sso_connection": false,
        "created_at": pending.created_at,
        "updated_at": pending.created_at,
    })
}

/// The account as Clerk's frontend `UserJSON`.
pub(crate) async fn user(identity: &Identity, user: &UserRecord) -> Result<Value, StoreError> {
    let clerk = admin::user_json(identity, user).await?;
    let pending = addresses::pending_emails(identity, &user.id).await?;
    let waiting: Vec<&str> = pending
        .iter()
        .filter_map(|v| v.email_address_id.as_deref())
        .collect();
    let mut value = serde_json::to_value(clerk).unwrap_or_else(|_| json!({}));
    if let Some(object) = value.as_object_mut() {
        object.remove("private_metadata");
        if let Some(Value::Array(emails)) = object.get_mut("email_addresses") {
            emails.retain(|e| {
                e.get("id")
                    .and_then(Value::as_str)
                    .is_none_or(|id| !waiting.contains(&id))
            });
            emails.extend(pending.iter().map(pending_email));
        }
        for key in [
            "phone_numbers",
            "web3_wallets",
            "passkeys",
            "external_accounts",
            "enterprise_accounts",
            "saml_accounts",
            "organization_memberships",
        ] {
            if !object.get(key).is_some_and(Value::is_array) {
                object.insert(key.to_owned(), json!([]));
            }
        }
        if !object.get("image_url").is_some_and(Value::is_string) {
            object.insert("image_url".to_owned(), json!(""));
        }
        object
            .entry("profile_image_id")
            .or_insert_with(|| json!(""));
        object.insert("delete_self_enabled".to_owned(), json!(true));
        object.insert("create_organization_enabled".to_owned(), json!(false));
        object.insert("create_organizations_limit".to_owned(), Value::Null);
    }
    Ok(value)
}

/// What the session's chooser and avatar show.
fn public_user_data(user: &UserRecord, rendered: &Value) -> Value {
    let identifier = user
        .emails
        .iter()
        .find(|e| Some(e.id.as_str()) == user.primary_email_address_id.as_deref())
        .map(|e| e.email_address.clone())
        .unwrap_or_default();
    json!({
        "first_name": user.first_name,
        "last_name": user.last_name,
        "image_url": rendered.get("image_url").cloned().unwrap_or_else(|| json!("")),
        "has_image": rendered.get("has_image").cloned().unwrap_or(json!(false)),
        "identifier": identifier,
        "user_id": user.id,
    })
}

/// A session as Clerk's `SessionJSON`, with a fresh token for `azp`.
pub(crate) async fn session(
    identity: &Identity,
    current: &Current,
    azp: &str,
) -> Result<Value, StoreError> {
    let (session, user) = current;
    let rendered = self::user(identity, user).await?;
    let jwt = token::mint_session_token_for(identity, session, azp).await;
    let now = identity.now_ms();
    Ok(json!({
        "object": "session",
        "id": session.id,
        "status": if session.is_active(now) { "active" } else { "expired" },
        "expire_at": session.expire_at,
        "abandon_at": session.expire_at,
        "last_active_at": session.last_active_at,
        "last_active_organization_id": null,
        "last_active_token": {"object": "token", "jwt": jwt},
        "factor_verification_age": token::factor_verification_age(session, now),
        "actor": session.actor_id.as_ref().map(|a| json!({"sub": a})),
        "tasks": [],
        "public_user_data": public_user_data(user, &rendered),
        "user": rendered,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
    }))
}

/// The email address id a sign-in offers its code factors under. The same kind of id whether
/// or not the address has an account (no enumeration); `prepare_first_factor` goes by the
/// identifier the sign-in holds, not by this id.
fn factor_email_id(state: &SignInState) -> String {
    format!("idn_{}", state.id.trim_start_matches("sia_"))
}

fn verification(status: &str, strategy: &str, expire_at: Option<i64>) -> Value {
    json!({
        "object": "verification",
        "status": status,
        "strategy": strategy,
        "attempts": null,
        "expire_at": expire_at,
        "error": null,
    })
}

/// A sign-in as Clerk's `SignInJSON`.
pub(crate) fn sign_in(state: &SignInState) -> Value {
    let email_id = factor_email_id(state);
    let factors = json!([
        {"strategy": "password"},
        {
            "strategy": "email_code",
            "safe_identifier": state.identifier,
            "email_address_id": email_id,
            "primary": true,
        },
        {
            "strategy": "reset_password_email_code",
            "safe_identifier": state.identifier,
            "email_address_id": email_id,
        },
    ]);
    let first = match (state.status.as_str(), state.prepared.as_deref()) {
        ("complete" | "needs_new_password", strategy) => {
            verification("verified", strategy.unwrap_or("password"), None)
        }
        (_, Some(strategy)) => verification("unverified", strategy, None),
        _ => Value::Null,
    };
    json!({
        "object": "sign_in",
        "id": state.id,
        "status": state.status,
        "supported_identifiers": ["email_address"],
        "identifier": state.identifier,
        "supported_first_factors": factors,
        "supported_second_factors": null,
        "first_factor_verification": first,
        "second_factor_verification": null,
        "user_data": {"first_name": null, "last_name": null, "image_url": "", "has_image": false},
        "created_session_id": state.created_session_id,
        "abandon_at": state.created_at + ABANDON_MS,
        "created_at": state.created_at,
    })
}

/// A sign-up as Clerk's `SignUpJSON`.
pub(crate) fn sign_up(state: &SignUpState) -> Value {
    let mut missing = Vec::new();
    if state.email_address.is_none() {
        missing.push("email_address");
    }
    if !state.submitted {
        missing.push("password");
    }
    let complete = state.status == "complete";
    let email_verification = if complete {
        json!({
            "object": "verification", "status": "verified", "strategy": "email_code",
            "attempts": null, "expire_at": null, "error": null,
            "next_action": "", "supported_strategies": ["email_code"],
        })
    } else if state.email_address.is_some() {
        json!({
            "object": "verification", "status": "unverified",
            "strategy": if state.submitted { json!("email_code") } else { Value::Null },
            "attempts": null, "expire_at": null, "error": null,
            "next_action": if state.submitted { "needs_attempt" } else { "needs_prepare" },
            "supported_strategies": ["email_code"],
        })
    } else {
        Value::Null
    };
    json!({
        "object": "sign_up",
        "id": state.id,
        "status": state.status,
        "required_fields": ["email_address", "password"],
        "optional_fields": ["first_name", "last_name"],
        "missing_fields": if complete { vec![] } else { missing },
        "unverified_fields": if complete || state.email_address.is_none() { json!([]) } else { json!(["email_address"]) },
        "verifications": {
            "email_address": email_verification,
            "phone_number": null,
            "web3_wallet": null,
            "external_account": null,
        },
        "username": null,
        "email_address": state.email_address,
        "phone_number": null,
        "web3_wallet": null,
        "first_name": state.first_name,
        "last_name": state.last_name,
        "external_account_strategy": null,
        "external_account": null,
        "has_password": state.submitted,
        "unsafe_metadata": {},
        "created_session_id": state.created_session_id,
        "created_user_id": state.created_user_id,
        "abandon_at": state.created_at + ABANDON_MS,
        "legal_accepted_at": null,
        "locale": null,
    })
}

/// The whole client, as every change answers it.
pub(crate) async fn client(
    identity: &Identity,
    state: &ClientState,
    current: Option<&Current>,
    azp: &str,
) -> Result<Value, StoreError> {
    let now = identity.now_ms();
    let sessions = match current {
        Some(current) => vec![session(identity, current, azp).await?],
        None => Vec::new(),
    };
    let live = |created_at: i64| created_at + ABANDON_MS > now;
    let sign_in = state
        .sign_in
        .as_ref()
        .filter(|s| s.status != "complete" && live(s.created_at))
        .map(sign_in);
    let sign_up = state
        .sign_up
        .as_ref()
        .filter(|s| s.status != "complete" && live(s.created_at))
        .map(sign_up);
    let updated_at = current.map_or(state.created_at, |(s, _)| {
        s.created_at.max(state.created_at)
    });
    Ok(json!({
        "object": "client",
        "id": current.map_or_else(|| state.id.clone(), |(s, _)| s.client_id.clone()),
        "sessions": sessions,
        "sign_in": sign_in,
        "sign_up": sign_up,
        "last_active_session_id": current.map(|(s, _)| s.id.clone()),
        "last_authentication_strategy": null,
        "cookie_expires_at": null,
        "captcha_bypass": false,
        "created_at": state.created_at,
        "updated_at": updated_at,
    }))
}
