//! Rendering an identity account as Clerk's User JSON (docs/PROTOCOLS.md §3.3), for events, the
//! management API and token-holders asking about themselves.

use latchkey_protocol::clerk;
use serde_json::{Value, json};

use super::UserRecord;
use crate::oauth::accounts::ExternalAccountRecord;

/// Lockout state to show, computed by the throttle from the account's failed attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lockout {
    pub locked: bool,
    pub expires_in_seconds: Option<i64>,
    pub attempts_remaining: Option<i64>,
}

/// The account as Clerk would describe it.
#[must_use]
pub fn to_clerk(user: &UserRecord, lockout: Lockout) -> clerk::User {
    let email_addresses = user
        .emails
        .iter()
        .map(|e| clerk::EmailAddress {
            id: e.id.clone(),
            object: "email_address".to_owned(),
            email_address: e.email_address.clone(),
            reserved: false,
            verification: Some(clerk::Verification {
                object: verification_object(e.verification_strategy.as_deref()),
                status: e.verification_status.clone(),
                strategy: e.verification_strategy.clone(),
                attempts: e.verification_attempts,
                expire_at: e.verification_expire_at,
                extra: serde_json::Map::new(),
            }),
            linked_to: user
                .external_accounts
                .iter()
                .filter(|a| {
                    a.profile
                        .email_address
                        .as_deref()
                        .is_some_and(|address| address.eq_ignore_ascii_case(&e.email_address))
                })
                .map(|a| json!({"id": a.id, "type": a.profile.provider}))
                .collect(),
            matches_sso_connection: false,
            created_at: e.created_at,
            updated_at: e.updated_at,
        })
        .collect();
    clerk::User {
        id: user.id.clone(),
        object: "user".to_owned(),
        external_id: user.external_id.clone(),
        username: user.username.clone(),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        locale: None,
        image_url: user.image_url.clone(),
        profile_image_url: user.image_url.clone(),
        has_image: user.image_url.is_some(),
        primary_email_address_id: user.primary_email_address_id.clone(),
        primary_phone_number_id: None,
        primary_web3_wallet_id: None,
        email_addresses,
        phone_numbers: Vec::new(),
        web3_wallets: Vec::new(),
        passkeys: user.passkeys.iter().map(passkey).collect(),
        external_accounts: user
            .external_accounts
            .iter()
            .map(external_account)
            .collect(),
        saml_accounts: Vec::new(),
        enterprise_accounts: Vec::new(),
        organization_memberships: None,
        public_metadata: object_or_empty(&user.public_metadata),
        private_metadata: object_or_empty(&user.private_metadata),
        unsafe_metadata: object_or_empty(&user.unsafe_metadata),
        password_enabled: user.has_password,
        // As Clerk's: a second factor (an authenticator app); a passkey is a first factor,
        // whatever it proves, so it does not count here.
        two_factor_enabled: user.totp_enabled_at.is_some(),
        totp_enabled: user.totp_enabled_at.is_some(),
        backup_code_enabled: user.totp_enabled_at.is_some() && user.backup_codes_left > 0,
        mfa_enabled_at: user.totp_enabled_at,
        mfa_disabled_at: None,
        password_last_updated_at: user.password_updated_at,
        banned: user.banned_at.is_some(),
        locked: lockout.locked,
        lockout_expires_in_seconds: lockout.expires_in_seconds,
        verification_attempts_remaining: lockout.attempts_remaining,
        created_at: user.created_at,
        updated_at: user.updated_at,
        last_sign_in_at: user.last_sign_in_at,
        last_active_at: user.last_active_at,
        legal_accepted_at: None,
        delete_self_enabled: true,
        create_organization_enabled: false,
        create_organizations_limit: None,
    }
}

/// Clerk's Passkey object: verified by the registration ceremony that stored it.
fn passkey(p: &crate::passkeys::PasskeyRecord) -> Value {
    serde_json::json!({
        "id": p.id,
        "object": "passkey",
        "name": p.name,
        "last_used_at": p.last_used_at,
        "verification": {
            "object": "verification_passkey",
            "status": "verified",
            "strategy": "passkey",
            "nonce": null,
            "message": null,
            "attempts": null,
            "expire_at": null,
            "verified_at_client": null,
        },
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    })
}

/// Clerk names a verification's object after how it is done: a one-time code is
/// `verification_otp`, an operator's say-so `verification_admin`.
fn verification_object(strategy: Option<&str>) -> Option<String> {
    match strategy? {
        "email_code" => Some("verification_otp".to_owned()),
        "admin" => Some("verification_admin".to_owned()),
        s if s.starts_with("from_oauth_") => Some("verification_from_oauth".to_owned()),
        _ => None,
    }
}

/// A linked provider account as Clerk renders it (docs/PROTOCOLS.md §11.4): Google's as
/// `google_account`, every other provider's as `external_account`; the account exists because
/// the provider vouched for it, so its verification is `verified` with the provider's strategy.
fn external_account(record: &ExternalAccountRecord) -> Value {
    let account = &record.profile;
    let object = if account.provider == "oauth_google" {
        "google_account"
    } else {
        "external_account"
    };
    json!({
        "object": object,
        "id": record.id,
        "identification_id": record.id,
        "provider": account.provider,
        "provider_user_id": account.provider_user_id,
        "approved_scopes": account.approved_scopes,
        "email_address": account.email_address.clone().unwrap_or_default(),
        "email_address_verified": account.email_verified,
        "first_name": account.first_name.clone().unwrap_or_default(),
        "last_name": account.last_name.clone().unwrap_or_default(),
        "avatar_url": account.image_url.clone().unwrap_or_default(),
        "image_url": account.image_url,
        "username": account.username,
        "phone_number": null,
        "public_metadata": {},
        "label": null,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "verification": {
            "object": "verification_from_oauth",
            "status": "verified",
            "strategy": account.provider,
            "attempts": null,
            "expire_at": null,
        },
    })
}

fn object_or_empty(value: &Value) -> Value {
    if value.is_object() {
        value.clone()
    } else {
        Value::Object(serde_json::Map::new())
    }
}
