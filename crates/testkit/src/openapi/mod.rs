//! The management API's OpenAPI document as a test oracle: which operations and statuses it
//! documents, and a small JSON Schema validator for the response bodies it describes.
//!
//! The validator implements exactly the keywords the document uses (`type`, also as an array
//! of types; `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`,
//! `$ref` to `#/…`, `allOf`, `minimum`, `maximum`, `maxItems`) and ignores the annotations
//! `description`, `format` and `default`. Any other keyword is an error, both when the
//! document is loaded and when a schema is applied, so a keyword added to the document later
//! can never be passed over silently.
//!
//! It is also stricter than JSON Schema in one way: an object schema that names its
//! `properties` (here or through `allOf`) and does not say `additionalProperties: true`
//! refuses properties it does not name. Otherwise a field the server sends but the document
//! leaves out would pass unnoticed.

mod schema;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::Reply;

/// HTTP methods an OpenAPI path item may hold operations under.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One operation: its method in capitals and its full path template (`/v1/users/{user_id}`).
pub type Operation = (String, String);

/// A loaded OpenAPI 3.1 document.
#[derive(Debug, Clone)]
pub struct OpenApi {
    doc: Value,
    /// The `servers[0].url` prefix every path is served under.
    base: String,
}

impl OpenApi {
    /// Loads `doc`, refusing it if any schema in it uses a keyword the validator lacks.
    ///
    /// # Panics
    /// If the document has no `paths` or uses an unimplemented schema keyword.
    #[must_use]
    pub fn new(doc: Value) -> Self {
        let mut problems = Vec::new();
        schema::check_schemas_in(&doc, "#", &mut problems);
        assert!(
            problems.is_empty(),
            "the document uses schema keywords the validator does not implement:\n{}",
            problems.join("\n")
        );
        assert!(doc["paths"].is_object(), "the document has no paths");
        let base = doc["servers"][0]["url"]
            .as_str()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned();
        Self { doc, base }
    }

    /// Every documented operation.
    #[must_use]
    pub fn operations(&self) -> BTreeSet<Operation> {
        let mut found = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                if METHODS.contains(&method.as_str()) {
                    found.insert((method.to_uppercase(), format!("{}{path}", self.base)));
                }
            }
        }
        found
    }

    /// The operation object of `method path` (path as served, with the server prefix).
    fn operation(&self, method: &str, path: &str) -> Result<&Value, String> {
        let relative = path
            .strip_prefix(&self.base)
            .ok_or_else(|| format!("{path} is not under {}", self.base))?;
        self.doc["paths"]
            .get(relative)
            .and_then(|item| item.get(method.to_lowercase()))
            .ok_or_else(|| format!("{method} {path} is not documented"))
    }

    /// The statuses documented for an operation.
    ///
    /// # Panics
    /// If the operation is not documented or a status is not a number.
    #[must_use]
    pub fn statuses(&self, method: &str, path: &str) -> BTreeSet<u16> {
        let operation = self.operation(method, path).unwrap();
        operation["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(status, _)| status.parse().unwrap())
            .collect()
    }

    /// Judges a live reply to `method path` (the path template): its status must be
    /// documented for the operation, its documented headers present, and its body JSON of the
    /// documented media type that validates against the documented schema.
    ///
    /// # Errors
    /// Every way the reply departs from the document, one per line.
    pub fn check(&self, method: &str, path: &str, reply: &Reply) -> Result<(), String> {
        let operation = self.operation(method, path)?;
        let status = reply.status.as_u16();
        let response = operation["responses"]
            .get(status.to_string())
            .ok_or_else(|| {
                format!(
                    "{method} {path} answered {status}, which is not documented; body: {}",
                    reply.text()
                )
            })?;
        let response = self.resolve(response)?;
        let mut problems = Vec::new();
        for (name, _) in response["headers"].as_object().into_iter().flatten() {
            if reply.header(name).is_none() {
                problems.push(format!("documented header {name} is missing"));
            }
        }
        if let Some(content) = response["content"].as_object() {
            let type_sent = reply
                .header("content-type")
                .and_then(|t| t.split(';').next())
                .unwrap_or("")
                .trim()
                .to_owned();
            match content.get(&type_sent) {
                None => problems.push(format!(
                    "content type {type_sent:?} is not documented (documented: {:?})",
                    content.keys().collect::<Vec<_>>()
                )),
                Some(media) => match serde_json::from_slice::<Value>(&reply.body) {
                    Err(e) => problems.push(format!("the body is not JSON ({e})")),
                    Ok(body) => {
                        if let Err(errors) = self.validate(&media["schema"], &body) {
                            problems.extend(errors);
                        }
                    }
                },
            }
        } else if !reply.body.is_empty() {
            problems.push("a body was sent where none is documented".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{method} {path} → {status} departs from the document:\n  {}\nbody: {}",
                problems.join("\n  "),
                reply.text()
            ))
        }
    }

    /// Follows `$ref` (also a chain of them) to the object it names.
    fn resolve<'a>(&'a self, mut value: &'a Value) -> Result<&'a Value, String> {
        for _ in 0..32 {
            match value.get("$ref").and_then(Value::as_str) {
                Some(reference) => value = self.pointer(reference)?,
                None => return Ok(value),
            }
        }
        Err("a $ref chain does not end".to_owned())
    }

    fn pointer(&self, reference: &str) -> Result<&Value, String> {
        reference
            .strip_prefix('#')
            .and_then(|pointer| self.doc.pointer(pointer))
            .ok_or_else(|| format!("$ref {reference} does not resolve within the document"))
    }

    /// Validates `instance` against `schema`, whose `$ref`s point into this document.
    ///
    /// # Errors
    /// Each violation, naming where in the instance it is.
    pub fn validate(&self, schema: &Value, instance: &Value) -> Result<(), Vec<String>> {
        let errors = schema::violations(self, schema, instance);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Which (operation, status) pairs were seen, for a coverage check at the end of a test.
#[derive(Debug, Default)]
pub struct Coverage {
    seen: BTreeMap<Operation, BTreeSet<u16>>,
}

impl Coverage {
    pub fn record(&mut self, method: &str, path: &str, status: u16) {
        self.seen
            .entry((method.to_owned(), path.to_owned()))
            .or_default()
            .insert(status);
    }

    /// Documented (operation, status) pairs never seen, leaving out statuses in `excused`.
    #[must_use]
    pub fn missing(&self, api: &OpenApi, excused: &[u16]) -> Vec<String> {
        let mut missing = Vec::new();
        for (method, path) in api.operations() {
            let seen = self.seen.get(&(method.clone(), path.clone()));
            for status in api.statuses(&method, &path) {
                if !excused.contains(&status) && !seen.is_some_and(|s| s.contains(&status)) {
                    missing.push(format!("{method} {path} {status}"));
                }
            }
        }
        missing
    }
}

#[cfg(test)]
mod tests;
