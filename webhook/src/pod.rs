//! Read-only navigation over the pod JSON of an admission request.
//!
//! Only the fields the mutation needs are looked at, by borrowing into the request's `serde_json::Value`:
//! nothing is decoded into a typed Pod, so nothing can be lost by re-serializing one.

use serde_json::Value;

pub use irsa_core::names::TOKEN_VOLUME_NAME;

/// The two container lists the webhook injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    /// `spec.containers`.
    Container,
    /// `spec.initContainers`, native sidecars (`restartPolicy: Always`) included.
    InitContainer,
}

impl ContainerKind {
    /// The field name under `spec`.
    pub fn field(self) -> &'static str {
        match self {
            Self::Container => "containers",
            Self::InitContainer => "initContainers",
        }
    }
}

/// A borrowed view of one container of the pod.
#[derive(Debug, Clone, Copy)]
pub struct ContainerRef<'a> {
    /// Which list it is in.
    pub kind: ContainerKind,
    /// Its index in that list (the JSON Pointer segment).
    pub index: usize,
    /// Its name (empty when missing, which the apiserver will refuse anyway).
    pub name: &'a str,
    /// The whole container object.
    pub value: &'a Value,
}

/// The state of an optional array field such as `env`.
#[derive(Debug, Clone, Copy)]
pub enum ListField<'a> {
    /// Absent or `null`: the patch adds the whole array.
    Absent,
    /// An array: the patch appends with `/-`.
    Present(&'a [Value]),
    /// Some other JSON type: the object is malformed and is left alone.
    Malformed,
}

impl<'a> ListField<'a> {
    /// Reads `field` of `object`.
    pub fn of(object: &'a Value, field: &str) -> Self {
        match object.get(field) {
            None | Some(Value::Null) => Self::Absent,
            Some(Value::Array(items)) => Self::Present(items),
            Some(_) => Self::Malformed,
        }
    }

    /// The items, empty when absent or malformed.
    pub fn items(&self) -> &'a [Value] {
        match self {
            Self::Present(items) => items,
            Self::Absent | Self::Malformed => &[],
        }
    }

    /// Whether the array exists (so that `/-` appends work).
    pub fn exists(&self) -> bool {
        matches!(self, Self::Present(_))
    }
}

impl<'a> ContainerRef<'a> {
    /// The container's `env`.
    pub fn env(&self) -> ListField<'a> {
        ListField::of(self.value, "env")
    }

    /// The container's `volumeMounts`.
    pub fn volume_mounts(&self) -> ListField<'a> {
        ListField::of(self.value, "volumeMounts")
    }

    /// Whether `env` has an entry with this name, whatever its `value` or `valueFrom`.
    pub fn has_env(&self, name: &str) -> bool {
        self.env()
            .items()
            .iter()
            .any(|entry| str_field(entry, "name") == Some(name))
    }
}

/// Reads a string field of an object.
pub fn str_field<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field)?.as_str()
}

/// Follows a path of object keys.
pub fn get_path<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// `metadata.labels[key]`.
pub fn label<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    get_path(pod, &["metadata", "labels", key])?.as_str()
}

/// `metadata.annotations[key]`.
pub fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    get_path(pod, &["metadata", "annotations", key])?.as_str()
}

/// `metadata.labels["<prefix>/<suffix>"]`, without building the key (this runs on every admission).
pub fn prefixed_label<'a>(pod: &'a Value, prefix: &str, suffix: &str) -> Option<&'a str> {
    prefixed_entry(get_path(pod, &["metadata", "labels"])?, prefix, suffix)
}

/// `metadata.annotations["<prefix>/<suffix>"]`, without building the key (this runs on every admission).
pub fn prefixed_annotation<'a>(pod: &'a Value, prefix: &str, suffix: &str) -> Option<&'a str> {
    prefixed_entry(get_path(pod, &["metadata", "annotations"])?, prefix, suffix)
}

fn prefixed_entry<'a>(map: &'a Value, prefix: &str, suffix: &str) -> Option<&'a str> {
    let entries = map
        .as_object()?
        .iter()
        .filter_map(|(key, value)| Some((key.as_str(), value.as_str()?)));
    crate::views::prefixed_get(entries, prefix, suffix)
}

/// `spec.serviceAccountName`, or `default` as the ServiceAccount admission plugin would set it.
pub fn service_account_name(pod: &Value) -> &str {
    get_path(pod, &["spec", "serviceAccountName"])
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .unwrap_or("default")
}

/// `metadata.name`, else `metadata.generateName` (pods of a ReplicaSet have no name at admission), else "".
pub fn pod_name(pod: &Value) -> &str {
    let meta = |field| {
        get_path(pod, &["metadata", field])
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    meta("name").or_else(|| meta("generateName")).unwrap_or("")
}

/// `spec.containers` or `spec.initContainers` as a list field (absent, an array, or malformed).
pub fn container_list(pod: &Value, kind: ContainerKind) -> ListField<'_> {
    match pod.get("spec") {
        Some(spec) => ListField::of(spec, kind.field()),
        None => ListField::Absent,
    }
}

/// The containers of one list, in order (none when the list is absent or malformed).
pub fn containers(pod: &Value, kind: ContainerKind) -> impl Iterator<Item = ContainerRef<'_>> {
    container_list(pod, kind)
        .items()
        .iter()
        .enumerate()
        .map(move |(index, value)| ContainerRef {
            kind,
            index,
            name: str_field(value, "name").unwrap_or(""),
            value,
        })
}

/// `spec.volumes`.
pub fn volumes(pod: &Value) -> ListField<'_> {
    match pod.get("spec") {
        Some(spec) => ListField::of(spec, "volumes"),
        None => ListField::Absent,
    }
}

/// Whether the pod will run on Windows nodes, by any of the three ways a pod can say so.
pub fn is_windows(pod: &Value) -> bool {
    let Some(spec) = pod.get("spec") else {
        return false;
    };
    node_selector_is_windows(spec) || os_is_windows(spec) || required_affinity_is_windows(spec)
}

const OS_LABELS: [&str; 2] = ["kubernetes.io/os", "beta.kubernetes.io/os"];

fn node_selector_is_windows(spec: &Value) -> bool {
    let Some(selector) = spec.get("nodeSelector") else {
        return false;
    };
    OS_LABELS
        .iter()
        .any(|label| str_field(selector, label) == Some("windows"))
}

fn os_is_windows(spec: &Value) -> bool {
    get_path(spec, &["os", "name"]).and_then(Value::as_str) == Some("windows")
}

/// Node selector terms are ORed: the pod is Windows-only when every term requires the OS label to be
/// `windows` (one of the term's ANDed expressions is `os In [windows]`, with no other value).
fn required_affinity_is_windows(spec: &Value) -> bool {
    let terms = get_path(
        spec,
        &[
            "affinity",
            "nodeAffinity",
            "requiredDuringSchedulingIgnoredDuringExecution",
            "nodeSelectorTerms",
        ],
    )
    .and_then(Value::as_array);
    let Some(terms) = terms else { return false };
    !terms.is_empty() && terms.iter().all(term_requires_windows)
}

fn term_requires_windows(term: &Value) -> bool {
    let Some(expressions) = term.get("matchExpressions").and_then(Value::as_array) else {
        return false;
    };
    expressions.iter().any(|expr| {
        let key_is_os = str_field(expr, "key").is_some_and(|key| OS_LABELS.contains(&key));
        let values = expr.get("values").and_then(Value::as_array);
        key_is_os
            && str_field(expr, "operator") == Some("In")
            && values.is_some_and(|values| {
                !values.is_empty() && values.iter().all(|v| v.as_str() == Some("windows"))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn windows_by_each_way() {
        assert!(!is_windows(&json!({})));
        assert!(!is_windows(&json!({"spec": {}})));
        assert!(is_windows(
            &json!({"spec": {"nodeSelector": {"kubernetes.io/os": "windows"}}})
        ));
        assert!(is_windows(
            &json!({"spec": {"nodeSelector": {"beta.kubernetes.io/os": "windows"}}})
        ));
        assert!(!is_windows(
            &json!({"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}})
        ));
        assert!(is_windows(&json!({"spec": {"os": {"name": "windows"}}})));
        assert!(!is_windows(&json!({"spec": {"os": {"name": "linux"}}})));
    }

    fn affinity(terms: Value) -> Value {
        json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}})
    }

    #[test]
    fn windows_by_required_affinity_only_when_every_term_requires_it() {
        let win = json!({"matchExpressions": [
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large"]},
            {"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}]});
        let linux = json!({"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]});
        let both = json!({"matchExpressions": [
            {"key": "kubernetes.io/os", "operator": "In", "values": ["windows", "linux"]}]});
        let not_in = json!({"matchExpressions": [
            {"key": "kubernetes.io/os", "operator": "NotIn", "values": ["windows"]}]});
        let fields_only =
            json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]});
        assert!(is_windows(&affinity(json!([win]))));
        assert!(is_windows(&affinity(json!([win, win]))));
        assert!(!is_windows(&affinity(json!([win, linux]))));
        assert!(!is_windows(&affinity(json!([both]))));
        assert!(!is_windows(&affinity(json!([not_in]))));
        assert!(!is_windows(&affinity(json!([fields_only]))));
        assert!(!is_windows(&affinity(json!([]))));
    }

    #[test]
    fn names_and_defaults() {
        assert_eq!(service_account_name(&json!({"spec": {}})), "default");
        assert_eq!(
            service_account_name(&json!({"spec": {"serviceAccountName": "app"}})),
            "app"
        );
        assert_eq!(
            pod_name(&json!({"metadata": {"generateName": "web-7d9-"}})),
            "web-7d9-"
        );
        assert_eq!(
            pod_name(&json!({"metadata": {"name": "web", "generateName": "x-"}})),
            "web"
        );
        assert_eq!(pod_name(&json!({})), "");
    }

    #[test]
    fn list_fields() {
        let c = json!({"env": null, "volumeMounts": "bogus"});
        assert!(matches!(ListField::of(&c, "env"), ListField::Absent));
        assert!(matches!(
            ListField::of(&c, "volumeMounts"),
            ListField::Malformed
        ));
        assert!(matches!(ListField::of(&c, "other"), ListField::Absent));
        let pod = json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "valueFrom": {}}]}, {}]}});
        let all: Vec<_> = containers(&pod, ContainerKind::Container).collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].has_env("X"));
        assert!(!all[0].has_env("Y"));
        assert_eq!(all[1].name, "");
        assert_eq!(containers(&pod, ContainerKind::InitContainer).count(), 0);
        let bad = json!({"spec": {"containers": {"name": "a"}, "initContainers": null}});
        assert!(matches!(
            container_list(&bad, ContainerKind::Container),
            ListField::Malformed
        ));
        assert!(matches!(
            container_list(&bad, ContainerKind::InitContainer),
            ListField::Absent
        ));
        assert_eq!(containers(&bad, ContainerKind::Container).count(), 0);
    }
}
