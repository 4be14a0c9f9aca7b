//! `irsa webhook mutate`: the mutation core run offline on files, for users asking "what will the webhook
//! do to my pod?" and for tests. No cluster, no network.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

use crate::{
    config::InjectionArgs,
    mutate::mutate_pod,
    pod, pod_decode,
    policy::Policy,
    review,
    views::{NamespaceView, ServiceAccountView},
};

mod nesting;

pub use nesting::MAX_DEPTH;

/// The largest input file read, in bytes: the default of `irsa webhook serve --max-body-bytes` (4 MiB), so
/// that whatever the server would read, this command reads too. Checked before parsing, like the nesting
/// depth ([`MAX_DEPTH`]), so that an oversized or deeply nested document costs a bounded read and one
/// linear scan, never a parse.
pub const MAX_INPUT_BYTES: usize = crate::routes::DEFAULT_MAX_BODY_BYTES;

/// The uid of the AdmissionReview response when the input is a bare pod.
pub const OFFLINE_UID: &str = "00000000-0000-0000-0000-000000000000";

/// What `irsa webhook mutate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// The JSON Patch the webhook would return.
    Patch,
    /// The pod after the patch, as YAML.
    Pod,
    /// The AdmissionReview response the webhook would send.
    Review,
}

/// Arguments of `irsa webhook mutate`.
#[derive(Debug, Clone, clap::Args)]
pub struct MutateArgs {
    /// The pod, as YAML or JSON, or `-` for standard input. An `admission.k8s.io/v1` AdmissionReview is
    /// accepted too: its `request.object` is the pod and its uid is echoed in `--output review`.
    #[arg(long, value_name = "FILE")]
    pub pod: PathBuf,

    /// The pod's ServiceAccount (YAML or JSON, `-` for standard input); without it the pod is treated as
    /// not annotated.
    #[arg(long, value_name = "FILE")]
    pub service_account: Option<PathBuf>,

    /// The pod's Namespace (YAML or JSON, `-` for standard input), for its `iam.amazonaws.com/permitted`
    /// (and, with `--legacy-role-annotations`, `iam.amazonaws.com/allowed-roles`) restriction.
    #[arg(long, value_name = "FILE")]
    pub namespace: Option<PathBuf>,

    /// The injection settings, as for `irsa webhook serve`.
    #[command(flatten)]
    pub injection: InjectionArgs,

    /// What to print: the JSON Patch, the mutated pod as YAML, or the AdmissionReview response.
    #[arg(long, value_enum, default_value_t = OutputFormat::Patch, value_name = "FORMAT")]
    pub output: OutputFormat,
}

/// Runs `irsa webhook mutate`, with warnings on the process's standard error.
pub fn run_mutate(args: MutateArgs, stdin: impl Read, stdout: impl Write) -> anyhow::Result<()> {
    run_mutate_with_stderr(args, stdin, stdout, std::io::stderr().lock())
}

/// Runs `irsa webhook mutate` with an explicit standard error (for tests). Warnings are written as
/// `warning: <message>`, followed by `outcome: <outcome>`.
pub fn run_mutate_with_stderr(
    args: MutateArgs,
    stdin: impl Read,
    mut stdout: impl Write,
    mut stderr: impl Write,
) -> anyhow::Result<()> {
    let cfg = args.injection.into_config()?;
    let mut input = Input { stdin: Some(stdin) };

    let document = input.read("--pod", &args.pod)?;
    let (pod, uid) = match kind_of(&document) {
        Some("AdmissionReview") => {
            let bytes = serde_json::to_vec(&document)?;
            let request = review::decode(&bytes)
                .map_err(|err| anyhow!("--pod {}: {err}", args.pod.display()))?;
            if request.pod.is_none() {
                bail!(
                    "--pod {}: the AdmissionReview has no request.object",
                    args.pod.display()
                );
            }
            // The decoded pod holds only what the mutation reads; `--output pod` shows the whole object
            // (without managedFields and status, as this command always has).
            let mut pod = document["request"]["object"].clone();
            strip_server_fields(&mut pod);
            expect_kind(&pod, "Pod", "--pod", &args.pod)?;
            (pod, request.uid.into_owned())
        }
        _ => {
            expect_kind(&document, "Pod", "--pod", &args.pod)?;
            (document, OFFLINE_UID.to_owned())
        }
    };
    string_map(&pod, "labels", "--pod", &args.pod)?;
    string_map(&pod, "annotations", "--pod", &args.pod)?;
    let json = serde_json::to_vec(&pod)?;
    let view = pod_decode::pod_json(&json)
        .map_err(|err| anyhow!("--pod {}: {}", args.pod.display(), err.what))?;

    let service_account = match &args.service_account {
        None => None,
        Some(path) => {
            let sa = input.read("--service-account", path)?;
            expect_kind(&sa, "ServiceAccount", "--service-account", path)?;
            let sa_name = sa.pointer("/metadata/name").and_then(Value::as_str);
            let pod_sa = pod::service_account_name(&view);
            if let Some(sa_name) = sa_name.filter(|name| *name != pod_sa) {
                writeln!(
                    stderr,
                    "note: the pod runs as service account {pod_sa:?}, --service-account describes {sa_name:?}"
                )?;
            }
            let annotations = string_map(&sa, "annotations", "--service-account", path)?;
            ServiceAccountView::from_annotations(&cfg.annotation_prefix, &annotations)
        }
    };
    let namespace = match &args.namespace {
        None => None,
        Some(path) => {
            let ns = input.read("--namespace", path)?;
            expect_kind(&ns, "Namespace", "--namespace", path)?;
            NamespaceView::from_annotations(&string_map(&ns, "annotations", "--namespace", path)?)
        }
    };

    let mutation = mutate_pod(&view, service_account.as_ref(), namespace.as_ref(), &cfg);
    for warning in mutation.all_warnings() {
        writeln!(stderr, "warning: {}", warning.message)?;
    }
    writeln!(stderr, "outcome: {}", mutation.outcome)?;

    match args.output {
        OutputFormat::Patch => {
            serde_json::to_writer_pretty(&mut stdout, &mutation.patch)?;
            writeln!(stdout)?;
        }
        OutputFormat::Pod => {
            let mut mutated = pod;
            json_patch::patch(&mut mutated, &mutation.patch)
                .context("applying the patch to the pod")?;
            serde_yaml::to_writer(&mut stdout, &mutated)?;
        }
        OutputFormat::Review => {
            // The server's default policy: a pod whose role is forbidden is admitted, with the reason as a warning.
            stdout.write_all(&review::response(
                &uid,
                &Policy::default().mutation(mutation),
            ))?;
            writeln!(stdout)?;
        }
    }
    stdout.flush()?;
    Ok(())
}

/// Reads files and standard input (at most once).
struct Input<R> {
    stdin: Option<R>,
}

impl<R: Read> Input<R> {
    fn read(&mut self, flag: &str, path: &Path) -> anyhow::Result<Value> {
        let text = if path.as_os_str() == "-" {
            let Some(stdin) = self.stdin.take() else {
                bail!("{flag} -: standard input was already read by another flag");
            };
            read_capped(stdin)
                .map_err(|err| anyhow!("{flag} -: cannot read standard input: {err}"))?
        } else {
            std::fs::File::open(path)
                .and_then(read_capped)
                .map_err(|err| anyhow!("{flag} {}: cannot read: {err}", path.display()))?
        };
        let Some(text) = text else {
            bail!(
                "{flag} {}: larger than {MAX_INPUT_BYTES} bytes (what irsa webhook serve accepts by \
                 default); refused before parsing",
                path.display()
            );
        };
        parse_document(&text).map_err(|err| anyhow!("{flag} {}: {err}", path.display()))
    }
}

/// Reads at most [`MAX_INPUT_BYTES`]; `None` when there is more.
fn read_capped(reader: impl Read) -> std::io::Result<Option<String>> {
    let mut text = String::new();
    reader
        .take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_string(&mut text)?;
    Ok((text.len() <= MAX_INPUT_BYTES).then_some(text))
}

/// Parses one YAML or JSON document into a JSON object.
fn parse_document(text: &str) -> anyhow::Result<Value> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        bail!("the file is empty");
    }
    // Before either parser: the YAML parser's cost grows quadratically with depth.
    nesting::check(text)?;
    // JSON first: YAML parsers trip on some valid JSON (tabs), and JSON errors point at the right place.
    let value: Value = if trimmed.starts_with('{') {
        serde_json::from_str(text).map_err(|err| anyhow!("not valid JSON: {err}"))?
    } else {
        serde_yaml::from_str(text).map_err(|err| anyhow!("not a valid YAML document: {err}"))?
    };
    if !value.is_object() {
        bail!(
            "expected a Kubernetes object (a mapping), found {}",
            json_type(&value)
        );
    }
    Ok(value)
}

/// Removes `metadata.managedFields` and `status`, which the mutation never reads, from a review's object.
fn strip_server_fields(pod: &mut Value) {
    if let Some(object) = pod.as_object_mut() {
        object.remove("status");
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("managedFields");
        }
    }
}

fn kind_of(document: &Value) -> Option<&str> {
    document.get("kind")?.as_str()
}

/// Accepts a document without `kind` (a bare fragment) or with the expected one.
fn expect_kind(document: &Value, expected: &str, flag: &str, path: &Path) -> anyhow::Result<()> {
    match kind_of(document) {
        None => Ok(()),
        Some(kind) if kind == expected => Ok(()),
        Some(kind) => bail!(
            "{flag} {}: expected a {expected}, found kind {kind:?}",
            path.display()
        ),
    }
}

/// `metadata.<field>` as a map of strings: Kubernetes refuses other values, so say so rather than ignore them.
fn string_map(
    document: &Value,
    field: &str,
    flag: &str,
    path: &Path,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let map = document.get("metadata").and_then(|meta| meta.get(field));
    let Some(map) = map.filter(|v| !v.is_null()) else {
        return Ok(Default::default());
    };
    let Some(map) = map.as_object() else {
        bail!(
            "{flag} {}: metadata.{field} is not a mapping",
            path.display()
        );
    };
    map.iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key.clone(), s.clone())),
            other => Err(anyhow!(
                "{flag} {}: metadata.{field}.{key:?} is {}, not a string (quote it)",
                path.display(),
                json_type(other)
            )),
        })
        .collect()
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use clap::Parser;
    use std::io::Cursor;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        mutate: MutateArgs,
    }

    const POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    eks.amazonaws.com/token-expiration: \"3600\"
spec:
  serviceAccountName: web
  containers:
  - name: app
    image: nginx
    env:
    - name: AWS_ACCESS_KEY_ID
      value: AKIA
";

    const SA: &str = "\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/web
";

    #[derive(Debug)]
    struct Run {
        stdout: String,
        stderr: String,
    }

    fn args(argv: &[&str]) -> MutateArgs {
        Cli::try_parse_from(std::iter::once("mutate").chain(argv.iter().copied()))
            .unwrap()
            .mutate
    }

    fn run(argv: &[&str], stdin: &str) -> anyhow::Result<Run> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        run_mutate_with_stderr(
            args(argv),
            Cursor::new(stdin.to_owned()),
            &mut stdout,
            &mut stderr,
        )?;
        Ok(Run {
            stdout: String::from_utf8(stdout)?,
            stderr: String::from_utf8(stderr)?,
        })
    }

    fn files() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let pod = dir.path().join("pod.yaml");
        let sa = dir.path().join("sa.yaml");
        std::fs::write(&pod, POD).unwrap();
        std::fs::write(&sa, SA).unwrap();
        (dir, pod.display().to_string(), sa.display().to_string())
    }

    #[test]
    fn prints_the_patch_and_warnings() {
        let (_dir, pod, sa) = files();
        let out = run(&["--pod", &pod, "--service-account", &sa], "").unwrap();
        let patch: Value = serde_json::from_str(&out.stdout).unwrap();
        let ops = patch.as_array().unwrap();
        assert_eq!(ops.len(), 4, "{patch:#}");
        assert_eq!(ops[0]["path"], "/spec/containers/0/env/-");
        assert_eq!(
            ops[0]["value"]["value"],
            "arn:aws:iam::123456789012:role/web"
        );
        assert_eq!(
            ops[3]["value"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3600
        );
        assert!(
            out.stderr
                .contains("warning: container \"app\" sets AWS_ACCESS_KEY_ID"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.ends_with("outcome: mutated\n"), "{}", out.stderr);
    }

    #[test]
    fn prints_the_mutated_pod_as_yaml_from_stdin() {
        let (_dir, _pod, sa) = files();
        let out = run(
            &["--pod", "-", "--service-account", &sa, "--output", "pod"],
            POD,
        )
        .unwrap();
        let mutated: Value = serde_yaml::from_str(&out.stdout).unwrap();
        let env = mutated["spec"]["containers"][0]["env"].as_array().unwrap();
        let names: Vec<_> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "AWS_ACCESS_KEY_ID",
                "AWS_ROLE_ARN",
                "AWS_WEB_IDENTITY_TOKEN_FILE"
            ]
        );
        assert_eq!(mutated["spec"]["volumes"][0]["name"], "aws-iam-token");
        assert_eq!(mutated["metadata"]["name"], "web");
    }

    #[test]
    fn prints_the_review_response() {
        let (_dir, pod, sa) = files();
        let out = run(
            &[
                "--pod",
                &pod,
                "--service-account",
                &sa,
                "--output",
                "review",
            ],
            "",
        )
        .unwrap();
        let review: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(review["kind"], "AdmissionReview");
        assert_eq!(review["response"]["uid"], OFFLINE_UID);
        assert_eq!(review["response"]["allowed"], true);
        assert_eq!(review["response"]["patchType"], "JSONPatch");
        assert_eq!(review["response"]["warnings"].as_array().unwrap().len(), 1);
        let patch = base64::engine::general_purpose::STANDARD
            .decode(review["response"]["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&patch)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn accepts_an_admission_review_and_echoes_its_uid() {
        let (_dir, _pod, sa) = files();
        let pod: Value = serde_yaml::from_str(POD).unwrap();
        let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "abc", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "operation": "CREATE", "object": pod}});
        let out = run(
            &["--pod", "-", "--service-account", &sa, "--output", "review"],
            &review.to_string(),
        )
        .unwrap();
        let response: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(response["response"]["uid"], "abc");
        assert_eq!(response["response"]["patchType"], "JSONPatch");
    }

    #[test]
    fn prints_the_whole_pod_of_an_admission_review() {
        // The server decodes only what the mutation reads; the pod printed is the review's whole object,
        // without managedFields and status.
        let (_dir, _pod, sa) = files();
        let mut pod: Value = serde_yaml::from_str(POD).unwrap();
        pod["metadata"]["managedFields"] = serde_json::json!([{"manager": "kubectl"}]);
        pod["metadata"]["uid"] = "u-1".into();
        pod["status"] = serde_json::json!({"phase": "Pending"});
        pod["spec"]["containers"][0]["image"] = "web:1".into();
        let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "abc", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "operation": "CREATE", "object": pod}});
        let out = run(
            &["--pod", "-", "--service-account", &sa, "--output", "pod"],
            &review.to_string(),
        )
        .unwrap();
        let mutated: Value = serde_yaml::from_str(&out.stdout).unwrap();
        assert_eq!(mutated["spec"]["containers"][0]["image"], "web:1");
        assert_eq!(mutated["metadata"]["uid"], "u-1");
        assert_eq!(mutated["spec"]["volumes"][0]["name"], "aws-iam-token");
        assert!(mutated["metadata"].get("managedFields").is_none());
        assert!(mutated.get("status").is_none());
    }

    #[test]
    fn json_input_and_no_service_account() {
        let pod: Value = serde_yaml::from_str(POD).unwrap();
        let out = run(&["--pod", "-"], &format!("{pod:#}").replace("  ", "\t")).unwrap();
        assert_eq!(out.stdout, "[]\n");
        assert_eq!(out.stderr, "outcome: not-annotated\n");
    }

    #[test]
    fn a_bad_file_is_a_clear_one_line_error() {
        let err = run(&["--pod", "/nonexistent/pod.yaml"], "")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--pod /nonexistent/pod.yaml: cannot read: "),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "spec: [unclosed").unwrap();
        let err = run(&["--pod", bad.to_str().unwrap()], "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid YAML document"), "{err}");
        assert!(!err.contains('\n'), "{err}");

        std::fs::write(&bad, "kind: Deployment\n").unwrap();
        let err = run(&["--pod", bad.to_str().unwrap()], "")
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("expected a Pod, found kind \"Deployment\""),
            "{err}"
        );

        std::fs::write(&bad, "- a\n- b\n").unwrap();
        let err = run(&["--pod", bad.to_str().unwrap()], "")
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("expected a Kubernetes object (a mapping), found a list"),
            "{err}"
        );

        std::fs::write(&bad, "").unwrap();
        let err = run(&["--pod", bad.to_str().unwrap()], "")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("the file is empty"), "{err}");
    }

    #[test]
    fn deep_or_huge_input_is_refused_before_parsing() {
        let n = 100_000;
        for (shape, text) in [
            (
                "YAML",
                format!("spec: {}1{}\n", "{a: ".repeat(n), "}".repeat(n)),
            ),
            ("YAML", format!("{}x\n", "- ".repeat(n))),
            ("JSON", format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))),
            ("JSON", format!("{}{}", "[".repeat(n), "]".repeat(n))),
        ] {
            let err = run(&["--pod", "-"], &text).unwrap_err().to_string();
            assert_eq!(
                err,
                "--pod -: nests deeper than 256 levels (line 1); Kubernetes objects nest a few tens of \
                 levels, so the document was refused before parsing",
                "{shape}"
            );
        }

        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge.yaml");
        let mut text = POD.to_owned();
        text.push_str(&format!("# {}\n", "x".repeat(MAX_INPUT_BYTES)));
        std::fs::write(&huge, &text).unwrap();
        let err = run(&["--pod", huge.to_str().unwrap()], "")
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(&format!(
                "huge.yaml: larger than {MAX_INPUT_BYTES} bytes (what irsa webhook serve accepts by default); \
                 refused before parsing"
            )),
            "{err}"
        );
        let err = run(&["--pod", "-"], &text).unwrap_err().to_string();
        assert!(
            err.starts_with("--pod -: larger than 4194304 bytes"),
            "{err}"
        );
        // Up to the cap, the same document is read.
        let fits = format!("{POD}# {}\n", "x".repeat(MAX_INPUT_BYTES - POD.len() - 3));
        assert_eq!(fits.len(), MAX_INPUT_BYTES);
        let out = run(&["--pod", "-"], &fits).unwrap();
        assert_eq!(out.stderr, "outcome: not-annotated\n");
    }

    #[test]
    fn unquoted_annotation_values_are_refused() {
        let (dir, pod, _sa) = files();
        let sa = dir.path().join("sa-number.yaml");
        std::fs::write(
            &sa,
            format!("{SA}    eks.amazonaws.com/token-expiration: 3600\n"),
        )
        .unwrap();
        let err = run(
            &["--pod", &pod, "--service-account", sa.to_str().unwrap()],
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("metadata.annotations.\"eks.amazonaws.com/token-expiration\" is a number"),
            "{err}"
        );
    }

    #[test]
    fn stdin_is_read_once() {
        let err = run(&["--pod", "-", "--service-account", "-"], POD)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--service-account -: standard input was already read by another flag"
        );
    }

    #[test]
    fn bad_flags_and_forbidden_namespace() {
        let (dir, pod, sa) = files();
        let err = run(&["--pod", &pod, "--role-arn-pattern", "("], "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--role-arn-pattern"), "{err}");

        let ns = dir.path().join("ns.yaml");
        std::fs::write(
            &ns,
            "kind: Namespace\nmetadata:\n  name: t\n  annotations:\n    iam.amazonaws.com/permitted: arn:aws:iam::123456789012:role/other\n",
        )
        .unwrap();
        let out = run(
            &[
                "--pod",
                &pod,
                "--service-account",
                &sa,
                "--namespace",
                ns.to_str().unwrap(),
            ],
            "",
        )
        .unwrap();
        assert_eq!(out.stdout, "[]\n");
        assert!(
            out.stderr.contains("is not permitted in this namespace"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.ends_with("outcome: forbidden\n"),
            "{}",
            out.stderr
        );
    }

    /// Issue #14's session names, several roles and coexistence, offline with the server's flags.
    #[test]
    fn shows_session_names_container_roles_and_mount_conflicts() {
        let (dir, _pod, sa) = files();
        let pod = dir.path().join("roles.yaml");
        std::fs::write(
            &pod,
            r#"
kind: Pod
metadata:
  generateName: web-7d9c5b6f4-
  namespace: shop
  annotations:
    irsa-rs.github.io/container-role-arns: '{"uploader": "arn:aws:iam::123456789012:role/uploader"}'
spec:
  serviceAccountName: web
  containers:
  - name: app
  - name: uploader
  - name: mesh
    volumeMounts:
    - {name: mesh-token, mountPath: /var/run/secrets/eks.amazonaws.com/serviceaccount}
"#,
        )
        .unwrap();
        let pod = pod.to_str().unwrap();
        let out = run(
            &[
                "--pod",
                pod,
                "--service-account",
                &sa,
                "--output",
                "pod",
                "--role-session-name",
                "{namespace}.{service_account}",
            ],
            "",
        )
        .unwrap();
        let mutated: Value = serde_yaml::from_str(&out.stdout).unwrap();
        let env = |i: usize, name: &str| {
            mutated["spec"]["containers"][i]["env"]
                .as_array()
                .and_then(|env| env.iter().find(|e| e["name"] == name))
                .map(|e| e["value"].as_str().unwrap().to_owned())
        };
        assert_eq!(
            env(0, "AWS_ROLE_ARN").as_deref(),
            Some("arn:aws:iam::123456789012:role/web")
        );
        assert_eq!(
            env(1, "AWS_ROLE_ARN").as_deref(),
            Some("arn:aws:iam::123456789012:role/uploader")
        );
        assert_eq!(env(1, "AWS_ROLE_SESSION_NAME").as_deref(), Some("shop.web"));
        assert_eq!(env(2, "AWS_ROLE_ARN"), None);
        assert!(
            out.stderr.contains(
                "warning: container \"mesh\" already mounts volume \"mesh-token\" at the token mount path"
            ),
            "{}",
            out.stderr
        );

        let err = run(&["--pod", pod, "--role-session-name", "{ns}"], "")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--role-session-name \"{ns}\" has an unknown placeholder {ns} (known: {namespace}, \
             {service_account}, {pod})"
        );
    }
}
