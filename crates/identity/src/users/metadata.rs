//! Clerk's metadata rules: three JSON objects per user (public, private, unsafe), each at most
//! 8 KB, and the deep merge of its metadata PATCH.

use serde_json::Value;

/// Most bytes one kind of metadata may take as JSON (Clerk's documented limit is 8 KB). Each
/// user's events carry all three, and receivers cap bodies (latchkey's at 1 MiB).
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// Deep-merges `patch` into `target` as Clerk's metadata PATCH does: objects merge key by key,
/// `null` removes a key, anything else replaces.
pub fn merge(target: &mut Value, patch: Value) {
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
    fn metadata_merges_deeply_and_null_removes() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge(&mut target, json!({"a": {"b": 9, "c": null}, "e": [1]}));
        assert_eq!(target, json!({"a": {"b": 9}, "d": 3, "e": [1]}));
    }
}
