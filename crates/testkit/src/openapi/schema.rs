//! The JSON Schema subset the validator implements, and the walk that applies it.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::OpenApi;

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

/// Every way `instance` departs from `schema`, whose `$ref`s point into `api`'s document, each
/// naming where in the instance it is.
pub(super) fn violations(api: &OpenApi, schema: &Value, instance: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    Validator {
        api,
        errors: &mut errors,
    }
    .check(schema, instance, "$", false);
    errors
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
pub(super) fn check_schemas_in(value: &Value, at: &str, problems: &mut Vec<String>) {
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
