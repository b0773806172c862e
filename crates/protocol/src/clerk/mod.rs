//! Clerk's JSON: the webhook event envelope and the objects it carries.
//!
//! Deserialisation is lenient where Clerk's contract allows variation: every documented
//! nullable field accepts `null`, missing optional fields take their defaults, unknown fields
//! are ignored and unknown event types are kept as raw JSON. It is strict where latchkey's
//! correctness depends on a field: a user without `id` or `updated_at` is not a user.
//! Serialisation writes Clerk's field names and units (milliseconds for every `*_at`), so
//! latchkey's identity part can emit exactly what Clerk would.

mod event;
mod event_type;
mod session;
mod user;

pub use event::{
    DeletedObject, Event, EventAttributes, EventData, EventError, HttpRequest,
    describe as describe_json_error, normalize_timestamp_ms,
};
pub use event_type::EventType;
pub use session::{Session, SessionActivity};
pub use user::{EmailAddress, User, Verification};

use serde::{Deserialize, Deserializer};

/// `null` and absent both mean the type's default.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Metadata is a JSON object; `null` or absent reads as `{}`.
pub(crate) fn metadata<'de, D>(deserializer: D) -> Result<serde_json::Value, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(empty_object()),
        Some(value @ serde_json::Value::Object(_)) => Ok(value),
        Some(_) => Err(serde::de::Error::custom("metadata must be a JSON object")),
    }
}

pub(crate) fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

#[cfg(test)]
mod tests;
