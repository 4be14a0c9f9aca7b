//! Decoding `request.object` into a [`Pod`]: one pass over the request bytes, building only the members the
//! mutation reads and skipping every other one without building or allocating anything.
//!
//! A Deployment's pod is mostly what the webhook never looks at (images, probes, resources, managedFields,
//! status, tolerations...). Building all of it as a `serde_json::Value` was three quarters of an admission's
//! CPU; building a pruned `Value` still cost twice the target of issue #16. Here the members are walked with
//! [`Reader`] and kept as the typed, borrowed [`Pod`]; the one volume the mutation compares whole, the token
//! volume, becomes a `serde_json::Value` when (rarely) it is there.
//!
//! The rules of what a member of an unexpected type reads as are in [`pod`](crate::pod)'s documentation.

use std::borrow::Cow;

use serde_json::Value;

use crate::{
    json_reader::{JsonError, Kind, Reader, Result},
    pod::{
        Container, Entries, EnvVar, ListField, Metadata, Pod, Spec, TOKEN_VOLUME_NAME, Volume,
        VolumeMount,
    },
};

/// Decodes a pod (`request.object`, or a pod's own JSON): it must be an object, and so must its `metadata`
/// when present and not `null`. A member given twice counts once, the last one, whole: each is decoded into a
/// fresh value that replaces the earlier one.
pub fn pod<'a>(r: &mut Reader<'a>) -> Result<Pod<'a>> {
    if r.kind()? != Kind::Object {
        return r.error("the pod is not an object");
    }
    let mut pod = Pod::default();
    r.object(|r, member| {
        match member.as_ref() {
            "metadata" => pod.metadata = metadata(r)?,
            "spec" => pod.spec = spec(r)?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    Ok(pod)
}

/// Decodes a pod's whole JSON text.
pub fn pod_json(json: &[u8]) -> Result<Pod<'_>> {
    let mut r = Reader::new(json);
    let pod = pod(&mut r)?;
    r.end()?;
    Ok(pod)
}

fn metadata<'a>(r: &mut Reader<'a>) -> Result<Metadata<'a>> {
    let mut metadata = Metadata::default();
    match r.kind()? {
        Kind::Null => r.skip()?,
        Kind::Object => r.object(|r, member| {
            match member.as_ref() {
                "name" => metadata.name = r.string_or_skip()?,
                "generateName" => metadata.generate_name = r.string_or_skip()?,
                "namespace" => metadata.namespace = r.string_or_skip()?,
                "labels" => metadata.labels = entries(r)?,
                "annotations" => metadata.annotations = entries(r)?,
                _ => r.skip()?,
            }
            Ok(())
        })?,
        _ => return r.error("the pod's metadata is not an object"),
    }
    Ok(metadata)
}

fn spec<'a>(r: &mut Reader<'a>) -> Result<Spec<'a>> {
    let mut spec = Spec::default();
    object_or_skip(r, |r, member| {
        match member.as_ref() {
            "serviceAccountName" => spec.service_account_name = r.string_or_skip()?,
            "containers" => spec.containers = list(r, container)?,
            "initContainers" => spec.init_containers = list(r, container)?,
            "volumes" => spec.volumes = list(r, volume)?,
            "nodeSelector" => spec.node_selector = entries(r)?,
            "os" => spec.os_name = last_member(r, "name", Reader::string_or_skip)?.flatten(),
            "affinity" => {
                spec.required_node_affinity = last_member(r, "nodeAffinity", |r| {
                    last_member(r, "requiredDuringSchedulingIgnoredDuringExecution", |r| {
                        r.skip_raw()
                    })
                })?
                .flatten();
            }
            _ => r.skip()?,
        }
        Ok(())
    })?;
    Ok(spec)
}

/// The members of an object; any other value is skipped, as if absent.
fn object_or_skip<'a>(
    r: &mut Reader<'a>,
    member: impl FnMut(&mut Reader<'a>, Cow<'a, str>) -> Result<()>,
) -> Result<()> {
    if r.kind()? != Kind::Object {
        return r.skip();
    }
    r.object(member)
}

/// The last member `name` of an object, read by `read`; `None` when absent or when the value is not an
/// object.
fn last_member<'a, T>(
    r: &mut Reader<'a>,
    name: &str,
    mut read: impl FnMut(&mut Reader<'a>) -> Result<T>,
) -> Result<Option<T>> {
    let mut value = None;
    object_or_skip(r, |r, member| {
        if member == name {
            value = Some(read(r)?);
        } else {
            r.skip()?;
        }
        Ok(())
    })?;
    Ok(value)
}

/// A string map's members; a value that is not an object reads as an empty map.
fn entries<'a>(r: &mut Reader<'a>) -> Result<Entries<'a>> {
    let mut entries = Vec::new();
    object_or_skip(r, |r, name| {
        entries.push((name, r.string_or_skip()?));
        Ok(())
    })?;
    Ok(entries)
}

/// An array member: `null` is absent, another type malformed. Each item is read by `item`, which reads an
/// item that is not an object as its type's default (it keeps its index).
fn list<'a, T>(
    r: &mut Reader<'a>,
    item: impl Fn(&mut Reader<'a>) -> Result<T>,
) -> Result<ListField<T>> {
    match r.kind()? {
        Kind::Null => r.skip().map(|()| ListField::Absent),
        Kind::Array => {
            let mut items = Vec::new();
            r.array(|r, _| {
                items.push(item(r)?);
                Ok(())
            })?;
            Ok(ListField::Present(items))
        }
        _ => r.skip().map(|()| ListField::Malformed),
    }
}

fn container<'a>(r: &mut Reader<'a>) -> Result<Container<'a>> {
    let mut container = Container::default();
    object_or_skip(r, |r, member| {
        match member.as_ref() {
            "name" => container.name = r.string_or_skip()?.unwrap_or_default(),
            "env" => container.env = list(r, env_var)?,
            "volumeMounts" => container.volume_mounts = list(r, volume_mount)?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    Ok(container)
}

fn env_var<'a>(r: &mut Reader<'a>) -> Result<EnvVar<'a>> {
    Ok(EnvVar {
        name: last_member(r, "name", Reader::string_or_skip)?.flatten(),
    })
}

fn volume_mount<'a>(r: &mut Reader<'a>) -> Result<VolumeMount<'a>> {
    let mut mount = VolumeMount::default();
    object_or_skip(r, |r, member| {
        match member.as_ref() {
            "name" => mount.name = r.string_or_skip()?,
            "mountPath" => mount.mount_path = r.string_or_skip()?,
            _ => r.skip()?,
        }
        Ok(())
    })?;
    Ok(mount)
}

/// A volume: its name, and when that is [`TOKEN_VOLUME_NAME`] the whole volume as a `Value` (its name is
/// only known at its end, so its bytes are parsed again then).
fn volume<'a>(r: &mut Reader<'a>) -> Result<Volume<'a>> {
    let start = r.offset();
    let name = last_member(r, "name", Reader::string_or_skip)?.flatten();
    let token_volume = match name.as_deref() {
        Some(TOKEN_VOLUME_NAME) => {
            let whole =
                serde_json::from_slice::<Value>(r.since(start)).map_err(|err| JsonError {
                    what: format!("volume {TOKEN_VOLUME_NAME:?}: {err}").into(),
                    at: start,
                })?;
            Some(whole)
        }
        _ => None,
    };
    Ok(Volume { name, token_volume })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(json: &str) -> Pod<'_> {
        pod_json(json.as_bytes()).unwrap()
    }

    fn text(s: &str) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(s))
    }

    #[test]
    fn keeps_only_what_the_mutation_reads() {
        let json = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "generateName": "p-", "namespace": "ns", "uid": "u",
                         "labels": {"a": "1", "n": 2}, "annotations": {"b": "2"},
                         "managedFields": [{"manager": "m"}], "ownerReferences": [{"kind": "ReplicaSet"}]},
            "spec": {
                "serviceAccountName": "sa", "serviceAccount": "sa", "tolerations": [{"key": "k"}],
                "nodeSelector": {"kubernetes.io/os": "windows"}, "os": {"name": "windows", "x": 1},
                "affinity": {"podAntiAffinity": {"x": 1}, "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [1],
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
                "containers": [{"name": "app", "image": "i", "ports": [{"containerPort": 80}],
                                "env": [{"name": "A", "value": "v", "valueFrom": {}}],
                                "volumeMounts": [{"name": "v", "mountPath": "/m", "readOnly": true}]}],
                "initContainers": [{"name": "init", "resources": {}}]
            },
            "status": {"phase": "Pending"}
        })
        .to_string();
        let pod = decode(&json);
        let metadata = Metadata {
            name: text("p"),
            generate_name: text("p-"),
            namespace: text("ns"),
            labels: vec![("a".into(), text("1")), ("n".into(), None)],
            annotations: vec![("b".into(), text("2"))],
        };
        let spec = Spec {
            service_account_name: text("sa"),
            containers: ListField::Present(vec![Container {
                name: "app".into(),
                env: ListField::Present(vec![EnvVar { name: text("A") }]),
                volume_mounts: ListField::Present(vec![VolumeMount {
                    name: text("v"),
                    mount_path: text("/m"),
                }]),
            }]),
            init_containers: ListField::Present(vec![Container {
                name: "init".into(),
                ..Container::default()
            }]),
            volumes: ListField::Absent,
            node_selector: vec![("kubernetes.io/os".into(), text("windows"))],
            os_name: text("windows"),
            required_node_affinity: Some(br#"{"nodeSelectorTerms":[]}"#),
        };
        assert_eq!(pod, Pod { metadata, spec });
        // Nothing of the kept strings was copied.
        assert!(matches!(pod.metadata.name, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn the_token_volume_is_kept_whole_and_others_by_name() {
        let pod = decode(
            r#"{"spec": {"volumes": [
            {"name": "data", "emptyDir": {}},
            {"projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}, "name": "aws-iam-token"},
            {"secret": {"secretName": "s"}},
            {"name": "aws-iam-token", "name": "other", "secret": {}},
            {"name": "aws\u002diam-token", "hostPath": {"path": "/x"}},
            7
        ]}}"#,
        );
        let volumes = pod.spec.volumes.items();
        let names: Vec<_> = volumes.iter().map(|v| v.name.as_deref()).collect();
        assert_eq!(
            names,
            [
                Some("data"),
                Some("aws-iam-token"),
                None,
                Some("other"),
                Some("aws-iam-token"),
                None
            ]
        );
        let wholes: Vec<_> = volumes.iter().map(|v| v.token_volume.clone()).collect();
        assert_eq!(
            wholes,
            [
                None,
                Some(
                    json!({"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}})
                ),
                None,
                None,
                Some(json!({"name": "aws-iam-token", "hostPath": {"path": "/x"}})),
                None
            ]
        );
    }

    #[test]
    fn lists_keep_their_state_and_items_their_index() {
        let pod = decode(
            r#"{"metadata": null, "spec": {"containers": {"name": "a", "image": "i"},
            "initContainers": [{"name": "b", "env": "x", "volumeMounts": null}, 7, [{"name": "c"}], {"name": 5}],
            "volumes": "v"}}"#,
        );
        assert_eq!(pod.spec.containers, ListField::Malformed);
        assert_eq!(pod.spec.volumes, ListField::Malformed);
        let init = pod.spec.init_containers.items();
        assert_eq!(init.len(), 4);
        assert_eq!(init[0].name, "b");
        assert_eq!(init[0].env, ListField::Malformed);
        assert_eq!(init[0].volume_mounts, ListField::Absent);
        assert_eq!(init[1], Container::default());
        assert_eq!(init[2], Container::default());
        assert_eq!(init[3].name, "");
    }

    /// `json` with white space of every kind around each `{`, `[`, `:`, `,`, `]` and `}` outside strings.
    fn spaced(json: &str) -> String {
        let (mut out, mut in_string, mut escaped) = (String::new(), false, false);
        for c in json.chars() {
            let structural = !in_string && "{[:,]}".contains(c);
            if structural {
                out.push_str(" \t");
            }
            out.push(c);
            if structural {
                out.push_str("\r\n ");
            }
            (in_string, escaped) = match (in_string, escaped, c) {
                (true, false, '\\') => (true, true),
                (true, false, '"') | (false, _, '"') => (!in_string, false),
                _ => (in_string, false),
            };
        }
        out
    }

    #[test]
    fn white_space_anywhere_reads_as_compact_json() {
        // The benchmark's Deployment pod: the reader looks for white space only where the expected byte is not
        // found, so every place it may be is exercised here, in what is read and in what is skipped.
        let review: Value =
            serde_json::from_slice(include_bytes!("../benches/fixtures/review-6kb.json")).unwrap();
        let compact = review["request"]["object"].to_string();
        let expected = decode(&compact);
        assert!(matches!(expected.spec.containers.items(), [_, ..]));
        for json in [
            serde_json::to_string_pretty(&review["request"]["object"]).unwrap(),
            spaced(&compact),
            format!("\n\t {} \r\n", spaced(&compact)),
        ] {
            assert_eq!(decode(&json), expected, "{json}");
        }
        assert_eq!(
            spaced(r#"{"a:b":["\"{"]}"#),
            " \t{\r\n \"a:b\" \t:\r\n  \t[\r\n \"\\\"{\" \t]\r\n  \t}\r\n "
        );
    }

    #[test]
    fn the_last_of_a_repeated_member_wins() {
        let pod = decode(
            r#"{"metadata": {"name": "a", "labels": {"x": "1"}}, "metadata": {"generateName": "g-"},
            "spec": {"serviceAccountName": "one", "serviceAccountName": 2, "os": {"name": "windows"}, "os": {}}}"#,
        );
        assert_eq!(pod.metadata.name, None);
        assert_eq!(pod.metadata.generate_name, text("g-"));
        assert!(pod.metadata.labels.is_empty());
        assert_eq!(pod.spec.service_account_name, None);
        assert_eq!(pod.spec.os_name, None);
        let pod = decode(r#"{"metadata": {"labels": {"x": "1", "x": false}}}"#);
        assert_eq!(crate::pod::label(&pod, "x"), None);
    }

    #[test]
    fn escaped_strings_decode_as_serde_json_decodes_them() {
        let json = r#"{"spec": {"containers": [{"name": "a\"\u00e9\ud83d\ude00", "env": [{"name": "\\n"}]}]}}"#;
        let pod = decode(json);
        let whole: Value = serde_json::from_str(json).unwrap();
        let container = &pod.spec.containers.items()[0];
        assert_eq!(
            Some(container.name.as_ref()),
            whole["spec"]["containers"][0]["name"].as_str()
        );
        assert_eq!(
            container.env.items()[0].name.as_deref(),
            whole["spec"]["containers"][0]["env"][0]["name"].as_str()
        );
    }

    #[test]
    fn the_pod_and_its_metadata_must_be_objects() {
        for json in [
            r#""a pod""#,
            "[]",
            "null",
            r#"{"metadata": []}"#,
            r#"{"metadata": "m"}"#,
            r#"{"spec": {"volumes": [{"name": "aws-iam-token", "x": 1e400}]}}"#,
            r#"{"spec": {} "#,
        ] {
            assert!(pod_json(json.as_bytes()).is_err(), "{json}");
        }
        // `null` metadata is no metadata, and a spec of another type is no spec.
        assert_eq!(decode(r#"{"metadata": null, "spec": []}"#), Pod::default());
    }
}
