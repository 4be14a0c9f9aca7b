//! Building surgical RFC 6902 JSON Patches against the request's original JSON.
//!
//! Only `add` operations are emitted, each on an array the webhook owns an entry of: appending with `/-`
//! leaves every existing element (and every field the webhook does not know) byte-for-byte as it was.

use json_patch::jsonptr::{PointerBuf, Token};
use json_patch::{AddOperation, Patch, PatchOperation};
use serde_json::Value;

/// Builds a JSON Pointer from unescaped reference tokens; jsonptr escapes them (RFC 6901: `~` is `~0`, `/`
/// is `~1`), without allocating for a token that needs no escape.
pub fn pointer<'t>(tokens: impl IntoIterator<Item = &'t str>) -> PointerBuf {
    PointerBuf::from_tokens(tokens.into_iter().map(Token::new))
}

/// An `add` operation.
pub fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// Collects the operations of one mutation.
#[derive(Debug, Default)]
pub struct PatchBuilder {
    ops: Vec<PatchOperation>,
}

impl PatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `items` to the array at `parent/field`: one `add .../-` per item when the array exists,
    /// otherwise one `add` of the whole new array (appending to a missing array is an error in RFC 6902).
    pub fn append(&mut self, parent: &[&str], field: &str, exists: bool, items: Vec<Value>) {
        if items.is_empty() {
            return;
        }
        let path = pointer(parent.iter().copied().chain([field]));
        if exists {
            let mut end = path;
            end.push_back("-");
            for item in items {
                self.ops.push(add(end.clone(), item));
            }
        } else {
            self.ops.push(add(path, Value::Array(items)));
        }
    }

    /// Whether no operation was collected.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The patch.
    pub fn build(self) -> Patch {
        Patch(self.ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_tilde_before_slash() {
        let escaped = |token: &str| pointer([token]).as_str()[1..].to_owned();
        assert_eq!(escaped("plain"), "plain");
        // A token without `~` or `/` is used as it is, not copied.
        let plain = "plain";
        assert!(std::ptr::eq(Token::new(plain).encoded(), plain));
        assert_eq!(escaped("a/b"), "a~1b");
        assert_eq!(escaped("a~b"), "a~0b");
        assert_eq!(escaped("~/"), "~0~1");
        assert_eq!(escaped("~1"), "~01");
        assert_eq!(
            pointer(["metadata", "labels", "kubernetes.io/os"]).as_str(),
            "/metadata/labels/kubernetes.io~1os"
        );
    }

    #[test]
    fn escaped_pointer_resolves_the_original_key() {
        let mut doc = json!({"a/b": {"c~d": []}});
        let patch = Patch(vec![add(pointer(["a/b", "c~d", "-"]), json!(1))]);
        json_patch::patch(&mut doc, &patch).unwrap();
        assert_eq!(doc, json!({"a/b": {"c~d": [1]}}));
    }

    #[test]
    fn append_to_existing_or_missing_arrays() {
        let mut builder = PatchBuilder::new();
        builder.append(
            &["spec", "containers", "0"],
            "env",
            true,
            vec![json!({"name": "A"}), json!({"name": "B"})],
        );
        builder.append(&["spec"], "volumes", false, vec![json!({"name": "v"})]);
        builder.append(&["spec"], "ignored", false, vec![]);
        let patch = builder.build();
        let value = serde_json::to_value(&patch).unwrap();
        assert_eq!(
            value,
            json!([
                {"op": "add", "path": "/spec/containers/0/env/-", "value": {"name": "A"}},
                {"op": "add", "path": "/spec/containers/0/env/-", "value": {"name": "B"}},
                {"op": "add", "path": "/spec/volumes", "value": [{"name": "v"}]},
            ])
        );
        let mut doc = json!({"spec": {"containers": [{"env": [{"name": "Z"}]}]}});
        json_patch::patch(&mut doc, &patch).unwrap();
        assert_eq!(
            doc,
            json!({"spec": {"containers": [{"env": [{"name": "Z"}, {"name": "A"}, {"name": "B"}]}],
                            "volumes": [{"name": "v"}]}})
        );
    }
}
