//! Whether two webhooks' answers to one review give the pod the same credentials: for each container,
//! `AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE`, and the projected token that file resolves to (the mount's
//! path and read-only flag, the token's audience and path). Everything else (the token's lifetime, which the
//! reference jitters; the order of env entries; the volume's name) may differ and is only listed.
//! Pure: JSON in, findings out.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};

const ROLE_ARN: &str = "AWS_ROLE_ARN";
const TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";

/// The review's pod after the JSON patch of `answer`, an AdmissionReview response body.
pub fn patched_pod(review: &Value, answer: &Value) -> anyhow::Result<Value> {
    let response = &answer["response"];
    if response["allowed"] != Value::Bool(true) {
        bail!("the admission was not allowed: {response}");
    }
    if response["patchType"] != "JSONPatch" {
        bail!("no JSONPatch in the answer: {response}");
    }
    let encoded = response["patch"]
        .as_str()
        .with_context(|| format!("no patch in the answer: {response}"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .context("the patch is not base64")?;
    let patch: json_patch::Patch =
        serde_json::from_slice(&bytes).context("the patch is not a JSON patch")?;
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).context("the patch does not apply to the review's pod")?;
    Ok(pod)
}

/// What gives each container its credentials, keyed by container name (init containers as `init:NAME`).
pub fn credentials(pod: &Value) -> BTreeMap<String, Value> {
    let spec = &pod["spec"];
    let mut views = BTreeMap::new();
    for (prefix, list) in [("", "containers"), ("init:", "initContainers")] {
        for container in spec[list].as_array().into_iter().flatten() {
            let name = container["name"].as_str().unwrap_or("?");
            views.insert(format!("{prefix}{name}"), container_view(spec, container));
        }
    }
    views
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

fn container_view(spec: &Value, container: &Value) -> Value {
    let file = env_value(container, TOKEN_FILE);
    // The mount whose directory holds the token file: the longest mount path that is a prefix of it.
    let mount = file.and_then(|file| {
        container["volumeMounts"]
            .as_array()?
            .iter()
            .filter_map(|m| Some((m, m["mountPath"].as_str()?.trim_end_matches('/'))))
            .filter(|(_, dir)| file.strip_prefix(dir).is_some_and(|r| r.starts_with('/')))
            .max_by_key(|(_, dir)| dir.len())
    });
    let token = mount.and_then(|(m, dir)| {
        let relative = file?.strip_prefix(dir)?.trim_start_matches('/');
        spec["volumes"]
            .as_array()?
            .iter()
            .find(|v| v["name"] == m["name"])?["projected"]["sources"]
            .as_array()?
            .iter()
            .map(|s| &s["serviceAccountToken"])
            .find(|t| t["path"] == relative)
    });
    json!({
        ROLE_ARN: env_value(container, ROLE_ARN),
        TOKEN_FILE: file,
        "mount": mount.map(|(m, dir)| json!({
            "mountPath": dir,
            "readOnly": m["readOnly"].as_bool().unwrap_or(false),
        })),
        "token": token.map(|t| json!({"audience": t["audience"], "path": t["path"]})),
    })
}

/// Where the credentials of two patched pods disagree, or are missing from either: one line per field,
/// naming both sides by `labels`. Empty when they agree.
pub fn disagreements(labels: [&str; 2], pods: [&Value; 2]) -> Vec<String> {
    let [a, b] = pods.map(credentials);
    let mut found = Vec::new();
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for name in names {
        let (left, right) = (
            a.get(name).unwrap_or(&Value::Null),
            b.get(name).unwrap_or(&Value::Null),
        );
        for (label, view) in labels.iter().zip([left, right]) {
            if view[ROLE_ARN].is_null() || view["token"].is_null() {
                found.push(format!(
                    "container {name}: no web-identity credentials from {label}: {view}"
                ));
            }
        }
        for field in [ROLE_ARN, TOKEN_FILE, "mount", "token"] {
            if left[field] != right[field] {
                found.push(format!(
                    "container {name}: {field}: {} {}, {} {}",
                    labels[0], left[field], labels[1], right[field]
                ));
            }
        }
    }
    found
}

/// Every JSON pointer where `a` and `b` differ, with both values: what the two patches did differently,
/// for the record.
pub fn differences(a: &Value, b: &Value) -> Vec<String> {
    let mut found = Vec::new();
    diff_at(String::new(), a, b, &mut found);
    found
}

fn diff_at(at: String, a: &Value, b: &Value, found: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let (l, r) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                let escaped = key.replace('~', "~0").replace('/', "~1");
                diff_at(format!("{at}/{escaped}"), l, r, found);
            }
        }
        (Value::Array(x), Value::Array(y)) if by_name(x).is_some() && by_name(y).is_some() => {
            // Lists of named entries (containers, env, volumes, mounts): one webhook appends where the other
            // prepends, so pair entries by name, shown as `[name=...]` in the path.
            let (x, y) = (
                by_name(x).unwrap_or_default(),
                by_name(y).unwrap_or_default(),
            );
            let names: std::collections::BTreeSet<&str> =
                x.keys().chain(y.keys()).copied().collect();
            for name in names {
                let (l, r) = (
                    x.get(name).copied().unwrap_or(&Value::Null),
                    y.get(name).copied().unwrap_or(&Value::Null),
                );
                diff_at(format!("{at}/[name={name}]"), l, r, found);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let (l, r) = (
                    x.get(i).unwrap_or(&Value::Null),
                    y.get(i).unwrap_or(&Value::Null),
                );
                diff_at(format!("{at}/{i}"), l, r, found);
            }
        }
        _ if a != b => found.push(format!("{at}: {a} / {b}")),
        _ => {}
    }
}

/// The entries of a list by their `name`, if every entry has a distinct one.
fn by_name(list: &[Value]) -> Option<BTreeMap<&str, &Value>> {
    let named: BTreeMap<&str, &Value> = list
        .iter()
        .map(|v| Some((v["name"].as_str()?, v)))
        .collect::<Option<_>>()?;
    (named.len() == list.len()).then_some(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:iam::111122223333:role/orders-api";
    const FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

    fn review() -> Value {
        json!({"request": {"object": {"spec": {
            "containers": [{"name": "app", "env": [{"name": "A", "value": "1"}]}],
            "initContainers": [{"name": "init"}],
            "volumes": [{"name": "kube-api-access"}],
        }}}})
    }

    /// What both webhooks answer for `review()`, with the given role ARN, audience and lifetime.
    fn patch(arn: &str, audience: &str, seconds: u64) -> Vec<Value> {
        let env = |c: &str| {
            json!([
                {"op": "add", "path": format!("/spec/{c}/0/env/-"), "value": {"name": ROLE_ARN, "value": arn}},
                {"op": "add", "path": format!("/spec/{c}/0/env/-"), "value": {"name": TOKEN_FILE, "value": FILE}},
            ])
        };
        let mut ops: Vec<Value> = vec![
            json!({"op": "add", "path": "/spec/initContainers/0/env", "value": []}),
            json!({"op": "add", "path": "/spec/initContainers/0/volumeMounts", "value": []}),
            json!({"op": "add", "path": "/spec/containers/0/volumeMounts", "value": []}),
        ];
        for c in ["containers", "initContainers"] {
            ops.extend(env(c).as_array().unwrap().iter().cloned());
            ops.push(json!({"op": "add", "path": format!("/spec/{c}/0/volumeMounts/-"), "value": {
                "name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount",
                "readOnly": true}}));
        }
        ops.push(
            json!({"op": "add", "path": "/spec/volumes/-", "value": {"name": "aws-iam-token",
            "projected": {"sources": [{"serviceAccountToken": {
                "audience": audience, "expirationSeconds": seconds, "path": "token"}}]}}}),
        );
        ops
    }

    fn answer(ops: &[Value]) -> Value {
        let bytes = serde_json::to_vec(ops).unwrap();
        json!({"response": {"uid": "u", "allowed": true, "patchType": "JSONPatch",
            "patch": base64::engine::general_purpose::STANDARD.encode(bytes)}})
    }

    fn pod(ops: &[Value]) -> Value {
        patched_pod(&review(), &answer(ops)).unwrap()
    }

    #[test]
    fn the_same_credentials_agree_whatever_the_token_lifetime() {
        let (a, b) = (
            pod(&patch(ARN, "sts.amazonaws.com", 86400)),
            pod(&patch(ARN, "sts.amazonaws.com", 82000)),
        );
        assert_eq!(
            disagreements(["irsa", "reference"], [&a, &b]),
            Vec::<String>::new()
        );
        let views = credentials(&a);
        assert_eq!(views.len(), 2, "{views:?}");
        assert_eq!(views["init:init"]["token"]["audience"], "sts.amazonaws.com");
        assert_eq!(views["app"]["mount"]["readOnly"], true);
        // The lifetime is only listed.
        let listed = differences(&a, &b);
        assert_eq!(
            listed,
            [
                "/spec/volumes/[name=aws-iam-token]/projected/sources/0/serviceAccountToken/expirationSeconds: 86400 / 82000"
            ]
        );
    }

    #[test]
    fn another_role_arn_disagrees() {
        let (a, b) = (
            pod(&patch(ARN, "sts.amazonaws.com", 86400)),
            pod(&patch(
                "arn:aws:iam::111122223333:role/other",
                "sts.amazonaws.com",
                86400,
            )),
        );
        let found = disagreements(["irsa", "reference"], [&a, &b]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .all(|f| f.contains(ROLE_ARN) && f.contains("role/other"))
        );
    }

    #[test]
    fn another_audience_disagrees() {
        let (a, b) = (
            pod(&patch(ARN, "sts.amazonaws.com", 86400)),
            pod(&patch(ARN, "minio", 86400)),
        );
        let found = disagreements(["irsa", "reference"], [&a, &b]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .all(|f| f.contains("token") && f.contains("minio"))
        );
    }

    #[test]
    fn a_token_file_outside_every_mount_has_no_token() {
        let mut ops = patch(ARN, "sts.amazonaws.com", 86400);
        for op in &mut ops {
            if op["value"]["name"] == TOKEN_FILE {
                op["value"]["value"] = json!("/elsewhere/token");
            }
        }
        let (a, b) = (pod(&patch(ARN, "sts.amazonaws.com", 86400)), pod(&ops));
        let found = disagreements(["irsa", "reference"], [&a, &b]);
        assert!(
            found
                .iter()
                .any(|f| f.contains("no web-identity credentials from reference")),
            "{found:?}"
        );
        assert!(found.iter().any(|f| f.contains(TOKEN_FILE)), "{found:?}");
        // No mount holds /elsewhere: the file resolves to nothing.
        assert_eq!(credentials(&b)["app"]["mount"], Value::Null);
    }

    #[test]
    fn a_writable_mount_disagrees() {
        let mut ops = patch(ARN, "sts.amazonaws.com", 86400);
        for op in &mut ops {
            op["value"].as_object_mut().map(|v| v.remove("readOnly"));
        }
        let (a, b) = (pod(&patch(ARN, "sts.amazonaws.com", 86400)), pod(&ops));
        let found = disagreements(["irsa", "reference"], [&a, &b]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .all(|f| f.contains("mount") && f.contains("\"readOnly\":false"))
        );
    }

    #[test]
    fn two_unmutated_pods_do_not_agree_vacuously() {
        let plain = review()["request"]["object"].clone();
        let found = disagreements(["irsa", "reference"], [&plain, &plain]);
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn named_entries_are_paired_by_name_wherever_they_are() {
        let a = json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "args": ["x", "y"]});
        let b = json!({"env": [{"name": "B", "value": "2"}, {"name": "A", "value": "3"}], "args": ["y", "x"]});
        assert_eq!(
            differences(&a, &b),
            [
                "/args/0: \"x\" / \"y\"",
                "/args/1: \"y\" / \"x\"",
                "/env/[name=A]/value: \"1\" / \"3\"",
            ]
        );
        // Duplicate names: by index.
        let c = json!([{"name": "A"}, {"name": "A", "v": 1}]);
        let d = json!([{"name": "A"}, {"name": "A", "v": 2}]);
        assert_eq!(differences(&c, &d), ["/1/v: 1 / 2"]);
    }

    #[test]
    fn answers_without_a_usable_patch_are_errors() {
        let good = answer(&patch(ARN, "sts.amazonaws.com", 86400));
        let mut denied = good.clone();
        denied["response"]["allowed"] = json!(false);
        let mut none = good.clone();
        none["response"].as_object_mut().unwrap().remove("patch");
        let mut not_base64 = good.clone();
        not_base64["response"]["patch"] = json!("%%%");
        let mut not_a_patch = good.clone();
        not_a_patch["response"]["patch"] =
            json!(base64::engine::general_purpose::STANDARD.encode("{}"));
        let not_applicable = answer(&[json!({"op": "remove", "path": "/spec/nothing"})]);
        for (what, bad) in [
            ("denied", denied),
            ("without a patch", none),
            ("not base64", not_base64),
            ("not a JSON patch", not_a_patch),
            ("not applicable", not_applicable),
            ("empty", json!({})),
        ] {
            assert!(patched_pod(&review(), &bad).is_err(), "{what}");
        }
    }
}
