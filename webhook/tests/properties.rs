//! Property tests of the mutation's invariants over generated pods, service accounts, namespaces and flags:
//! the patch only appends to env / volumeMounts / volumes, applying it changes nothing else (fields nobody
//! knows included), and mutating the result again adds nothing. The generators cover irsa's own annotations
//! too (`container-role-arns`, `role-session-name`, `--role-session-name`) and other volumes mounted at,
//! inside and above the token mount path; three more properties follow from them: every injected session
//! name is one STS accepts, every injected role is one the pattern and the namespace allow, and no
//! container ends up with two mounts on one path.

use std::collections::BTreeMap;

use irsa_webhook::{
    config::{DEFAULT_TOKEN_MOUNT_PATH, InjectionConfig},
    mutate::{Outcome, mutate, mutate_pod},
    session_name::SessionNameTemplate,
    views::{AccountOptions, NamespaceView, ServiceAccountView},
};
use json_patch::PatchOperation;
use proptest::{collection::vec, option, prelude::*};
use serde_json::{Map, Value, json};

/// Arbitrary JSON, for the fields the webhook must carry through untouched.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("\\PC{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Extra fields with random names, minus the few names the webhook reads or appends to at that level.
fn extras(reserved: &'static [&'static str]) -> impl Strategy<Value = BTreeMap<String, Value>> {
    proptest::collection::btree_map(
        "[a-zA-Z][a-zA-Z0-9/._~-]{0,10}"
            .prop_filter("reserved", move |k| !reserved.contains(&k.as_str())),
        any_json(),
        0..4,
    )
}

fn with_extras(mut object: Map<String, Value>, extras: BTreeMap<String, Value>) -> Value {
    for (key, value) in extras {
        object.entry(key).or_insert(value);
    }
    Value::Object(object)
}

const ENV_NAMES: &[&str] = &[
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_ROLE_SESSION_NAME",
    "LOG_LEVEL",
];

fn env_entry() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(ENV_NAMES),
        any::<bool>(),
        extras(&["name", "value", "valueFrom"]),
    )
        .prop_map(|(name, from, extra)| {
            let mut entry = Map::new();
            entry.insert("name".into(), name.into());
            if from {
                entry.insert(
                    "valueFrom".into(),
                    json!({"secretKeyRef": {"name": "s", "key": "k"}}),
                );
            } else {
                entry.insert("value".into(), "v".into());
            }
            with_extras(entry, extra)
        })
}

fn mount() -> impl Strategy<Value = Value> {
    let names = proptest::sample::select(&["aws-iam-token", "data", "creds"][..]);
    let paths = proptest::sample::select(
        &[
            DEFAULT_TOKEN_MOUNT_PATH,
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/",
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
            "/var/run/secrets/eks.amazonaws.com",
            "/var/run/secrets/eks.amazonaws.com/serviceaccountx",
            "/data",
            "/creds",
        ][..],
    );
    (names, paths, extras(&["name", "mountPath"])).prop_map(|(name, path, extra)| {
        with_extras(
            json!({"name": name, "mountPath": path})
                .as_object()
                .unwrap()
                .clone(),
            extra,
        )
    })
}

/// An optional array: absent, null, or present (possibly empty).
fn optional_list(item: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        4 => vec(item, 0..4).prop_map(|items| Some(Value::Array(items))),
    ]
}

fn container() -> impl Strategy<Value = Value> {
    let names = proptest::sample::select(&["app", "sidecar", "init", "proxy", ""][..]);
    (
        names,
        optional_list(env_entry()),
        optional_list(mount()),
        extras(&["name", "env", "volumeMounts"]),
    )
        .prop_map(|(name, env, mounts, extra)| {
            let mut c = Map::new();
            c.insert("name".into(), name.into());
            if let Some(env) = env {
                c.insert("env".into(), env);
            }
            if let Some(mounts) = mounts {
                c.insert("volumeMounts".into(), mounts);
            }
            with_extras(c, extra)
        })
}

fn volume() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"name": "data", "emptyDir": {}})),
        Just(json!({"name": "aws-iam-token", "secret": {"secretName": "static"}})),
        Just(
            json!({"name": "aws-iam-token", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken":
            {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}})
        ),
        Just(
            json!({"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}})
        ),
    ]
}

fn pod() -> impl Strategy<Value = Value> {
    let labels = option::of(Just(
        json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"}),
    ));
    let annotation_values = proptest::sample::select(
        &["60", "3600", "99999999", "soon", "app", "sidecar,init", ""][..],
    );
    let annotations = proptest::collection::btree_map(
        proptest::sample::select(
            &[
                "eks.amazonaws.com/token-expiration",
                "eks.amazonaws.com/include-containers",
                "eks.amazonaws.com/skip-containers",
                "other",
            ][..],
        ),
        annotation_values,
        0..3,
    );
    // irsa's own pod annotation: good, forbidden, invalid and unknown entries, and malformed values.
    let container_roles = option::weighted(
        0.7,
        proptest::sample::select(
            &[
                r#"{"app": "arn:aws:iam::123456789012:role/other-app"}"#,
                r#"{"sidecar": "arn:aws:iam::123456789012:role/x", "init": "arn:aws:iam::999999999999:role/y"}"#,
                r#"{"app": "arn:aws:iam::123456789012:user/x", "ghost": "arn:aws:iam::123456789012:role/x"}"#,
                r#"{"proxy": " arn:aws:iam::123456789012:role/x"}"#,
                "app=arn:aws:iam::123456789012:role/x",
                "",
            ][..],
        ),
    );
    let names = (
        option::of(proptest::sample::select(&["web-0", "a", LONG_POD_NAME][..])),
        option::of(proptest::sample::select(
            &["web-7d9c5b6f4-", "Odd_", ""][..],
        )),
        option::of(proptest::sample::select(&["team-a", ""][..])),
    );
    let node_selector = option::of(Just(json!({"kubernetes.io/os": "windows"})));
    let init = option::of(vec(container(), 0..3));
    let volumes = optional_list(volume());
    (
        (
            labels,
            annotations,
            container_roles,
            names,
            extras(&["labels", "annotations", "name", "generateName", "namespace"]),
        ),
        (
            vec(container(), 0..4),
            init,
            volumes,
            node_selector,
            extras(&["containers", "initContainers", "volumes"]),
        ),
        extras(&["metadata", "spec"]),
    )
        .prop_map(
            |(
                (
                    labels,
                    mut annotations,
                    container_roles,
                    (name, generate_name, namespace),
                    meta_extra,
                ),
                (containers, init, volumes, node_selector, spec_extra),
                top,
            )| {
                let mut metadata = Map::new();
                if let Some(labels) = labels {
                    metadata.insert("labels".into(), labels);
                }
                if let Some(roles) = container_roles {
                    annotations.insert("irsa-rs.github.io/container-role-arns", roles);
                }
                for (field, value) in [
                    ("name", name),
                    ("generateName", generate_name),
                    ("namespace", namespace),
                ] {
                    if let Some(value) = value {
                        metadata.insert(field.into(), value.into());
                    }
                }
                if !annotations.is_empty() {
                    metadata.insert("annotations".into(), json!(annotations));
                }
                let mut spec = Map::new();
                spec.insert("containers".into(), Value::Array(containers));
                if let Some(init) = init {
                    spec.insert("initContainers".into(), Value::Array(init));
                }
                if let Some(volumes) = volumes {
                    spec.insert("volumes".into(), volumes);
                }
                if let Some(node_selector) = node_selector {
                    spec.insert("nodeSelector".into(), node_selector);
                }
                let mut pod = Map::new();
                pod.insert("metadata".into(), with_extras(metadata, meta_extra));
                pod.insert("spec".into(), with_extras(spec, spec_extra));
                with_extras(pod, top)
            },
        )
}

fn service_account() -> impl Strategy<Value = Option<ServiceAccountView>> {
    let arns = proptest::sample::select(
        &[
            "arn:aws:iam::123456789012:role/app",
            "arn:aws-cn:iam::123456789012:role/x/y",
            "not-an-arn",
        ][..],
    );
    let opt_str = |values: &'static [&'static str]| option::of(proptest::sample::select(values));
    option::of((
        arns,
        opt_str(&["", "sts.amazonaws.com", "minio"]),
        opt_str(&["true", "false", "junk"]),
        opt_str(&["600", "7200", "1", "x"]),
        opt_str(&[
            "{pod}",
            "{namespace}.{pod}",
            "{service_account}",
            "bad/{pod}",
            "",
        ]),
    ))
    .prop_map(|sa| {
        sa.map(|(arn, audience, regional, expiration, session_name)| {
            ServiceAccountView::with_options(
                arn,
                AccountOptions {
                    audience: audience.map(Into::into),
                    sts_regional_endpoints: regional.map(Into::into),
                    token_expiration: expiration.map(Into::into),
                    sts_endpoint_url: None,
                    role_session_name: session_name.map(Into::into),
                    near_miss: None,
                },
            )
        })
    })
}

fn namespace() -> impl Strategy<Value = Option<NamespaceView>> {
    option::of(proptest::sample::select(
        &[
            "arn:aws:iam::123456789012:role/.*",
            "arn:.*:role/other",
            "(",
        ][..],
    ))
    .prop_map(|pattern| pattern.map(NamespaceView::compile))
}

fn config() -> impl Strategy<Value = InjectionConfig> {
    let session_names = option::of(proptest::sample::select(
        &["{namespace}.{service_account}", "{pod}", "x"][..],
    ));
    (
        any::<bool>(),
        option::of(Just("eu-west-1".to_owned())),
        session_names,
    )
        .prop_map(|(regional, region, session_name)| InjectionConfig {
            sts_regional_endpoint: regional,
            aws_default_region: region,
            role_session_name: session_name.map(|t| SessionNameTemplate::parse(t).unwrap()),
            ..InjectionConfig::default()
        })
}

/// A pod name (given, not generated) longer than any session name.
const LONG_POD_NAME: &str =
    "a-very-long-statefulset-name-that-goes-on-and-on-for-a-while-longer-than-64-0";

/// The env entries the patch appends to each container, by container.
fn added_env(pod: &Value, patched: &Value) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for field in ["containers", "initContainers"] {
        let list = |p: &Value| {
            p["spec"]
                .get(field)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        for (before, after) in list(pod).iter().zip(list(patched)) {
            let env = |c: &Value| {
                c.get("env")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            out.push(env(&after)[env(before).len()..].to_vec());
        }
    }
    out
}

fn mount_paths_are_unique(pod: &Value) -> bool {
    ["containers", "initContainers"].iter().all(|field| {
        pod["spec"]
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .all(|c| {
                let mut paths: Vec<&str> = c
                    .get("volumeMounts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m["mountPath"].as_str().map(|p| p.trim_end_matches('/')))
                    .collect();
                let before = paths.len();
                paths.sort_unstable();
                paths.dedup();
                before == paths.len()
            })
    })
}

/// The pod without the arrays the webhook appends to.
fn strip_owned(pod: &Value) -> Value {
    let mut pod = pod.clone();
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("volumes");
        for field in ["containers", "initContainers"] {
            for c in spec
                .get_mut(field)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                c.as_object_mut().unwrap().remove("env");
                c.as_object_mut().unwrap().remove("volumeMounts");
            }
        }
    }
    pod
}

/// Every owned array (null or absent as empty), in a fixed order.
fn owned_arrays(pod: &Value) -> Vec<Vec<Value>> {
    let list = |v: &Value, f: &str| {
        v.get(f)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let spec = &pod["spec"];
    let mut out = vec![list(spec, "volumes")];
    for field in ["containers", "initContainers"] {
        for c in spec
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(list(c, "env"));
            out.push(list(c, "volumeMounts"));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn patch_only_appends_to_owned_arrays(pod in pod(), sa in service_account(), ns in namespace(), cfg in config()) {
        let m = mutate(&pod, sa.as_ref(), ns.as_ref(), &cfg);
        prop_assert_eq!(m.outcome == Outcome::Mutated, !m.patch.is_empty());
        let shape = regex::Regex::new(r"^/spec/((containers|initContainers)/\d+/(env|volumeMounts)|volumes)(/-)?$").unwrap();
        for op in m.patch.iter() {
            let PatchOperation::Add(add) = op else { panic!("not an add: {op}") };
            prop_assert!(shape.is_match(add.path.as_str()), "path {}", add.path);
            // A whole-array add only where the array was absent or null: never replaces existing entries.
            if !add.path.as_str().ends_with("/-") {
                let existing = pod.pointer(add.path.as_str());
                prop_assert!(existing.is_none_or(Value::is_null), "replaces {}", add.path);
            }
        }
    }

    #[test]
    fn unknown_fields_round_trip(pod in pod(), sa in service_account(), ns in namespace(), cfg in config()) {
        let m = mutate(&pod, sa.as_ref(), ns.as_ref(), &cfg);
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &m.patch).expect("the patch applies");
        prop_assert_eq!(strip_owned(&pod), strip_owned(&patched));
        let (before, after) = (owned_arrays(&pod), owned_arrays(&patched));
        prop_assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            prop_assert!(a.len() >= b.len() && a[..b.len()] == b[..], "existing entries changed: {:?} -> {:?}", b, a);
        }
    }

    #[test]
    fn mutating_twice_adds_nothing(pod in pod(), sa in service_account(), ns in namespace(), cfg in config()) {
        let first = mutate(&pod, sa.as_ref(), ns.as_ref(), &cfg);
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &first.patch).expect("the patch applies");
        let second = mutate(&patched, sa.as_ref(), ns.as_ref(), &cfg);
        prop_assert!(second.patch.is_empty(), "second patch {}", second.patch);
        if first.outcome == Outcome::Mutated {
            prop_assert_eq!(second.outcome, Outcome::AlreadyMutated);
        } else {
            prop_assert_eq!(second.outcome, first.outcome);
        }
    }

    #[test]
    fn injected_session_names_are_valid_for_sts(pod in pod(), sa in service_account(), ns in namespace(), cfg in config()) {
        let m = mutate(&pod, sa.as_ref(), ns.as_ref(), &cfg);
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &m.patch).expect("the patch applies");
        let session_char = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
        for entry in added_env(&pod, &patched).into_iter().flatten() {
            if entry["name"] != "AWS_ROLE_SESSION_NAME" {
                continue;
            }
            match entry["value"].as_str() {
                Some(name) => prop_assert!(
                    (2..=64).contains(&name.len()) && name.chars().all(session_char),
                    "invalid session name {:?}", name
                ),
                None => prop_assert_eq!(
                    &entry["valueFrom"],
                    &json!({"fieldRef": {"fieldPath": "metadata.name"}})
                ),
            }
        }
    }

    #[test]
    fn injected_roles_are_allowed(pod in pod(), sa in service_account(), ns in namespace(), cfg in config()) {
        // The generated pair, and one where the account's role is allowed but most roles pods ask for are
        // not, so that `container-role-arns` meets the restriction often.
        let app = ServiceAccountView::new("arn:aws:iam::123456789012:role/app");
        let restrictive = NamespaceView::compile("arn:aws(-cn)?:iam::123456789012:role/(app|x/y)");
        for (sa, ns) in [(sa.as_ref(), ns.as_ref()), (Some(&app), Some(&restrictive))] {
            let m = mutate(&pod, sa, ns, &cfg);
            let mut patched = pod.clone();
            json_patch::patch(&mut patched, &m.patch).expect("the patch applies");
            for entry in added_env(&pod, &patched).into_iter().flatten() {
                if entry["name"] != "AWS_ROLE_ARN" {
                    continue;
                }
                let role = entry["value"].as_str().unwrap();
                prop_assert!(cfg.role_arn_pattern.is_match(role), "role {} injected", role);
                if let Some(ns) = ns {
                    prop_assert_eq!(ns.permits(role), Ok(true), "role {} not permitted", role);
                }
            }
        }
    }

    #[test]
    fn no_container_gets_a_second_mount_on_one_path(pod in pod(), sa in service_account(), ns in namespace(), cfg in config()) {
        prop_assume!(mount_paths_are_unique(&pod));
        let m = mutate(&pod, sa.as_ref(), ns.as_ref(), &cfg);
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &m.patch).expect("the patch applies");
        prop_assert!(mount_paths_are_unique(&patched), "{}", m.patch);
    }
}

/// The AdmissionReview of a pod CREATE, with the members the webhook skips around the pod.
fn review_of(pod: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0b5e7f00-0000-4000-8000-000000000002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": "team-a",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["a"]},
            "object": pod,
            "oldObject": null,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        }
    }))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The server decodes only what the mutation reads of the pod, from inside the AdmissionReview (beside
    /// `userInfo`, `oldObject`, `options`, which it skips): the mutation of that must be the mutation of the
    /// whole pod's JSON. (The fixtures' expected patches, written by the mutation that walked the whole pod as a
    /// `serde_json::Value`, are the independent check of what the decode reads.)
    #[test]
    fn the_decoded_pod_mutates_as_the_whole_pod(pod in pod(), sa in service_account(), ns in namespace(), cfg in config()) {
        let body = review_of(&pod);
        let request = irsa_webhook::review::decode(&body).expect("the review decodes");
        let decoded = request.pod.as_ref().expect("the review has the pod");
        prop_assert_eq!(
            mutate_pod(decoded, sa.as_ref(), ns.as_ref(), &cfg),
            mutate(&pod, sa.as_ref(), ns.as_ref(), &cfg)
        );
    }
}
