//! Reading management API requests the way Clerk's clients send them: query strings with
//! repeated keys for arrays (`user_id=a&user_id=b`), and JSON bodies whose fields are checked
//! one by one so a wrong type is reported against its parameter. Unknown body fields are
//! ignored, as Clerk's SDKs may send fields latchkey does not know.

use serde_json::{Map, Value};

use super::error::BapiError;

/// Most values one array query parameter may carry (Clerk's limit).
pub const MAX_VALUES: usize = 100;

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
    /// An empty body reads as `{}`; anything but a JSON object is refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, BapiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            _ => Err(BapiError::body_invalid()),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
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

    /// A metadata object; `null` reads as `{}` (cleared).
    pub fn object(&self, name: &str) -> Result<Option<Value>, BapiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Value::Object(Map::new()))),
            Some(value @ Value::Object(_)) => Ok(Some(value.clone())),
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

/// Deep-merges `patch` into `target` as Clerk's metadata PATCH does: objects merge key by key,
/// `null` removes a key, anything else replaces.
pub(crate) fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn metadata_merges_deeply_and_null_removes() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge(&mut target, json!({"a": {"b": 9, "c": null}, "e": [1]}));
        assert_eq!(target, json!({"a": {"b": 9}, "d": 3, "e": [1]}));
    }
}
