//! The event envelope (docs/PROTOCOLS.md §3.2) and the deleted-object stub (§3.6).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EventType, Session, User};

/// A parsed webhook event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event type, e.g. `user.created`; an open set.
    pub kind: EventType,
    /// When the event occurred, Unix milliseconds (normalised: see
    /// [`normalize_timestamp_ms`]); `None` if the sender left it out.
    pub timestamp_ms: Option<i64>,
    pub instance_id: Option<String>,
    pub event_attributes: Option<EventAttributes>,
    pub data: EventData,
}

/// What an event carries, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    /// `user.created`, `user.updated`: the whole user, not a diff.
    User(Box<User>),
    /// `user.deleted`: only the id survives.
    UserDeleted(DeletedObject),
    /// `session.created`, `.ended`, `.removed`, `.revoked`, `.pending`.
    Session(Box<Session>),
    /// Any other type, kept as received.
    Other(Value),
}

/// The stub Clerk sends for deleted objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedObject {
    pub object: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// The request that caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventAttributes {
    #[serde(default)]
    pub http_request: HttpRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpRequest {
    #[serde(default)]
    pub client_ip: String,
    #[serde(default)]
    pub user_agent: String,
}

/// Why a body is not a usable event. Messages never quote the body (it carries personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    #[error("the event has no \"type\"")]
    MissingType,
    #[error("the event has no \"data\" object")]
    MissingData,
    #[error("\"object\" is {0:?}, expected \"event\"")]
    NotAnEvent(String),
    #[error("\"timestamp\" is not a number")]
    BadTimestamp,
    #[error("the data of a {kind} event is invalid: {message}")]
    InvalidData { kind: EventType, message: String },
}

#[derive(Deserialize)]
struct Envelope<'a> {
    /// Kept as raw text and parsed once, straight into the type its event needs.
    #[serde(default, borrow)]
    data: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    object: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    timestamp: Option<Value>,
    #[serde(default)]
    instance_id: Option<String>,
    #[serde(default)]
    event_attributes: Option<EventAttributes>,
}

/// Reads an envelope `timestamp` that Clerk documents in milliseconds but shows in seconds in
/// its OpenAPI examples: values below 10^12 (before 2001 in ms) are taken as seconds.
#[must_use]
pub fn normalize_timestamp_ms(value: i64) -> i64 {
    if value.abs() < 1_000_000_000_000 {
        value.saturating_mul(1000)
    } else {
        value
    }
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "saturating float-to-int is the intent"
)]
fn saturating_i64(value: f64) -> i64 {
    value.trunc() as i64
}

impl Event {
    /// Parses a verified body.
    ///
    /// # Errors
    /// If the body is not an event, or the data of a type latchkey understands is malformed.
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        let envelope: Envelope =
            serde_json::from_slice(body).map_err(|e| EventError::NotJson(describe(&e)))?;
        if let Some(object) = &envelope.object
            && object != "event"
        {
            return Err(EventError::NotAnEvent(object.clone()));
        }
        let kind = envelope
            .kind
            .filter(|k| !k.is_empty())
            .map(EventType::from)
            .ok_or(EventError::MissingType)?;
        let timestamp_ms = match envelope.timestamp {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(normalize_timestamp_ms(
                n.as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(saturating_i64))
                    .ok_or(EventError::BadTimestamp)?,
            )),
            Some(_) => return Err(EventError::BadTimestamp),
        };
        let Some(data) = envelope.data.filter(|raw| raw.get().starts_with('{')) else {
            return Err(EventError::MissingData);
        };
        let data = data.get();
        let invalid = |e: serde_json::Error| EventError::InvalidData {
            kind: kind.clone(),
            message: describe(&e),
        };
        let data = match kind {
            EventType::UserCreated | EventType::UserUpdated => {
                let user: User = serde_json::from_str(data).map_err(invalid)?;
                if user.id.is_empty() {
                    return Err(EventError::InvalidData {
                        kind,
                        message: "the user has an empty id".to_owned(),
                    });
                }
                EventData::User(Box::new(user))
            }
            EventType::UserDeleted => {
                let stub: DeletedObject = serde_json::from_str(data).map_err(invalid)?;
                if stub.id.as_deref().is_none_or(str::is_empty) {
                    return Err(EventError::InvalidData {
                        kind,
                        message: "the deleted user has no id".to_owned(),
                    });
                }
                EventData::UserDeleted(stub)
            }
            ref session if session.is_session() => {
                EventData::Session(Box::new(serde_json::from_str(data).map_err(invalid)?))
            }
            _ => EventData::Other(serde_json::from_str(data).map_err(invalid)?),
        };
        Ok(Self {
            kind,
            timestamp_ms,
            instance_id: envelope.instance_id,
            event_attributes: envelope.event_attributes,
            data,
        })
    }
}

/// A serde error without the input it choked on: quoted values are elided, field names (in
/// backticks) and positions are kept. Safe to log: the values may be addresses or names.
#[must_use]
pub fn describe(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let mut out = String::with_capacity(text.len());
    let mut in_quotes = false;
    for c in text.chars() {
        if c == '"' {
            if in_quotes {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            in_quotes = !in_quotes;
        } else if !in_quotes {
            out.push(c);
        }
    }
    out
}
