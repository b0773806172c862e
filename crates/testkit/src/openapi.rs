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

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::Reply;

/// Keywords that constrain instances, all implemented below.
const VALIDATING: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "$ref",
    "allOf",
    "minimum",
    "maximum",
    "maxItems",
];
/// Annotations, which constrain nothing (`format` is annotation-only by default in 3.1).
const ANNOTATIONS: &[&str] = &["description", "format", "default"];

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
        check_schemas_in(&doc, "#", &mut problems);
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
        let mut errors = Vec::new();
        Validator {
            api: self,
            errors: &mut errors,
        }
        .check(schema, instance, "$", false);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Collects problems while walking a schema and an instance together.
struct Validator<'a> {
    api: &'a OpenApi,
    errors: &'a mut Vec<String>,
}

impl Validator<'_> {
    /// Applies `schema` to `instance` at `at`; `in_all_of` is set for the branches of an
    /// `allOf`, whose undeclared-property check is done once, by the `allOf` itself.
    fn check(&mut self, whole: &Value, instance: &Value, at: &str, in_all_of: bool) {
        let schema = match whole {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                self.errors
                    .push(format!("{at}: the schema `false` allows nothing"));
                return;
            }
            Value::Object(schema) => schema,
            other => {
                self.errors.push(format!("{at}: {other} is not a schema"));
                return;
            }
        };
        for keyword in schema.keys() {
            if !VALIDATING.contains(&keyword.as_str()) && !ANNOTATIONS.contains(&keyword.as_str()) {
                self.errors.push(format!(
                    "{at}: the schema uses `{keyword}`, which this validator does not implement"
                ));
            }
        }
        let names_properties = schema.contains_key("properties") || schema.contains_key("allOf");
        if let Some(reference) = schema.get("$ref") {
            // Beside `properties` of its own, the target's undeclared-property check would
            // not know them; this node does it for both.
            let inner_all_of = in_all_of || names_properties;
            match reference.as_str().map(|r| self.api.pointer(r)) {
                Some(Ok(target)) => self.check(target, instance, at, inner_all_of),
                Some(Err(e)) => self.errors.push(format!("{at}: {e}")),
                None => self.errors.push(format!("{at}: $ref is not a string")),
            }
        }
        self.check_type(schema, instance, at);
        self.check_values(schema, instance, at);
        if let Some(Value::Array(branches)) = schema.get("allOf") {
            for branch in branches {
                self.check(branch, instance, at, true);
            }
        }
        match instance {
            Value::Object(object) => {
                self.check_object(schema, object, at);
                if names_properties && !in_all_of {
                    self.check_undeclared(whole, object, at);
                }
            }
            Value::Array(items) => self.check_array(schema, items, at),
            _ => {}
        }
    }

    fn check_type(&mut self, schema: &Map<String, Value>, instance: &Value, at: &str) {
        let allowed: Vec<&str> = match schema.get("type") {
            None => return,
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            Some(other) => {
                self.errors
                    .push(format!("{at}: `type` {other} is malformed"));
                return;
            }
        };
        if !allowed.iter().any(|t| is_of_type(instance, t)) {
            self.errors.push(format!(
                "{at}: expected {}, got {}",
                allowed.join(" or "),
                describe(instance)
            ));
        }
    }

    /// `enum`, `const`, `minimum`, `maximum`.
    fn check_values(&mut self, schema: &Map<String, Value>, instance: &Value, at: &str) {
        if let Some(expected) = schema.get("const")
            && expected != instance
        {
            self.errors.push(format!(
                "{at}: expected the constant {expected}, got {instance}"
            ));
        }
        if let Some(options) = schema.get("enum") {
            let listed = options.as_array().is_some_and(|o| o.contains(instance));
            if !listed {
                self.errors
                    .push(format!("{at}: {instance} is not one of {options}"));
            }
        }
        if let Some(n) = instance.as_f64() {
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                self.errors
                    .push(format!("{at}: {n} is below the minimum {min}"));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                self.errors
                    .push(format!("{at}: {n} is above the maximum {max}"));
            }
        }
    }

    /// `required`, `properties` and an explicit `additionalProperties`.
    fn check_object(&mut self, schema: &Map<String, Value>, object: &Map<String, Value>, at: &str) {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                self.errors
                    .push(format!("{at}: the required property `{name}` is missing"));
            }
        }
        let declared = schema.get("properties").and_then(Value::as_object);
        for (name, value) in object {
            let inner = format!("{at}.{name}");
            match declared.and_then(|d| d.get(name)) {
                Some(property) => self.check(property, value, &inner, false),
                None => match schema.get("additionalProperties") {
                    None | Some(Value::Bool(true)) => {}
                    Some(Value::Bool(false)) => self
                        .errors
                        .push(format!("{inner}: no additional properties are allowed")),
                    Some(extra) => self.check(extra, value, &inner, false),
                },
            }
        }
    }

    /// The strict part: properties no schema at this place names, unless one says
    /// `additionalProperties` (then the standard check above applies).
    fn check_undeclared(&mut self, schema: &Value, object: &Map<String, Value>, at: &str) {
        let mut named = BTreeSet::new();
        if !self.named_properties(schema, &mut named, 0) {
            return;
        }
        for name in object.keys().filter(|k| !named.contains(*k)) {
            self.errors.push(format!(
                "{at}.{name}: the server sends this property but the document does not name it"
            ));
        }
    }

    /// Adds the properties `schema` names (through `$ref` and `allOf`) to `named`; false if
    /// it admits others (`additionalProperties` present).
    fn named_properties(&self, schema: &Value, named: &mut BTreeSet<String>, depth: u8) -> bool {
        if depth > 32 {
            return false;
        }
        let Some(schema) = schema.as_object() else {
            return false;
        };
        if schema.contains_key("additionalProperties") {
            return false;
        }
        named.extend(
            schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(name, _)| name.clone()),
        );
        if let Some(target) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| self.api.pointer(r).ok())
            && !self.named_properties(target, named, depth + 1)
        {
            return false;
        }
        for branch in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !self.named_properties(branch, named, depth + 1) {
                return false;
            }
        }
        true
    }

    /// `items` and `maxItems`.
    fn check_array(&mut self, schema: &Map<String, Value>, items: &[Value], at: &str) {
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && u64::try_from(items.len()).unwrap_or(u64::MAX) > max
        {
            self.errors
                .push(format!("{at}: {} items, more than {max}", items.len()));
        }
        if let Some(item) = schema.get("items") {
            for (i, value) in items.iter().enumerate() {
                self.check(item, value, &format!("{at}[{i}]"), false);
            }
        }
    }
}

fn is_of_type(instance: &Value, name: &str) -> bool {
    match name {
        "null" => instance.is_null(),
        "boolean" => instance.is_boolean(),
        "string" => instance.is_string(),
        "object" => instance.is_object(),
        "array" => instance.is_array(),
        "number" => instance.is_number(),
        "integer" => {
            instance.is_i64()
                || instance.is_u64()
                || instance.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn describe(instance: &Value) -> String {
    let kind = match instance {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let text = instance.to_string();
    if text.len() > 80 {
        kind.to_owned()
    } else {
        format!("{kind} ({text})")
    }
}

/// Finds every schema in the document (under `schema`, `schemas`, and inside schemas) and
/// reports keywords the validator lacks.
fn check_schemas_in(value: &Value, at: &str, problems: &mut Vec<String>) {
    let Value::Object(map) = value else {
        if let Value::Array(items) = value {
            for (i, item) in items.iter().enumerate() {
                check_schemas_in(item, &format!("{at}/{i}"), problems);
            }
        }
        return;
    };
    for (key, inner) in map {
        let here = format!("{at}/{key}");
        match key.as_str() {
            "schema" => check_schema(inner, &here, problems),
            "schemas" => {
                for (name, schema) in inner.as_object().into_iter().flatten() {
                    check_schema(schema, &format!("{here}/{name}"), problems);
                }
            }
            _ => check_schemas_in(inner, &here, problems),
        }
    }
}

fn check_schema(schema: &Value, at: &str, problems: &mut Vec<String>) {
    let Value::Object(schema) = schema else {
        if !schema.is_boolean() {
            problems.push(format!("{at}: {schema} is not a schema"));
        }
        return;
    };
    for (keyword, inner) in schema {
        let here = format!("{at}/{keyword}");
        match keyword.as_str() {
            "properties" => {
                for (name, property) in inner.as_object().into_iter().flatten() {
                    check_schema(property, &format!("{here}/{name}"), problems);
                }
            }
            "items" | "additionalProperties" => check_schema(inner, &here, problems),
            "allOf" => {
                for (i, branch) in inner.as_array().into_iter().flatten().enumerate() {
                    check_schema(branch, &format!("{here}/{i}"), problems);
                }
            }
            k if VALIDATING.contains(&k) || ANNOTATIONS.contains(&k) => {}
            k => problems.push(format!("{at}: `{k}` is not implemented")),
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
mod tests {
    use super::*;
    use serde_json::json;

    fn api(schemas: Value) -> OpenApi {
        OpenApi::new(json!({
            "openapi": "3.1.0",
            "servers": [{"url": "/v1"}],
            "paths": {},
            "components": {"schemas": schemas}
        }))
    }

    fn errors(api: &OpenApi, schema: Value, instance: Value) -> Vec<String> {
        api.validate(&schema, &instance).err().unwrap_or_default()
    }

    #[test]
    fn types_nullable_types_const_and_enum() {
        let api = api(json!({}));
        let schema = json!({"type": ["integer", "null"]});
        assert!(errors(&api, schema.clone(), json!(3)).is_empty());
        assert!(errors(&api, schema.clone(), json!(null)).is_empty());
        assert_eq!(errors(&api, schema.clone(), json!(1.5)).len(), 1);
        assert_eq!(errors(&api, schema, json!("3")).len(), 1);
        assert_eq!(
            errors(&api, json!({"const": "user"}), json!("users")).len(),
            1
        );
        assert_eq!(
            errors(
                &api,
                json!({"type": "string", "enum": ["a", "b"]}),
                json!("c")
            )
            .len(),
            1
        );
        assert!(errors(&api, json!({"type": "boolean"}), json!(false)).is_empty());
    }

    #[test]
    fn objects_refs_items_and_all_of() {
        let api = api(json!({
            "Thing": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
            "Named": {"allOf": [
                {"$ref": "#/components/schemas/Thing"},
                {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
            ]},
            "Open": {"type": "object", "additionalProperties": true, "properties": {"a": {"type": "string"}}}
        }));
        let list = json!({"type": "array", "items": {"$ref": "#/components/schemas/Thing"}});
        assert!(errors(&api, list.clone(), json!([{"id": "a"}])).is_empty());
        let found = errors(&api, list, json!([{"id": "a"}, {"id": 1}, {}]));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("$[1].id"), "{found:?}");
        let named = json!({"$ref": "#/components/schemas/Named"});
        assert!(errors(&api, named.clone(), json!({"id": "a", "name": "b"})).is_empty());
        assert_eq!(errors(&api, named.clone(), json!({"id": "a"})).len(), 1);
        // Strict: a property no schema names is an error, even through allOf.
        let extra = errors(&api, named, json!({"id": "a", "name": "b", "secret": "x"}));
        assert_eq!(extra.len(), 1, "{extra:?}");
        assert!(extra[0].starts_with("$.secret"), "{extra:?}");
        let open = json!({"$ref": "#/components/schemas/Open"});
        assert!(errors(&api, open, json!({"a": "x", "b": 1})).is_empty());
        let closed = json!({"type": "object", "additionalProperties": false});
        assert_eq!(errors(&api, closed, json!({"b": 1})).len(), 1);
        let dangling = json!({"$ref": "#/components/schemas/Nope"});
        assert_eq!(errors(&api, dangling, json!(1)).len(), 1);
    }

    #[test]
    fn unimplemented_keywords_fail_loudly() {
        let api = api(json!({}));
        let found = errors(&api, json!({"oneOf": [{"type": "string"}]}), json!(1));
        assert!(found[0].contains("`oneOf`"), "{found:?}");
        let loaded = std::panic::catch_unwind(|| {
            OpenApi::new(json!({
                "paths": {},
                "components": {"schemas": {"X": {"properties": {"a": {"pattern": "^a"}}}}}
            }))
        });
        assert!(loaded.is_err(), "a document using `pattern` is refused");
    }

    #[test]
    fn numbers_and_array_sizes() {
        let api = api(json!({}));
        let schema = json!({"type": "integer", "minimum": 1, "maximum": 5});
        assert!(errors(&api, schema.clone(), json!(5)).is_empty());
        assert_eq!(errors(&api, schema, json!(0)).len(), 1);
        assert_eq!(
            errors(&api, json!({"type": "array", "maxItems": 1}), json!([1, 2])).len(),
            1
        );
    }

    #[test]
    fn the_management_apis_document_loads() {
        let api =
            OpenApi::new(serde_json::from_str(latchkey_identity::web::bapi::OPENAPI).unwrap());
        assert!(
            api.operations()
                .contains(&("GET".to_owned(), "/v1/users".to_owned()))
        );
        assert!(api.statuses("GET", "/v1/users").contains(&200));
    }
}
