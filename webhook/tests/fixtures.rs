//! Table-driven fixtures: every directory under `tests/fixtures/` is one case.
//!
//! A case holds `pod.yaml`, optionally `serviceaccount.yaml`, `namespace.yaml` and `config.yaml` (flag
//! overrides, keyed by flag name without `--`; a switch is a key without a value), and its expectations: `expected-patch.json`,
//! `expected-warnings.json` (`[{reason, message}]`), `expected-outcome.txt` and, optionally, `checks.yaml`:
//! assertions on the patched pod written by hand, independent of the recorded patch:
//!
//! ```yaml
//! env:          # container (or init container) name -> variable -> expected
//!   app:        #   a string: the entry's `value`; null: no such entry; a mapping: the entry minus `name`
//!     AWS_ROLE_ARN: arn:aws:iam::123456789012:role/app
//! mounted: [app]         # containers that mount aws-iam-token at the mount path after the patch
//! not-mounted: [sidecar] # containers that do not mount aws-iam-token at all
//! volume: {audience: sts.amazonaws.com, expirationSeconds: 86400}   # or false: no aws-iam-token volume
//! preserved: [/spec/containers/0/startupProbe]   # pointers that exist and are unchanged by the patch
//! ```
//!
//! Every case also goes through generic checks: the patch applies, only appends to env / volumeMounts /
//! volumes, leaves everything else as it was, and a second mutation of the result adds nothing.
//!
//! Each case is a test named after its directory (this target has its own `main`, `harness = false`):
//! `cargo test -p irsa-webhook --test fixtures <name>` runs the cases whose name contains `<name>`, and
//! `-- --exact <name>` that case alone. `IRSA_BLESS=1 cargo test -p irsa-webhook --test fixtures` rewrites the
//! expected files (review the diff).

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use clap::Parser;
use irsa_webhook::{
    config::{InjectionArgs, InjectionConfig},
    mutate::{Mutation, Outcome, mutate, mutate_pod},
    views::{NamespaceView, ServiceAccountView},
    warning::WarningReason,
};
use libtest_mimic::{Arguments, Trial};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strum::VariantArray as _;

const TOKEN_VOLUME: &str = "aws-iam-token";

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    injection: InjectionArgs,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct ExpectedWarning {
    reason: String,
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Checks {
    #[serde(default)]
    env: BTreeMap<String, BTreeMap<String, Value>>,
    #[serde(default)]
    mounted: Vec<String>,
    #[serde(default)]
    not_mounted: Vec<String>,
    volume: Option<Value>,
    #[serde(default)]
    preserved: Vec<String>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read_yaml(path: &Path) -> Option<Value> {
    let text = fs::read_to_string(path).ok()?;
    Some(serde_yaml::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display())))
}

fn annotations(doc: &Value) -> BTreeMap<String, String> {
    doc.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .expect("annotation values are strings")
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Builds the configuration through the real flags, so `config.yaml` exercises the clap definitions too.
fn config(dir: &Path) -> InjectionConfig {
    let mut argv = vec!["irsa".to_owned()];
    if let Some(Value::Object(flags)) = read_yaml(&dir.join("config.yaml")) {
        for (flag, value) in flags {
            argv.push(format!("--{flag}"));
            match value {
                // A switch: `flag:` with no value.
                Value::Null => {}
                Value::String(s) => argv.push(s),
                other => argv.push(other.to_string()),
            }
        }
    }
    let flags = Flags::try_parse_from(&argv)
        .unwrap_or_else(|err| panic!("{}: config.yaml: {err}", dir.display()));
    flags.injection.into_config().expect("valid config.yaml")
}

struct Case {
    pod: Value,
    sa: Option<ServiceAccountView>,
    ns: Option<NamespaceView>,
    cfg: InjectionConfig,
}

impl Case {
    fn load(dir: &Path) -> Self {
        let pod = read_yaml(&dir.join("pod.yaml")).expect("pod.yaml");
        let cfg = config(dir);
        let sa = read_yaml(&dir.join("serviceaccount.yaml")).and_then(|sa| {
            ServiceAccountView::from_annotations(&cfg.annotation_prefix, &annotations(&sa))
        });
        let ns = read_yaml(&dir.join("namespace.yaml"))
            .and_then(|ns| NamespaceView::from_annotations(&annotations(&ns)));
        Self { pod, sa, ns, cfg }
    }

    fn mutate(&self, pod: &Value) -> Mutation {
        mutate(pod, self.sa.as_ref(), self.ns.as_ref(), &self.cfg)
    }

    /// The mutation of a pod as the server decodes it from an AdmissionReview.
    fn mutate_decoded(&self, pod: &irsa_webhook::pod::Pod<'_>) -> Mutation {
        mutate_pod(pod, self.sa.as_ref(), self.ns.as_ref(), &self.cfg)
    }
}

fn bless() -> bool {
    std::env::var_os("IRSA_BLESS").is_some()
}

fn run_case(dir: &Path) {
    let case = Case::load(dir);
    let mutation = case.mutate(&case.pod);
    let patch_json = serde_json::to_value(&mutation.patch).unwrap();
    let warnings: Vec<ExpectedWarning> = mutation
        .all_warnings()
        .map(|w| ExpectedWarning {
            reason: w.reason.as_str().to_owned(),
            message: w.message.clone(),
        })
        .collect();

    if bless() {
        fs::write(
            dir.join("expected-patch.json"),
            serde_json::to_string_pretty(&patch_json).unwrap() + "\n",
        )
        .unwrap();
        fs::write(
            dir.join("expected-warnings.json"),
            serde_json::to_string_pretty(&warnings).unwrap() + "\n",
        )
        .unwrap();
        fs::write(
            dir.join("expected-outcome.txt"),
            format!("{}\n", mutation.outcome),
        )
        .unwrap();
    }

    let expected_patch: Value = serde_json::from_str(
        &fs::read_to_string(dir.join("expected-patch.json")).expect("expected-patch.json"),
    )
    .unwrap();
    assert_eq!(
        patch_json, expected_patch,
        "patch differs from expected-patch.json"
    );
    let expected_warnings: Vec<ExpectedWarning> = serde_json::from_str(
        &fs::read_to_string(dir.join("expected-warnings.json")).expect("expected-warnings.json"),
    )
    .unwrap();
    for warning in &expected_warnings {
        assert!(
            warning.reason.parse::<WarningReason>().is_ok(),
            "unknown reason {:?}",
            warning.reason
        );
    }
    assert_eq!(
        warnings, expected_warnings,
        "warnings differ from expected-warnings.json"
    );
    let expected_outcome =
        fs::read_to_string(dir.join("expected-outcome.txt")).expect("expected-outcome.txt");
    let expected_outcome: Outcome = expected_outcome
        .trim()
        .parse()
        .expect("a known outcome label");
    assert_eq!(
        mutation.outcome, expected_outcome,
        "outcome differs from expected-outcome.txt"
    );

    let patched = generic_checks(&case, &mutation);

    let checks: Checks = read_yaml(&dir.join("checks.yaml"))
        .map(|v| serde_json::from_value(v).expect("checks.yaml has the documented shape"))
        .unwrap_or_default();
    case_checks(&case, &checks, &patched);
}

/// Checks that hold for every case, whatever was recorded.
fn generic_checks(case: &Case, mutation: &Mutation) -> Value {
    assert_eq!(
        mutation.outcome == Outcome::Mutated,
        !mutation.patch.is_empty(),
        "outcome {} with {} operations",
        mutation.outcome,
        mutation.patch.len()
    );
    let mut patched = case.pod.clone();
    json_patch::patch(&mut patched, &mutation.patch).expect("the patch applies to the pod");

    // Only appends to the three arrays: the rest of the pod is untouched, existing entries stay in place.
    let path_shape = regex::Regex::new(
        r"^/spec/((containers|initContainers)/\d+/(env|volumeMounts)|volumes)(/-)?$",
    )
    .unwrap();
    for op in mutation.patch.iter() {
        let json_patch::PatchOperation::Add(add) = op else {
            panic!("not an add: {op}")
        };
        assert!(
            path_shape.is_match(add.path.as_str()),
            "unexpected path {}",
            add.path
        );
    }
    assert_eq!(
        strip_owned_arrays(&case.pod),
        strip_owned_arrays(&patched),
        "fields outside the owned arrays changed"
    );
    for (before, after) in owned_arrays(&case.pod)
        .into_iter()
        .zip(owned_arrays(&patched))
    {
        assert!(
            after.len() >= before.len() && after[..before.len()] == before[..],
            "an existing entry moved"
        );
    }

    // What was injected is coherent.
    let mount_path = case.cfg.token_mount_path.as_str();
    for container in all_containers(&patched) {
        let name = container["name"].as_str().unwrap_or("");
        let env_names: Vec<&str> = list(container, "env")
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        let mut unique = env_names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            env_names.len(),
            "container {name}: duplicate env entries {env_names:?}"
        );
        let mut paths: Vec<&str> = list(container, "volumeMounts")
            .iter()
            .filter_map(|m| m["mountPath"].as_str())
            .collect();
        paths.sort_unstable();
        let before = paths.len();
        paths.dedup();
        assert_eq!(
            before,
            paths.len(),
            "container {name}: duplicate mount paths"
        );
    }
    let injected = injected_containers(&case.pod, &patched);
    for name in &injected {
        assert!(
            mounts_token(&patched, name, mount_path),
            "container {name} got the role but not the token mount"
        );
    }
    if !injected.is_empty() {
        assert!(
            token_volume(&patched).is_some(),
            "containers injected but no {TOKEN_VOLUME} volume"
        );
        let file = env_value(&patched, &injected[0], "AWS_WEB_IDENTITY_TOKEN_FILE").unwrap();
        assert!(file.ends_with("token"), "token file {file}");
    }

    // Idempotent: the patched pod needs nothing more.
    let again = case.mutate(&patched);
    assert!(
        again.patch.is_empty(),
        "second mutation is not empty: {}",
        again.patch
    );
    if mutation.outcome == Outcome::Mutated {
        assert_eq!(again.outcome, Outcome::AlreadyMutated);
    } else {
        assert_eq!(again.outcome, mutation.outcome);
    }
    patched
}

fn case_checks(case: &Case, checks: &Checks, patched: &Value) {
    for (container, vars) in &checks.env {
        let found = find_container(patched, container)
            .unwrap_or_else(|| panic!("checks.yaml: no container {container}"));
        for (var, expected) in vars {
            let entry = list(found, "env")
                .iter()
                .find(|e| e["name"] == var.as_str());
            match (expected, entry) {
                (Value::Null, None) => {}
                (Value::Null, Some(entry)) => {
                    panic!("container {container}: {var} should be absent, found {entry}")
                }
                (_, None) => panic!("container {container}: {var} is missing"),
                (Value::String(value), Some(entry)) => {
                    assert_eq!(
                        entry["value"].as_str(),
                        Some(value.as_str()),
                        "container {container}: {var}"
                    )
                }
                (Value::Object(fields), Some(entry)) => {
                    let mut entry = entry.clone();
                    entry.as_object_mut().unwrap().remove("name");
                    assert_eq!(
                        &entry,
                        &Value::Object(fields.clone()),
                        "container {container}: {var}"
                    );
                }
                (other, _) => panic!("checks.yaml: bad expectation {other}"),
            }
        }
    }
    let mount_path = case.cfg.token_mount_path.as_str();
    for name in &checks.mounted {
        assert!(
            find_container(patched, name).is_some(),
            "checks.yaml: no container {name}"
        );
        assert!(
            mounts_token(patched, name, mount_path),
            "container {name} does not mount the token"
        );
    }
    for name in &checks.not_mounted {
        let found = find_container(patched, name)
            .unwrap_or_else(|| panic!("checks.yaml: no container {name}"));
        assert!(
            !list(found, "volumeMounts")
                .iter()
                .any(|m| m["name"] == TOKEN_VOLUME),
            "container {name} mounts the token"
        );
    }
    match &checks.volume {
        None => {}
        Some(Value::Bool(false)) => assert!(
            token_volume(patched).is_none(),
            "unexpected {TOKEN_VOLUME} volume"
        ),
        Some(Value::Object(expected)) => {
            let volume = token_volume(patched).expect("the token volume");
            let token = &volume["projected"]["sources"][0]["serviceAccountToken"];
            assert_eq!(token["path"], "token");
            for (field, value) in expected {
                assert_eq!(&token[field], value, "volume {field}");
            }
        }
        Some(other) => panic!("checks.yaml: bad volume expectation {other}"),
    }
    for pointer in &checks.preserved {
        let before = case
            .pod
            .pointer(pointer)
            .unwrap_or_else(|| panic!("checks.yaml: {pointer} not in pod.yaml"));
        assert!(!before.is_null(), "checks.yaml: {pointer} is null");
        assert_eq!(patched.pointer(pointer), Some(before), "{pointer} changed");
    }
}

fn list<'a>(object: &'a Value, field: &str) -> &'a [Value] {
    object
        .get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn all_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    list(&pod["spec"], "containers")
        .iter()
        .chain(list(&pod["spec"], "initContainers"))
}

fn find_container<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    all_containers(pod).find(|c| c["name"] == name)
}

fn env_value(pod: &Value, container: &str, var: &str) -> Option<String> {
    let container = find_container(pod, container)?;
    let entry = list(container, "env").iter().find(|e| e["name"] == var)?;
    entry["value"].as_str().map(str::to_owned)
}

fn mounts_token(pod: &Value, container: &str, mount_path: &str) -> bool {
    find_container(pod, container).is_some_and(|c| {
        list(c, "volumeMounts").iter().any(|m| {
            m["name"] == TOKEN_VOLUME
                && m["mountPath"].as_str().map(|p| p.trim_end_matches('/')) == Some(mount_path)
        })
    })
}

fn token_volume(pod: &Value) -> Option<&Value> {
    list(&pod["spec"], "volumes")
        .iter()
        .find(|v| v["name"] == TOKEN_VOLUME)
}

/// Containers whose `AWS_ROLE_ARN` entry count grew (the ones this mutation injected).
fn injected_containers(before: &Value, after: &Value) -> Vec<String> {
    all_containers(after)
        .filter_map(|c| {
            let name = c["name"].as_str()?;
            let had = find_container(before, name)
                .is_some_and(|b| list(b, "env").iter().any(|e| e["name"] == "AWS_ROLE_ARN"));
            let has = list(c, "env").iter().any(|e| e["name"] == "AWS_ROLE_ARN");
            (has && !had).then(|| name.to_owned())
        })
        .collect()
}

/// The pod without the arrays the webhook appends to.
fn strip_owned_arrays(pod: &Value) -> Value {
    let mut pod = pod.clone();
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("volumes");
        for field in ["containers", "initContainers"] {
            for container in spec
                .get_mut(field)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(container) = container.as_object_mut() {
                    container.remove("env");
                    container.remove("volumeMounts");
                }
            }
        }
    }
    pod
}

/// The owned arrays, in a fixed order, absent ones as empty.
fn owned_arrays(pod: &Value) -> Vec<Vec<Value>> {
    let mut arrays = vec![list(&pod["spec"], "volumes").to_vec()];
    for field in ["containers", "initContainers"] {
        for container in list(&pod["spec"], field) {
            arrays.push(list(container, "env").to_vec());
            arrays.push(list(container, "volumeMounts").to_vec());
        }
    }
    arrays
}

/// The case directories, sorted.
fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn main() {
    let args = Arguments::from_args();
    let cases = case_dirs().into_iter().map(|dir| {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        Trial::test(name, move || {
            run_case(&dir);
            Ok(())
        })
        .with_kind("fixture")
    });
    let tests = [
        Trial::test("fixture_cases_are_found", || {
            fixture_cases_are_found();
            Ok(())
        }),
        Trial::test("fixtures_cover_every_outcome_and_warning", || {
            fixtures_cover_every_outcome_and_warning();
            Ok(())
        }),
        Trial::test("bench_review_is_a_mutated_pod_create", || {
            bench_review_is_a_mutated_pod_create();
            Ok(())
        }),
        Trial::test("decoded_reviews_mutate_as_their_whole_pods", || {
            decoded_reviews_mutate_as_their_whole_pods();
            Ok(())
        }),
    ];
    libtest_mimic::run(&args, tests.into_iter().chain(cases).collect()).exit();
}

/// A broken path or a lost directory would otherwise pass with no case run.
fn fixture_cases_are_found() {
    let dirs = case_dirs();
    assert!(dirs.len() >= 40, "only {} fixture cases found", dirs.len());
}

/// Each outcome the mutation can produce appears in at least one case, so none goes untested.
fn fixtures_cover_every_outcome_and_warning() {
    let mut outcomes = Vec::new();
    let mut reasons = Vec::new();
    for entry in fs::read_dir(fixtures_dir()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        outcomes.push(
            fs::read_to_string(dir.join("expected-outcome.txt"))
                .unwrap()
                .trim()
                .to_owned(),
        );
        let warnings: Vec<ExpectedWarning> =
            serde_json::from_str(&fs::read_to_string(dir.join("expected-warnings.json")).unwrap())
                .unwrap();
        reasons.extend(warnings.into_iter().map(|w| w.reason));
    }
    for outcome in Outcome::VARIANTS {
        assert!(
            outcomes.iter().any(|o| o == outcome.as_str()),
            "no fixture with outcome {outcome}"
        );
    }
    // The server's reasons (a failed lookup) are not the mutation's.
    for reason in WarningReason::VARIANTS
        .iter()
        .filter(|r| r.raised_by_mutation())
    {
        assert!(
            reasons.iter().any(|r| r == reason.as_str()),
            "no fixture with warning {reason}"
        );
    }
}

/// The review shared with the benchmark and the load generator stays a pod CREATE that gets mutated.
fn bench_review_is_a_mutated_pod_create() {
    let body =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures/review-6kb.json"))
            .unwrap();
    assert!((5_000..8_000).contains(&body.len()), "{} bytes", body.len());
    let request = irsa_webhook::review::decode(&body).unwrap();
    assert!(request.is_pod_create());
    assert_eq!(request.service_account_name(), "orders-api");
    let pod = request.pod.as_ref().unwrap();
    let sa = ServiceAccountView::new("arn:aws:iam::123456789012:role/orders-api");
    let mutation = mutate_pod(pod, Some(&sa), None, &InjectionConfig::default());
    assert_eq!(mutation.outcome, Outcome::Mutated);
    // The api container and the init container append to their env and mounts; log-shipper has no env yet.
    let paths: Vec<String> = mutation
        .patch
        .iter()
        .map(|op| op.path().to_string())
        .collect();
    let expected = [
        "/spec/containers/0/env/-",
        "/spec/containers/0/env/-",
        "/spec/containers/0/volumeMounts/-",
        "/spec/containers/1/env",
        "/spec/containers/1/volumeMounts/-",
        "/spec/initContainers/0/env/-",
        "/spec/initContainers/0/env/-",
        "/spec/initContainers/0/volumeMounts/-",
        "/spec/volumes/-",
    ];
    assert_eq!(paths, expected);
}

/// The server mutates the pod decoded from inside the AdmissionReview, which holds only what the mutation reads;
/// for every case it must give exactly what the pod's own JSON gives (patch, warnings, outcome).
fn decoded_reviews_mutate_as_their_whole_pods() {
    let dirs = case_dirs();
    for dir in &dirs {
        let case = Case::load(dir);
        let body = serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "3c0e3b1a-0000-4000-8000-000000000001",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "operation": "CREATE",
                "namespace": "ns",
                "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                "object": case.pod,
                "oldObject": null,
            }
        }))
        .unwrap();
        let request = irsa_webhook::review::decode(&body)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        let decoded = request.pod.as_ref().unwrap();
        assert_eq!(
            case.mutate_decoded(decoded),
            case.mutate(&case.pod),
            "{}: the decoded pod mutates differently",
            dir.display()
        );
    }
}
