//! Clerk's Session object, as carried by `session.*` events (docs/PROTOCOLS.md §3.7).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::User;

/// A session; `id` equals the `sid` claim of its session tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    #[serde(default = "session_object")]
    pub object: String,
    pub user_id: String,
    #[serde(default)]
    pub client_id: Option<String>,
    /// `active`, `revoked`, `ended`, `expired`, `removed`, `abandoned`, `replaced`, `pending`.
    pub status: String,
    #[serde(default)]
    pub actor: Option<Value>,
    #[serde(default)]
    pub last_active_organization_id: Option<String>,
    #[serde(default)]
    pub last_active_at: Option<i64>,
    #[serde(default)]
    pub expire_at: Option<i64>,
    #[serde(default)]
    pub abandon_at: Option<i64>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub updated_at: Option<i64>,
    #[serde(default)]
    pub latest_activity: Option<SessionActivity>,
    /// The full user, in webhook payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Box<User>>,
}

fn session_object() -> String {
    "session".to_owned()
}

/// Where a session was last used from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionActivity {
    #[serde(default = "activity_object")]
    pub object: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub device_type: Option<String>,
    #[serde(default)]
    pub is_mobile: Option<bool>,
    #[serde(default)]
    pub browser_name: Option<String>,
    #[serde(default)]
    pub browser_version: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
}

fn activity_object() -> String {
    "session_activity".to_owned()
}
