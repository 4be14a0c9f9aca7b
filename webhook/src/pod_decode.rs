//! Decoding `request.object` into only the parts of the pod the mutation reads.
//!
//! A Deployment's pod is mostly what the webhook never looks at (images, probes, resources, managedFields,
//! status, tolerations...). Building all of it as a `serde_json::Value` was three quarters of an admission's
//! CPU. Here the parser walks the request bytes once with a fixed list of the members [`mutate`] reads
//! ([`POD`]); every other member is skipped by the parser without being built (`IgnoredAny`), keys are
//! borrowed from the request bytes, and a volume is only built whole when it is the token volume (its other
//! members are kept as borrowed raw JSON until its name is known, [`RawJson`]). One parser, serde_json: a
//! second, faster one (sonic-rs) was tried and left out, since two parsers of hostile input may disagree on
//! what is valid.
//!
//! What is kept keeps its JSON type: a member that should be an array but is an object stays an object (with
//! only the listed members), so the mutation's checks for malformed pods see what they saw on the whole pod.
//! The patch is still computed against the original JSON's paths (array indexes and append points are
//! unchanged), so nothing the webhook does not read can be lost.
//!
//! [`mutate`]: crate::mutate::mutate

use std::{borrow::Cow, fmt, marker::PhantomData};

use serde::{
    Deserialize, Deserializer,
    de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Map, Number, Value, value::RawValue};

use crate::pod::TOKEN_VOLUME_NAME;

/// Which parts of a JSON value to build.
#[derive(Debug)]
pub enum Keep {
    /// The whole value.
    All,
    /// An object (anything else is malformed): only these members, each kept as its entry says.
    Object(&'static [(&'static str, Keep)]),
    /// Only these members of an object, of each object in an array (at any depth); other JSON types as they
    /// are.
    Members(&'static [(&'static str, Keep)]),
    /// A volume (or each volume of an array): whole when it is named [`TOKEN_VOLUME_NAME`] (the mutation
    /// compares it with its own), otherwise only its `name`.
    Volume,
}

/// A container: its name, its env entries' names, its mounts' names and paths.
const CONTAINER: Keep = Keep::Members(&[
    ("name", Keep::All),
    ("env", Keep::Members(&[("name", Keep::All)])),
    (
        "volumeMounts",
        Keep::Members(&[("name", Keep::All), ("mountPath", Keep::All)]),
    ),
]);

/// What the mutation, the session-name template, the legacy annotations, the container roles and the
/// Windows detection read of a pod.
pub static POD: Keep = Keep::Object(&[
    ("apiVersion", Keep::All),
    ("kind", Keep::All),
    (
        "metadata",
        Keep::Object(&[
            ("name", Keep::All),
            ("generateName", Keep::All),
            ("namespace", Keep::All),
            ("labels", Keep::All),
            ("annotations", Keep::All),
        ]),
    ),
    (
        "spec",
        Keep::Members(&[
            ("serviceAccountName", Keep::All),
            ("containers", CONTAINER),
            ("initContainers", CONTAINER),
            ("volumes", Keep::Volume),
            ("nodeSelector", Keep::All),
            ("os", Keep::All),
            (
                "affinity",
                Keep::Members(&[(
                    "nodeAffinity",
                    Keep::Members(&[("requiredDuringSchedulingIgnoredDuringExecution", Keep::All)]),
                )]),
            ),
        ]),
    ),
]);

impl Keep {
    fn member(&self, key: &str) -> Option<&Keep> {
        match self {
            Self::Object(members) | Self::Members(members) => members
                .iter()
                .find_map(|(name, keep)| (*name == key).then_some(keep)),
            Self::All | Self::Volume => None,
        }
    }
}

/// A member's JSON text, borrowed from the request bytes without being parsed into values: how the parser
/// captures a value it skips (serde_json's `RawValue`).
pub trait RawJson<'de>: Deserialize<'de> {
    /// The captured JSON text.
    fn json(&self) -> &str;
}

impl<'de> RawJson<'de> for &'de RawValue {
    fn json(&self) -> &str {
        self.get()
    }
}

/// Decodes a value keeping what `keep` lists: a `DeserializeSeed` for `request.object`; `R` is how the
/// parser captures raw JSON.
pub struct Pruned<'k, R>(pub &'k Keep, PhantomData<fn() -> R>);

impl<R> Clone for Pruned<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Pruned<'_, R> {}

impl<'k, R> Pruned<'k, R> {
    /// Keeps what `keep` lists.
    pub fn new(keep: &'k Keep) -> Self {
        Self(keep, PhantomData)
    }
}

impl<'de, R: RawJson<'de>> DeserializeSeed<'de> for Pruned<'_, R> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.0 {
            Keep::All => Value::deserialize(deserializer),
            Keep::Object(_) => deserializer.deserialize_map(self),
            Keep::Members(_) | Keep::Volume => deserializer.deserialize_any(self),
        }
    }
}

impl<'de, R: RawJson<'de>> Visitor<'de> for Pruned<'_, R> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Keep::Object(_) => f.write_str("a JSON object"),
            _ => f.write_str("any JSON value"),
        }
    }

    // Scalars become what `serde_json::Value` makes of them.
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if let Keep::Volume = self.0 {
            return volume::<A, R>(map);
        }
        let mut object = Map::new();
        while let Some(Str(key)) = map.next_key()? {
            match self.0.member(&key) {
                Some(keep) => {
                    object.insert(
                        key.into_owned(),
                        map.next_value_seed(Pruned::<R>::new(keep))?,
                    );
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(object))
    }
}

/// A volume object: its members stay raw JSON until its (last, as for any object) `name` is known.
fn volume<'de, A: MapAccess<'de>, R: RawJson<'de>>(mut map: A) -> Result<Value, A::Error> {
    let mut members: Vec<(Str<'de>, R)> = Vec::new();
    while let Some(key) = map.next_key::<Str<'de>>()? {
        members.push((key, map.next_value()?));
    }
    let name = members.iter().rev().find(|(key, _)| key.0 == "name");
    let is_token_volume = match name {
        Some((_, raw)) => {
            serde_json::from_str::<Str<'_>>(raw.json()).is_ok_and(|s| s.0 == TOKEN_VOLUME_NAME)
        }
        None => false,
    };
    let mut object = Map::new();
    for (key, raw) in members {
        if is_token_volume || key.0 == "name" {
            let value = serde_json::from_str(raw.json()).map_err(A::Error::custom)?;
            object.insert(key.0.into_owned(), value);
        }
    }
    Ok(Value::Object(object))
}

/// A JSON string borrowed from the request bytes when it has no escapes (serde's own `Cow<str>` always
/// copies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Str<'de>(pub Cow<'de, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(StrVisitor(std::marker::PhantomData))
    }
}

struct StrVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for StrVisitor<'a> {
    type Value = Str<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'a>, E> {
        Ok(Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Str<'a>, E> {
        Ok(Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Str<'a>, E> {
        Ok(Str(Cow::Owned(v)))
    }
}

impl Str<'_> {
    /// An owned `String`.
    pub fn into_owned(self) -> String {
        self.0.into_owned()
    }
}

/// `request.object` as the mutation reads it: only [`POD`]'s members; `null` is no object. `R` is how the
/// parser captures raw JSON.
pub struct PodObject<R>(pub Value, PhantomData<fn() -> R>);

impl<'de, R: RawJson<'de>> Deserialize<'de> for PodObject<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Pruned::<R>::new(&POD)
            .deserialize(deserializer)
            .map(|pod| PodObject(pod, PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Decodes `pod` as `request.object` would be.
    fn decode(pod: &str) -> Value {
        serde_json::from_str::<PodObject<&RawValue>>(pod).unwrap().0
    }

    #[test]
    fn keeps_only_what_the_mutation_reads() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "generateName": "p-", "namespace": "ns", "uid": "u",
                         "labels": {"a": "1"}, "annotations": {"b": "2"},
                         "managedFields": [{"manager": "m"}], "ownerReferences": [{"kind": "ReplicaSet"}]},
            "spec": {
                "serviceAccountName": "sa", "serviceAccount": "sa", "tolerations": [{"key": "k"}],
                "nodeSelector": {"kubernetes.io/os": "windows"}, "os": {"name": "windows"},
                "affinity": {"podAntiAffinity": {"x": 1}, "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [1],
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
                "containers": [{"name": "app", "image": "i", "ports": [{"containerPort": 80}],
                                "env": [{"name": "A", "value": "v", "valueFrom": {}}],
                                "volumeMounts": [{"name": "v", "mountPath": "/m", "readOnly": true}]}],
                "initContainers": [{"name": "init", "resources": {}}]
            },
            "status": {"phase": "Pending"}
        });
        let expected = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "generateName": "p-", "namespace": "ns",
                         "labels": {"a": "1"}, "annotations": {"b": "2"}},
            "spec": {
                "serviceAccountName": "sa",
                "nodeSelector": {"kubernetes.io/os": "windows"}, "os": {"name": "windows"},
                "affinity": {"nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
                "containers": [{"name": "app", "env": [{"name": "A"}],
                                "volumeMounts": [{"name": "v", "mountPath": "/m"}]}],
                "initContainers": [{"name": "init"}]
            }
        });
        assert_eq!(decode(&pod.to_string()), expected);
    }

    #[test]
    fn the_token_volume_is_kept_whole_and_others_by_name() {
        let pod = r#"{"spec": {"volumes": [
            {"name": "data", "emptyDir": {}},
            {"projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}, "name": "aws-iam-token"},
            {"secret": {"secretName": "s"}},
            {"name": "aws-iam-token", "name": "other", "secret": {}},
            {"name": "aws\u002diam-token", "hostPath": {"path": "/x"}}
        ]}}"#;
        assert_eq!(
            decode(pod)["spec"]["volumes"],
            json!([
                {"name": "data"},
                {"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
                {},
                {"name": "other"},
                {"name": "aws-iam-token", "hostPath": {"path": "/x"}}
            ])
        );
    }

    #[test]
    fn kept_members_keep_their_json_type() {
        // What the mutation calls malformed must still look malformed to it.
        let pod = r#"{"metadata": {}, "spec": {"containers": {"name": "a", "image": "i"},
            "initContainers": [{"name": "b", "env": "x", "volumeMounts": {"name": "m", "other": 1}}, 7, [{"name": "c", "x": 1}]],
            "volumes": "v"}}"#;
        assert_eq!(
            decode(pod)["spec"],
            json!({"containers": {"name": "a"},
                   "initContainers": [{"name": "b", "env": "x", "volumeMounts": {"name": "m"}}, 7, [{"name": "c"}]],
                   "volumes": "v"})
        );
        // Numbers and escapes come out as serde_json makes them.
        let pod = r#"{"spec": {"containers": [{"name": "a\"\u00e9", "env": [{"name": 1.5}, {"name": -2}, {"name": 18446744073709551615}, {"name": null}, {"name": true}]}]}}"#;
        let whole: Value = serde_json::from_str(pod).unwrap();
        assert_eq!(decode(pod), whole);
    }

    #[test]
    fn the_pod_and_its_metadata_must_be_objects() {
        for pod in [
            r#""a pod""#,
            "[]",
            r#"{"metadata": []}"#,
            r#"{"metadata": null}"#,
        ] {
            assert!(
                serde_json::from_str::<PodObject<&RawValue>>(pod).is_err(),
                "{pod}"
            );
        }
    }
}
