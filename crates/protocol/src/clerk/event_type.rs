//! [`EventType`]: the `type` of a Clerk webhook event.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `type` of an event, by its wire name. The set is open: Clerk adds types, and a receiver
/// must keep whatever it is sent, so names latchkey does not know are kept as [`Self::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `user.created`
    UserCreated,
    /// `user.updated`
    UserUpdated,
    /// `user.deleted`
    UserDeleted,
    /// `session.created`
    SessionCreated,
    /// `session.ended`
    SessionEnded,
    /// `session.removed`
    SessionRemoved,
    /// `session.revoked`
    SessionRevoked,
    /// `session.pending`
    SessionPending,
    /// Any other name, as received.
    Other(String),
}

impl EventType {
    /// The types whose wire names latchkey knows.
    pub const KNOWN: [Self; 8] = [
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::SessionCreated,
        Self::SessionEnded,
        Self::SessionRemoved,
        Self::SessionRevoked,
        Self::SessionPending,
    ];

    /// The wire name, e.g. `user.created`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::SessionCreated => "session.created",
            Self::SessionEnded => "session.ended",
            Self::SessionRemoved => "session.removed",
            Self::SessionRevoked => "session.revoked",
            Self::SessionPending => "session.pending",
            Self::Other(name) => name,
        }
    }

    /// Whether the event is about a session (its data is a session), including session types
    /// latchkey does not know by name.
    #[must_use]
    pub fn is_session(&self) -> bool {
        self.as_str().starts_with("session.")
    }
}

impl From<&str> for EventType {
    fn from(name: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|known| known.as_str() == name)
            .unwrap_or_else(|| Self::Other(name.to_owned()))
    }
}

impl From<String> for EventType {
    fn from(name: String) -> Self {
        match Self::from(name.as_str()) {
            Self::Other(_) => Self::Other(name),
            known => known,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for EventType {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::EventType;

    #[test]
    fn wire_names_round_trip_and_unknown_names_are_kept() {
        for known in EventType::KNOWN {
            let json = serde_json::to_string(&known).unwrap();
            assert_eq!(json, format!("\"{}\"", known.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), known);
        }
        assert_eq!(
            EventType::from("user.created"),
            EventType::UserCreated,
            "a known name is never kept as Other"
        );
        let other: EventType = serde_json::from_str("\"organization.created\"").unwrap();
        assert_eq!(other, EventType::Other("organization.created".to_owned()));
        assert_eq!(
            serde_json::to_string(&other).unwrap(),
            "\"organization.created\""
        );
        assert!(EventType::from("session.future").is_session());
        assert!(!EventType::UserCreated.is_session());
    }
}
