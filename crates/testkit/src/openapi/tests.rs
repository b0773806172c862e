//! The validator on small documents, and the management API's own document loading.

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
    let api = OpenApi::new(serde_json::from_str(latchkey_identity::web::bapi::OPENAPI).unwrap());
    assert!(
        api.operations()
            .contains(&("GET".to_owned(), "/v1/users".to_owned()))
    );
    assert!(api.statuses("GET", "/v1/users").contains(&200));
}
