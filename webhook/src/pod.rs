//! The pod as the mutation reads it: a typed view borrowing from the request bytes.
//!
//! Only the members the mutation, the session-name template, the legacy annotations, the container roles
//! and the Windows detection read are kept (decoded by [`pod_decode`](crate::pod_decode)); strings borrow
//! from the request unless they had escapes. The patch is computed against the original JSON's paths (array
//! indexes and append points are those of the request), so nothing the webhook does not read can be lost.
//!
//! What keeps its shape: a list the mutation reports as malformed when it is not an array (`containers`,
//! `initContainers`, `volumes`, a container's `env` and `volumeMounts`) is a [`ListField`]; any other member
//! of an unexpected JSON type reads as absent, and so does an item that is not an object (its index still
//! counts). Where a member occurs twice the last one wins, as in serde_json and Go.

use std::borrow::Cow;

use serde_json::Value;

use crate::views::is_prefixed_key;

pub use irsa_core::names::TOKEN_VOLUME_NAME;

/// A string of the pod: borrowed from the request bytes, owned when it had escapes.
pub type Text<'a> = Cow<'a, str>;

/// The members of a pod the webhook reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pod<'a> {
    /// `metadata`.
    pub metadata: Metadata<'a>,
    /// `spec`.
    pub spec: Spec<'a>,
}

/// The members of a pod's `metadata` the webhook reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata<'a> {
    /// `name`.
    pub name: Option<Text<'a>>,
    /// `generateName`.
    pub generate_name: Option<Text<'a>>,
    /// `namespace`.
    pub namespace: Option<Text<'a>>,
    /// `labels`, in order; `None` for a value that is not a string.
    pub labels: Entries<'a>,
    /// `annotations`, in order; `None` for a value that is not a string.
    pub annotations: Entries<'a>,
}

/// The members of a pod's `spec` the webhook reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec<'a> {
    /// `serviceAccountName`.
    pub service_account_name: Option<Text<'a>>,
    /// `containers`.
    pub containers: ListField<Container<'a>>,
    /// `initContainers`.
    pub init_containers: ListField<Container<'a>>,
    /// `volumes`.
    pub volumes: ListField<Volume<'a>>,
    /// `nodeSelector`, in order; `None` for a value that is not a string.
    pub node_selector: Entries<'a>,
    /// `os.name`.
    pub os_name: Option<Text<'a>>,
    /// `affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`, as the request's JSON (rare:
    /// read only by [`is_windows`]).
    pub required_node_affinity: Option<&'a [u8]>,
}

/// The members of a string map (labels, annotations, a node selector), in order; `None` for a value that is
/// not a string (which still hides an earlier member of the same name).
pub type Entries<'a> = Vec<(Text<'a>, Option<Text<'a>>)>;

/// A container of `spec.containers` or `spec.initContainers`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Container<'a> {
    /// `name` ("" when missing, which the apiserver will refuse anyway).
    pub name: Text<'a>,
    /// `env`.
    pub env: ListField<EnvVar<'a>>,
    /// `volumeMounts`.
    pub volume_mounts: ListField<VolumeMount<'a>>,
}

/// An entry of a container's `env`: its name only (`value` and `valueFrom` are never read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvVar<'a> {
    /// `name`.
    pub name: Option<Text<'a>>,
}

/// An entry of a container's `volumeMounts`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeMount<'a> {
    /// `name`.
    pub name: Option<Text<'a>>,
    /// `mountPath`.
    pub mount_path: Option<Text<'a>>,
}

/// A volume of `spec.volumes`: its name, and the whole volume when it is named [`TOKEN_VOLUME_NAME`] (the
/// mutation compares that one with its own).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Volume<'a> {
    /// `name`.
    pub name: Option<Text<'a>>,
    /// The whole volume, when it is the token volume.
    pub token_volume: Option<Value>,
}

/// The state of an optional array member such as `env`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ListField<T> {
    /// Absent or `null`: the patch adds the whole array.
    #[default]
    Absent,
    /// An array: the patch appends with `/-`.
    Present(Vec<T>),
    /// Some other JSON type: the object is malformed and is left alone.
    Malformed,
}

impl<T> ListField<T> {
    /// The items, none when absent or malformed.
    pub fn items(&self) -> &[T] {
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

/// A container with where it is: the JSON Pointer of its list and index.
#[derive(Debug, Clone, Copy)]
pub struct ContainerRef<'p, 'a> {
    /// Which list it is in.
    pub kind: ContainerKind,
    /// Its index in that list (the JSON Pointer segment).
    pub index: usize,
    /// The container.
    pub container: &'p Container<'a>,
}

impl<'p, 'a> ContainerRef<'p, 'a> {
    /// The container's name (empty when missing).
    pub fn name(&self) -> &'p str {
        &self.container.name
    }

    /// The container's `env`.
    pub fn env(&self) -> &'p ListField<EnvVar<'a>> {
        &self.container.env
    }

    /// The container's `volumeMounts`.
    pub fn volume_mounts(&self) -> &'p ListField<VolumeMount<'a>> {
        &self.container.volume_mounts
    }

    /// Whether `env` has an entry with this name, whatever its `value` or `valueFrom`.
    pub fn has_env(&self, name: &str) -> bool {
        self.env()
            .items()
            .iter()
            .any(|entry| entry.name.as_deref() == Some(name))
    }
}

/// The value of the last member whose name `matches` (the last wins, as in serde_json and Go), when a string.
fn last<'p>(entries: &'p Entries<'_>, matches: impl Fn(&str) -> bool) -> Option<&'p str> {
    entries.iter().rev().find(|(k, _)| matches(k))?.1.as_deref()
}

/// `metadata.labels[key]`.
pub fn label<'p>(pod: &'p Pod<'_>, key: &str) -> Option<&'p str> {
    last(&pod.metadata.labels, |k| k == key)
}

/// `metadata.annotations[key]`.
pub fn annotation<'p>(pod: &'p Pod<'_>, key: &str) -> Option<&'p str> {
    last(&pod.metadata.annotations, |k| k == key)
}

/// `metadata.labels["<prefix>/<suffix>"]`, without building the key (this runs on every admission).
pub fn prefixed_label<'p>(pod: &'p Pod<'_>, prefix: &str, suffix: &str) -> Option<&'p str> {
    last(&pod.metadata.labels, |k| is_prefixed_key(k, prefix, suffix))
}

/// `metadata.annotations["<prefix>/<suffix>"]`, without building the key (this runs on every admission).
pub fn prefixed_annotation<'p>(pod: &'p Pod<'_>, prefix: &str, suffix: &str) -> Option<&'p str> {
    last(&pod.metadata.annotations, |k| {
        is_prefixed_key(k, prefix, suffix)
    })
}

/// `spec.serviceAccountName`, or `default` as the ServiceAccount admission plugin would set it.
pub fn service_account_name<'p>(pod: &'p Pod<'_>) -> &'p str {
    non_empty(&pod.spec.service_account_name).unwrap_or("default")
}

/// A string member when present and not empty (`metadata.name`, `generateName`, `namespace`).
pub fn non_empty<'p>(member: &'p Option<Text<'_>>) -> Option<&'p str> {
    member.as_deref().filter(|s| !s.is_empty())
}

/// `metadata.name`, else `metadata.generateName` (pods of a ReplicaSet have no name at admission), else "".
pub fn pod_name<'p>(pod: &'p Pod<'_>) -> &'p str {
    non_empty(&pod.metadata.name)
        .or_else(|| non_empty(&pod.metadata.generate_name))
        .unwrap_or("")
}

/// `spec.containers` or `spec.initContainers`.
pub fn container_list<'p, 'a>(
    pod: &'p Pod<'a>,
    kind: ContainerKind,
) -> &'p ListField<Container<'a>> {
    match kind {
        ContainerKind::Container => &pod.spec.containers,
        ContainerKind::InitContainer => &pod.spec.init_containers,
    }
}

/// The containers of one list, in order (none when the list is absent or malformed).
pub fn containers<'p, 'a>(
    pod: &'p Pod<'a>,
    kind: ContainerKind,
) -> impl Iterator<Item = ContainerRef<'p, 'a>> {
    container_list(pod, kind)
        .items()
        .iter()
        .enumerate()
        .map(move |(index, container)| ContainerRef {
            kind,
            index,
            container,
        })
}

/// Whether the pod will run on Windows nodes, by any of the three ways a pod can say so.
pub fn is_windows(pod: &Pod<'_>) -> bool {
    let spec = &pod.spec;
    OS_LABELS
        .iter()
        .any(|label| last(&spec.node_selector, |k| k == *label) == Some("windows"))
        || spec.os_name.as_deref() == Some("windows")
        || spec
            .required_node_affinity
            .and_then(|json| serde_json::from_slice::<Value>(json).ok())
            .is_some_and(|required| required_affinity_is_windows(&required))
}

const OS_LABELS: [&str; 2] = ["kubernetes.io/os", "beta.kubernetes.io/os"];

/// Node selector terms are ORed: the pod is Windows-only when every term requires the OS label to be
/// `windows` (one of the term's ANDed expressions is `os In [windows]`, with no other value).
fn required_affinity_is_windows(required: &Value) -> bool {
    let terms = required.get("nodeSelectorTerms").and_then(Value::as_array);
    let Some(terms) = terms else { return false };
    !terms.is_empty() && terms.iter().all(term_requires_windows)
}

fn str_field<'v>(value: &'v Value, field: &str) -> Option<&'v str> {
    value.get(field)?.as_str()
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

/// A test's pod from its JSON (the text is leaked, which a test can afford).
#[cfg(test)]
pub(crate) fn from_value(value: &Value) -> Pod<'static> {
    let json: &'static str = value.to_string().leak();
    crate::pod_decode::pod_json(json.as_bytes()).expect("a pod")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: Value) -> Pod<'static> {
        from_value(&value)
    }

    #[test]
    fn windows_by_each_way() {
        assert!(!is_windows(&pod(json!({}))));
        assert!(!is_windows(&pod(json!({"spec": {}}))));
        assert!(is_windows(&pod(
            json!({"spec": {"nodeSelector": {"kubernetes.io/os": "windows"}}})
        )));
        assert!(is_windows(&pod(
            json!({"spec": {"nodeSelector": {"beta.kubernetes.io/os": "windows"}}})
        )));
        assert!(!is_windows(&pod(
            json!({"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}})
        )));
        assert!(is_windows(&pod(
            json!({"spec": {"os": {"name": "windows"}}})
        )));
        assert!(!is_windows(&pod(
            json!({"spec": {"os": {"name": "linux"}}})
        )));
    }

    fn affinity(terms: Value) -> Pod<'static> {
        pod(json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}}))
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
        assert_eq!(service_account_name(&pod(json!({"spec": {}}))), "default");
        assert_eq!(
            service_account_name(&pod(json!({"spec": {"serviceAccountName": ""}}))),
            "default"
        );
        assert_eq!(
            service_account_name(&pod(json!({"spec": {"serviceAccountName": "app"}}))),
            "app"
        );
        assert_eq!(
            pod_name(&pod(json!({"metadata": {"generateName": "web-7d9-"}}))),
            "web-7d9-"
        );
        assert_eq!(
            pod_name(&pod(
                json!({"metadata": {"name": "web", "generateName": "x-"}})
            )),
            "web"
        );
        assert_eq!(pod_name(&pod(json!({}))), "");
    }

    #[test]
    fn labels_and_annotations() {
        let p = pod(json!({"metadata": {
            "labels": {"eks.amazonaws.com/skip-pod-identity-webhook": "", "n": 1},
            "annotations": {"iam.amazonaws.com/role": "r", "eks.amazonaws.com/role-arn": "a"}}}));
        assert_eq!(
            prefixed_label(&p, "eks.amazonaws.com", "skip-pod-identity-webhook"),
            Some("")
        );
        assert_eq!(
            prefixed_label(&p, "eks.amazonaws.co", "skip-pod-identity-webhook"),
            None
        );
        assert_eq!(label(&p, "n"), None);
        assert_eq!(annotation(&p, "iam.amazonaws.com/role"), Some("r"));
        assert_eq!(
            prefixed_annotation(&p, "eks.amazonaws.com", "role-arn"),
            Some("a")
        );
        assert_eq!(prefixed_annotation(&p, "eks.amazonaws.com", "role"), None);
    }

    #[test]
    fn list_fields() {
        let p = pod(json!({"spec": {"containers": [
            {"name": "a", "env": [{"name": "X", "valueFrom": {}}], "volumeMounts": "bogus"}, {}]}}));
        let all: Vec<_> = containers(&p, ContainerKind::Container).collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].has_env("X"));
        assert!(!all[0].has_env("Y"));
        assert_eq!(*all[0].volume_mounts(), ListField::Malformed);
        assert_eq!(*all[1].env(), ListField::Absent);
        assert_eq!(all[1].name(), "");
        assert_eq!(all[1].index, 1);
        assert_eq!(containers(&p, ContainerKind::InitContainer).count(), 0);
        let bad = pod(json!({"spec": {"containers": {"name": "a"}, "initContainers": null}}));
        assert_eq!(
            *container_list(&bad, ContainerKind::Container),
            ListField::Malformed
        );
        assert_eq!(
            *container_list(&bad, ContainerKind::InitContainer),
            ListField::Absent
        );
        assert_eq!(containers(&bad, ContainerKind::Container).count(), 0);
    }
}
