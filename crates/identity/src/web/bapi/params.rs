//! Reading management API requests the way Clerk's clients send them: query strings with
//! repeated keys for arrays (`user_id=a&user_id=b`), and JSON bodies whose fields are checked
//! one by one so a wrong type is reported against its parameter. Unknown body fields are
//! ignored, as Clerk's SDKs may send fields latchkey does not know.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use http::StatusCode;
use serde_json::{Map, Value};

use super::error::BapiError;
use crate::users::metadata::MAX_METADATA_BYTES;

/// Most values one array query parameter may carry (Clerk's limit).
pub const MAX_VALUES: usize = 100;

/// Longest `external_id`, in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;

/// Refuses `value` (one kind of metadata, as it would be stored) over [`MAX_METADATA_BYTES`].
pub fn check_metadata_size(name: &str, value: &Value) -> Result<(), BapiError> {
    let size = serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_METADATA_BYTES {
        return Err(BapiError::invalid_value(
            name,
            format!("{name} may take at most 8 KB as JSON; this would take {size} bytes."),
        ));
    }
    Ok(())
}

/// Whether a JSON value holds a NUL character in any string or key.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Refuses a request whose decoded path or query string holds control characters. In the path
/// a `%XX` escape is decoded byte by byte (a `%` without two hex digits stays a `%`), so an
/// escaped control byte is refused even inside a multi-byte sequence.
pub fn check_request_target(uri: &http::Uri) -> Result<(), BapiError> {
    let path_bad = percent_encoding::percent_decode_str(uri.path()).any(|b| b < 0x20 || b == 0x7f);
    let query_bad = uri.query().is_some_and(|raw| {
        url::form_urlencoded::parse(raw.as_bytes())
            .any(|(k, v)| k.chars().any(char::is_control) || v.chars().any(char::is_control))
    });
    if path_bad || query_bad {
        return Err(BapiError::request_invalid());
    }
    Ok(())
}

/// A decoded query string.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.map(|raw| {
                url::form_urlencoded::parse(raw.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// Refuses parameters other than `allowed`, so an unsupported filter is never silently
    /// ignored (which would widen the answer).
    pub fn only(&self, allowed: &[&str]) -> Result<(), BapiError> {
        match self
            .0
            .iter()
            .find(|(name, _)| !allowed.contains(&name.as_str()))
        {
            Some((name, _)) => Err(BapiError::unknown_param(name)),
            None => Ok(()),
        }
    }

    /// The first value of `name` (Clerk honours only the first of a repeated scalar).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order; empty values are skipped.
    pub fn all(&self, name: &str) -> Result<Vec<String>, BapiError> {
        let values: Vec<String> = self
            .0
            .iter()
            .filter(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect();
        if values.len() > MAX_VALUES {
            return Err(BapiError::too_many_values(name, MAX_VALUES));
        }
        Ok(values)
    }

    /// An integer parameter within `min..=max`, or `default` when absent.
    pub fn integer(&self, name: &str, min: u32, max: u32, default: u32) -> Result<u32, BapiError> {
        let Some(text) = self.first(name) else {
            return Ok(default);
        };
        match text.trim().parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(BapiError::invalid_value(
                name,
                format!("{name} must be an integer from {min} to {max}."),
            )),
        }
    }
}

/// A JSON object body.
#[derive(Debug, Default)]
pub(crate) struct Body(Map<String, Value>);

impl Body {
    /// The body as axum read it: past the body limit (axum's default, 2 MB) a 413 and any
    /// other failure to read a 400, in Clerk's envelope rather than axum's plain text.
    pub fn read(bytes: Result<Bytes, BytesRejection>) -> Result<Self, BapiError> {
        match bytes {
            Ok(bytes) => Self::parse(&bytes),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(BapiError::body_too_large())
            }
            Err(_) => Err(BapiError::body_invalid()),
        }
    }

    /// An empty body reads as `{}`; anything but a JSON object is refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, BapiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            // NUL is valid JSON that Postgres text refuses; refused here for both backends.
            Ok(Value::Object(map))
                if !map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)) =>
            {
                Ok(Self(map))
            }
            _ => Err(BapiError::body_invalid()),
        }
    }

    /// `None` if absent, `Some(None)` if `null`, else the string.
    pub fn string(&self, name: &str) -> Result<Option<Option<String>>, BapiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
            Some(_) => Err(BapiError::invalid_type(name, "string")),
        }
    }

    /// A boolean; absent or `null` reads as `false`.
    pub fn flag(&self, name: &str) -> Result<bool, BapiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(BapiError::invalid_type(name, "boolean")),
        }
    }

    /// A metadata object, at most [`MAX_METADATA_BYTES`]; `null` reads as `{}` (cleared).
    pub fn object(&self, name: &str) -> Result<Option<Value>, BapiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Value::Object(Map::new()))),
            Some(value @ Value::Object(_)) => {
                check_metadata_size(name, value)?;
                Ok(Some(value.clone()))
            }
            Some(_) => Err(BapiError::invalid_value(
                name,
                format!("{name} must be a JSON object."),
            )),
        }
    }

    /// A list of strings; a single string reads as a list of one.
    pub fn strings(&self, name: &str) -> Result<Vec<String>, BapiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(BapiError::invalid_type(name, "array of strings")),
                })
                .collect(),
            Some(_) => Err(BapiError::invalid_type(name, "array of strings")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_in_the_target_are_refused() {
        for bad in [
            "/v1/users/%00",
            "/v1/users/a%0Ab",
            "/v1/users/x%7f",
            "/v1/users?query=%00",
            "/v1/events?after=%1f",
            "/v1/users?%00=1",
            "/v1/users/%%0a",
        ] {
            let uri: http::Uri = bad.parse().unwrap();
            assert!(check_request_target(&uri).is_err(), "{bad}");
        }
        for good in [
            "/v1/users/user_2abc",
            "/v1/users?query=J%C3%BCrgen%20M&limit=5",
            "/v1/users/100%25",
            "/v1/users/%zz",
            "/v1/users/%+1",
            "/v1/users/%4",
        ] {
            let uri: http::Uri = good.parse().unwrap();
            assert!(check_request_target(&uri).is_ok(), "{good}");
        }
    }

    #[test]
    fn nul_in_a_body_and_oversized_metadata_are_refused() {
        assert!(Body::parse(br#"{"first_name": "a\u0000b"}"#).is_err());
        assert!(Body::parse(br#"{"public_metadata": {"k\u0000": 1}}"#).is_err());
        assert!(Body::parse(br#"{"public_metadata": {"deep": ["\u0000"]}}"#).is_err());
        let fits = json!({ "public_metadata": { "k": "x".repeat(8000) } });
        let body = Body::parse(fits.to_string().as_bytes()).unwrap();
        assert!(body.object("public_metadata").unwrap().is_some());
        let too_big = json!({ "private_metadata": { "k": "x".repeat(8200) } });
        let body = Body::parse(too_big.to_string().as_bytes()).unwrap();
        assert!(body.object("private_metadata").is_err());
    }

    #[test]
    fn repeated_keys_are_arrays() {
        let q = Query::parse(Some("user_id=a&user_id=b&limit=5&email_address=x%40y.com"));
        assert_eq!(q.all("user_id").unwrap(), ["a", "b"]);
        assert_eq!(q.all("email_address").unwrap(), ["x@y.com"]);
        assert_eq!(q.integer("limit", 1, 500, 10).unwrap(), 5);
        assert_eq!(q.integer("offset", 0, u32::MAX, 0).unwrap(), 0);
        assert!(
            Query::parse(Some("limit=0"))
                .integer("limit", 1, 500, 10)
                .is_err()
        );
        assert!(q.only(&["user_id", "limit"]).is_err());
    }

    #[test]
    fn bodies_are_checked_field_by_field() {
        let body =
            Body::parse(br#"{"first_name": 3, "last_name": null, "email_address": "a@b.co"}"#)
                .unwrap();
        assert_eq!(
            body.string("first_name").unwrap_err().code,
            "form_param_type_invalid"
        );
        assert_eq!(body.string("last_name").unwrap(), Some(None));
        assert_eq!(body.strings("email_address").unwrap(), ["a@b.co"]);
        assert!(Body::parse(b"[1]").is_err());
        assert!(Body::parse(b"").unwrap().string("x").unwrap().is_none());
    }
}
