//! Clerk's User object (docs/PROTOCOLS.md §3.3).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{empty_object, metadata, null_default};

/// A Clerk user, as in `user.created` / `user.updated` events and the Backend API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default = "user_object", deserialize_with = "null_default")]
    pub object: String,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_image_url: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub has_image: bool,
    #[serde(default)]
    pub primary_email_address_id: Option<String>,
    #[serde(default)]
    pub primary_phone_number_id: Option<String>,
    #[serde(default)]
    pub primary_web3_wallet_id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub email_addresses: Vec<EmailAddress>,
    #[serde(default, deserialize_with = "null_default")]
    pub phone_numbers: Vec<Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub web3_wallets: Vec<Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub passkeys: Vec<Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub external_accounts: Vec<Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub saml_accounts: Vec<Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub enterprise_accounts: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_memberships: Option<Vec<Value>>,
    #[serde(default = "empty_object", deserialize_with = "metadata")]
    pub public_metadata: Value,
    /// Server-only data; present in webhooks and the Backend API, never sent to browsers.
    #[serde(default = "empty_object", deserialize_with = "metadata")]
    pub private_metadata: Value,
    /// Writable by the user from the browser: never trust it.
    #[serde(default = "empty_object", deserialize_with = "metadata")]
    pub unsafe_metadata: Value,
    #[serde(default, deserialize_with = "null_default")]
    pub password_enabled: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub two_factor_enabled: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub totp_enabled: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub backup_code_enabled: bool,
    #[serde(default)]
    pub mfa_enabled_at: Option<i64>,
    #[serde(default)]
    pub mfa_disabled_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_last_updated_at: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub banned: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub locked: bool,
    /// Seconds, not milliseconds.
    #[serde(default)]
    pub lockout_expires_in_seconds: Option<i64>,
    #[serde(default)]
    pub verification_attempts_remaining: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub last_sign_in_at: Option<i64>,
    #[serde(default)]
    pub last_active_at: Option<i64>,
    #[serde(default)]
    pub legal_accepted_at: Option<i64>,
    #[serde(default = "yes", deserialize_with = "null_default")]
    pub delete_self_enabled: bool,
    #[serde(default = "yes", deserialize_with = "null_default")]
    pub create_organization_enabled: bool,
    #[serde(default)]
    pub create_organizations_limit: Option<i64>,
}

fn user_object() -> String {
    "user".to_owned()
}

fn yes() -> bool {
    true
}

impl User {
    /// The primary email address: the entry whose id is `primary_email_address_id`. Never
    /// the first entry by position; `None` for users without one (phone-only, some OAuth).
    #[must_use]
    pub fn primary_email(&self) -> Option<&EmailAddress> {
        let primary = self.primary_email_address_id.as_deref()?;
        self.email_addresses.iter().find(|e| e.id == primary)
    }
}

/// An email address of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailAddress {
    pub id: String,
    #[serde(default = "email_object", deserialize_with = "null_default")]
    pub object: String,
    pub email_address: String,
    #[serde(default, deserialize_with = "null_default")]
    pub reserved: bool,
    #[serde(default)]
    pub verification: Option<Verification>,
    #[serde(default, deserialize_with = "null_default")]
    pub linked_to: Vec<Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub matches_sso_connection: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub created_at: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub updated_at: i64,
}

fn email_object() -> String {
    "email_address".to_owned()
}

/// How an identification was verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// `unverified`, `verified`, `failed`, `expired`, …
    pub status: String,
    /// `email_code`, `admin`, `oauth_google`, …
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub attempts: Option<i64>,
    #[serde(default)]
    pub expire_at: Option<i64>,
    /// Strategy-specific fields (`channel`, `error`, …), kept as received.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}
