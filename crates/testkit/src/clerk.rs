//! Clerk-shaped events for tests, and signing them as Svix does.

use latchkey_protocol::webhook::SigningSecret;
use serde_json::{Value, json};

/// A full Clerk User object (every field §3.3 lists) for `id`, at version `updated_at`.
#[must_use]
pub fn user(id: &str, updated_at: i64, email: &str, first_name: &str) -> Value {
    let email_id = format!("idn_{}", id.trim_start_matches("user_"));
    json!({
        "backup_code_enabled": false, "banned": false, "create_organization_enabled": true,
        "create_organizations_limit": null, "created_at": 1_716_883_200_000_i64, "delete_self_enabled": true,
        "email_addresses": [
            {"created_at": 1_716_883_150_000_i64, "email_address": format!("old-{}@example.com", id.trim_start_matches("user_")), "id": format!("{email_id}_old"),
             "linked_to": [], "matches_sso_connection": false, "object": "email_address", "reserved": false,
             "updated_at": updated_at, "verification": {"status": "verified", "strategy": "email_code"}},
            {"created_at": 1_716_883_150_000_i64, "email_address": email, "id": email_id,
             "linked_to": [], "matches_sso_connection": false, "object": "email_address", "reserved": false,
             "updated_at": updated_at, "verification": {"attempts": 1, "expire_at": null, "object": "verification_otp",
             "status": "verified", "strategy": "email_code"}}
        ],
        "enterprise_accounts": [], "external_accounts": [], "external_id": null,
        "first_name": first_name, "has_image": false, "id": id,
        "image_url": format!("https://img.example.com/{id}.png"), "last_active_at": updated_at,
        "last_name": "Tester", "last_sign_in_at": null, "legal_accepted_at": null, "locale": null,
        "locked": false, "lockout_expires_in_seconds": null, "mfa_disabled_at": null, "mfa_enabled_at": null,
        "object": "user", "passkeys": [], "password_enabled": true, "phone_numbers": [],
        "primary_email_address_id": email_id, "primary_phone_number_id": null, "primary_web3_wallet_id": null,
        "private_metadata": {"secret": "not for the app"}, "profile_image_url": "https://www.gravatar.com/avatar?d=mp",
        "public_metadata": {"plan": first_name.to_lowercase()}, "saml_accounts": [], "totp_enabled": false,
        "two_factor_enabled": false, "unsafe_metadata": {}, "updated_at": updated_at,
        "username": format!("u_{}", id.trim_start_matches("user_")), "verification_attempts_remaining": 100, "web3_wallets": []
    })
}

/// An event envelope around `data`.
#[must_use]
pub fn event(kind: &str, data: Value, timestamp_ms: i64) -> Value {
    json!({
        "data": data,
        "event_attributes": {"http_request": {"client_ip": "203.0.113.7", "user_agent": "latchkey-tests"}},
        "instance_id": "ins_2g7np7Hrk0SN6kj5EDMLDaKNL0S",
        "object": "event",
        "timestamp": timestamp_ms,
        "type": kind
    })
}

/// `user.created` / `user.updated` for a user version.
#[must_use]
pub fn user_event(kind: &str, id: &str, updated_at: i64, email: &str, first_name: &str) -> Value {
    event(
        kind,
        user(id, updated_at, email, first_name),
        updated_at + 50,
    )
}

/// `user.deleted` for `id`.
#[must_use]
pub fn deleted_event(id: &str, timestamp_ms: i64) -> Value {
    event(
        "user.deleted",
        json!({"deleted": true, "id": id, "object": "user"}),
        timestamp_ms,
    )
}

/// Signs deliveries as Svix does.
#[derive(Debug, Clone)]
pub struct Signer {
    pub secret: SigningSecret,
}

impl Signer {
    #[must_use]
    pub fn new() -> Self {
        Self {
            secret: SigningSecret::generate(),
        }
    }

    /// The `whsec_` text to configure a receiver with.
    #[must_use]
    pub fn secret_text(&self) -> String {
        self.secret.expose()
    }

    /// `svix-id`, `svix-timestamp` (now) and `svix-signature` for `body`.
    #[must_use]
    pub fn headers(&self, msg_id: &str, body: &[u8]) -> [(&'static str, String); 3] {
        self.headers_at(msg_id, latchkey_protocol::time::now_secs(), body)
    }

    /// The same, at an explicit timestamp (seconds).
    #[must_use]
    pub fn headers_at(
        &self,
        msg_id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> [(&'static str, String); 3] {
        [
            ("svix-id", msg_id.to_owned()),
            ("svix-timestamp", timestamp.to_string()),
            ("svix-signature", self.secret.sign(msg_id, timestamp, body)),
        ]
    }
}

impl Default for Signer {
    fn default() -> Self {
        Self::new()
    }
}
