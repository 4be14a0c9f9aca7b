//! The Helm chart (`charts/irsa`) renders the same objects as the kustomize overlays (`manifests/overlays`)
//! for the same settings: `helm template` and `kubectl kustomize` are run, both outputs are normalised
//! (Helm's own labels and its `checksum/config` annotation dropped, the hash suffix of kustomize's generated
//! ConfigMaps removed), and compared object by object, field by field.
//!
//! Needs kubectl (`KUBECTL`, default `kubectl`) and the pinned helm (`IRSA_HELM`, default: where
//! `hack/install-peers.sh helm` put it). `hack/chart-check.sh` (`make chart-check`) runs it after `helm lint`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

/// The workspace root (the parent of this crate).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e is inside the workspace")
        .to_path_buf()
}

/// The pinned helm: `IRSA_HELM`, else the path `hack/install-peers.sh paths` prints.
fn helm() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("IRSA_HELM") {
        return Ok(PathBuf::from(path));
    }
    let script = workspace_root().join("hack/install-peers.sh");
    let listed = run(Command::new("bash").arg(&script).arg("paths"))?;
    let path = listed
        .lines()
        .find_map(|line| line.strip_prefix("IRSA_HELM="))
        .map(PathBuf::from)
        .with_context(|| format!("{} printed no IRSA_HELM", script.display()))?;
    ensure!(
        path.exists(),
        "helm not found at {}: run `hack/install-peers.sh helm` first",
        path.display()
    );
    Ok(path)
}

fn kubectl() -> PathBuf {
    std::env::var_os("KUBECTL").map_or_else(|| PathBuf::from("kubectl"), PathBuf::from)
}

/// Runs a command; its stdout, or an error with its stderr.
fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("starting {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).context("output is not UTF-8")
}

/// The documents of a multi-document YAML stream, empty ones skipped.
fn documents(yaml: &str) -> anyhow::Result<Vec<Value>> {
    use serde::Deserialize as _;
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let object = Value::deserialize(document).context("bad YAML")?;
        if !object.is_null() {
            objects.push(object);
        }
    }
    Ok(objects)
}

/// `helm template` of the chart in the namespace the overlays use, with `--set` values.
fn helm_template(values: &[&str]) -> anyhow::Result<String> {
    let mut command = Command::new(helm()?);
    command
        .args(["template", "irsa"])
        .arg(workspace_root().join("charts/irsa"))
        .args(["--namespace", "irsa-system"]);
    for value in values {
        command.args(["--set", value]);
    }
    run(&mut command)
}

fn kustomize(dir: &Path) -> anyhow::Result<String> {
    run(Command::new(kubectl()).arg("kustomize").arg(dir))
}

/// Labels that Helm's conventions add and kustomize's output does not carry.
const HELM_LABELS: [&str; 4] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
];

/// Drops Helm's labels and the pod template's `checksum/config` (the chart's way of rolling the pods when a
/// ConfigMap changes, where kustomize renames the ConfigMap).
fn normalise_helm(object: &mut Value) {
    strip_helm_metadata(&mut object["metadata"]);
    if let Some(template) = object.pointer_mut("/spec/template/metadata") {
        strip_helm_metadata(template);
    }
}

fn strip_helm_metadata(metadata: &mut Value) {
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    for (field, drop) in [
        ("labels", &HELM_LABELS[..]),
        ("annotations", &["checksum/config"]),
    ] {
        if let Some(map) = metadata.get_mut(field).and_then(Value::as_object_mut) {
            map.retain(|key, _| !drop.contains(&key.as_str()));
            if map.is_empty() {
                metadata.remove(field);
            }
        }
    }
}

/// `name` without the 10-character hash kustomize appends to generated names (hex digits with 0, 1, 3, a, e
/// spelled g, h, k, m, t), if it has one.
fn strip_generator_hash(name: &str) -> Option<&str> {
    let (base, hash) = name.rsplit_once('-')?;
    (hash.len() == 10 && hash.chars().all(|c| "2456789bcdfghkmt".contains(c))).then_some(base)
}

/// Removes the hash suffix of generated ConfigMaps, from their names and from every reference to them.
fn normalise_kustomize(objects: &mut [Value]) {
    let renamed: BTreeMap<String, String> = objects
        .iter()
        .filter(|object| object["kind"] == "ConfigMap")
        .filter_map(|object| {
            let name = object["metadata"]["name"].as_str()?;
            Some((name.to_owned(), strip_generator_hash(name)?.to_owned()))
        })
        .collect();
    fn rename(value: &mut Value, renamed: &BTreeMap<String, String>) {
        match value {
            Value::String(s) => {
                if let Some(new) = renamed.get(s.as_str()) {
                    *s = new.clone();
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| rename(item, renamed)),
            Value::Object(map) => map.values_mut().for_each(|item| rename(item, renamed)),
            _ => {}
        }
    }
    objects
        .iter_mut()
        .for_each(|object| rename(object, &renamed));
}

/// Objects by kind, namespace and name.
fn by_key(objects: Vec<Value>) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut map = BTreeMap::new();
    for object in objects {
        let metadata = &object["metadata"];
        let key = format!(
            "{} {}/{}",
            object["kind"].as_str().context("an object without kind")?,
            metadata["namespace"].as_str().unwrap_or("-"),
            metadata["name"]
                .as_str()
                .context("an object without name")?
        );
        ensure!(!map.contains_key(&key), "{key} twice");
        map.insert(key, object);
    }
    Ok(map)
}

/// The differences between two values, one line per field: `path: kustomize X, helm Y`.
fn diff(path: &str, kustomize: &Value, helm: &Value, out: &mut Vec<String>) {
    match (kustomize, helm) {
        (Value::Object(k), Value::Object(h)) => {
            for (key, k_value) in k {
                let path = format!("{path}.{key}");
                match h.get(key) {
                    Some(h_value) => diff(&path, k_value, h_value, out),
                    None => out.push(format!(
                        "{path}: kustomize {k_value}, helm has no such field"
                    )),
                }
            }
            for (key, h_value) in h {
                if !k.contains_key(key) {
                    out.push(format!(
                        "{path}.{key}: kustomize has no such field, helm {h_value}"
                    ));
                }
            }
        }
        (Value::Array(k), Value::Array(h)) => {
            for (i, (k_item, h_item)) in k.iter().zip(h).enumerate() {
                diff(&format!("{path}[{i}]"), k_item, h_item, out);
            }
            if k.len() != h.len() {
                out.push(format!(
                    "{path}: kustomize has {} items, helm {}",
                    k.len(),
                    h.len()
                ));
            }
        }
        _ if kustomize != helm => out.push(format!("{path}: kustomize {kustomize}, helm {helm}")),
        _ => {}
    }
}

/// Renders both, normalises, and fails listing every object and field that differs.
fn assert_same(kustomize_yaml: &str, helm_yaml: &str) -> anyhow::Result<()> {
    let mut kustomized = documents(kustomize_yaml).context("kubectl kustomize output")?;
    normalise_kustomize(&mut kustomized);
    let mut templated = documents(helm_yaml).context("helm template output")?;
    templated.iter_mut().for_each(normalise_helm);
    let (kustomized, templated) = (by_key(kustomized)?, by_key(templated)?);

    let mut differences = Vec::new();
    for (key, object) in &kustomized {
        match templated.get(key) {
            Some(other) => diff(key, object, other, &mut differences),
            None => differences.push(format!(
                "{key}: only kustomize renders it:\n{}",
                serde_yaml::to_string(object).unwrap_or_default()
            )),
        }
    }
    for (key, object) in &templated {
        if !kustomized.contains_key(key) {
            differences.push(format!(
                "{key}: only helm renders it:\n{}",
                serde_yaml::to_string(object).unwrap_or_default()
            ));
        }
    }
    ensure!(
        differences.is_empty(),
        "the chart and the overlay differ ({} differences):\n{}",
        differences.len(),
        differences.join("\n")
    );
    Ok(())
}

/// The values that make the chart render what an overlay of `manifests/overlays` does.
fn overlay_values(overlay: &str) -> Option<&'static [&'static str]> {
    Some(match overlay {
        "self-signed" => &["namespace.create=true"],
        "cert-manager" => &[
            "namespace.create=true",
            "webhook.certificates.mode=cert-manager",
        ],
        "issuer-from-apiserver" => &[
            "namespace.create=true",
            "webhook.enabled=false",
            "issuer.enabled=true",
            "issuer.ingress.enabled=true",
        ],
        "issuer-public-keys" => &[
            "namespace.create=true",
            "webhook.enabled=false",
            "issuer.enabled=true",
            "issuer.keys.mode=public-keys",
            "issuer.ingress.enabled=true",
        ],
        "all-in-one" => &[
            "namespace.create=true",
            "issuer.enabled=true",
            "issuer.ingress.enabled=true",
        ],
        _ => return None,
    })
}

fn check_overlay(overlay: &str) -> anyhow::Result<()> {
    let values = overlay_values(overlay).context("no chart values for this overlay")?;
    let dir = workspace_root().join("manifests/overlays").join(overlay);
    assert_same(&kustomize(&dir)?, &helm_template(values)?).with_context(|| {
        format!(
            "overlay {overlay} vs helm template --set {}",
            values.join(",")
        )
    })
}

#[test]
fn chart_renders_the_self_signed_overlay() -> anyhow::Result<()> {
    check_overlay("self-signed")
}

#[test]
fn chart_renders_the_cert_manager_overlay() -> anyhow::Result<()> {
    check_overlay("cert-manager")
}

#[test]
fn chart_renders_the_issuer_from_apiserver_overlay() -> anyhow::Result<()> {
    check_overlay("issuer-from-apiserver")
}

#[test]
fn chart_renders_the_issuer_public_keys_overlay() -> anyhow::Result<()> {
    check_overlay("issuer-public-keys")
}

#[test]
fn chart_renders_the_all_in_one_overlay() -> anyhow::Result<()> {
    check_overlay("all-in-one")
}

/// A new overlay needs its chart values here, so that it is compared too.
#[test]
fn every_overlay_has_chart_values() -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(workspace_root().join("manifests/overlays"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if overlay_values(&name).is_none() {
            missing.push(name);
        }
    }
    ensure!(
        missing.is_empty(),
        "overlays without chart values in this test: {missing:?}"
    );
    Ok(())
}

/// Settings away from the defaults, made the kustomize way (as in manifests/README.md) and the Helm way: the
/// image, replicas, injection flags and issuer settings must land in the same fields.
#[test]
fn chart_values_match_a_customised_kustomization() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // kustomize takes resources and components by relative paths only.
    let manifests = relative_path(dir.path(), &workspace_root().join("manifests"))?;
    let kustomization = format!(
        r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {manifests}/base/namespace
  - {manifests}/base/webhook
  - {manifests}/base/issuer
components:
  - {manifests}/components/cert-manager
  - {manifests}/components/issuer-public-keys
  - {manifests}/components/issuer-ingress
images:
  - name: ghcr.io/irsa-rs/irsa
    newName: registry.example.com/irsa
    newTag: 0.2.0
replicas:
  - name: irsa-webhook
    count: 3
  - name: irsa-issuer
    count: 4
configMapGenerator:
  - name: irsa-issuer
    namespace: irsa-system
    behavior: merge
    literals: [IRSA_ISSUER_URL=https://oidc.mycluster.example.org]
  - name: irsa-webhook
    namespace: irsa-system
    behavior: merge
    literals:
      - IRSA_AWS_DEFAULT_REGION=eu-west-1
      - IRSA_STS_REGIONAL_ENDPOINT=true
      - IRSA_TOKEN_EXPIRATION=3600
      - IRSA_ON_LOOKUP_FAILURE=deny
      - IRSA_LOOKUP_TIMEOUT=2s
patches:
  - target: {{kind: Ingress, name: irsa-issuer}}
    patch: |-
      - {{op: replace, path: /spec/rules/0/host, value: oidc.mycluster.example.org}}
      - {{op: replace, path: /spec/tls/0/hosts/0, value: oidc.mycluster.example.org}}
"#,
        manifests = manifests.display()
    );
    std::fs::write(dir.path().join("kustomization.yaml"), kustomization)?;
    let helm = helm_template(&[
        "namespace.create=true",
        "image.repository=registry.example.com/irsa",
        "image.tag=0.2.0",
        "webhook.replicas=3",
        "webhook.certificates.mode=cert-manager",
        "webhook.injection.awsDefaultRegion=eu-west-1",
        "webhook.injection.stsRegionalEndpoint=true",
        "webhook.injection.tokenExpiration=3600",
        "webhook.injection.onLookupFailure=deny",
        "webhook.extraConfig.IRSA_LOOKUP_TIMEOUT=2s",
        "issuer.enabled=true",
        "issuer.replicas=4",
        "issuer.url=https://oidc.mycluster.example.org",
        "issuer.keys.mode=public-keys",
        "issuer.ingress.enabled=true",
    ])?;
    assert_same(&kustomize(dir.path())?, &helm)
}

/// `to` as a path relative to the directory `from`.
fn relative_path(from: &Path, to: &Path) -> anyhow::Result<PathBuf> {
    let (from, to) = (from.canonicalize()?, to.canonicalize()?);
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut path: PathBuf = from.components().skip(common).map(|_| "..").collect();
    path.extend(to.components().skip(common));
    Ok(path)
}

/// The chart refuses settings it cannot honour, naming the value, rather than rendering something else.
#[test]
fn chart_refuses_unknown_modes_and_flags() -> anyhow::Result<()> {
    for (value, message) in [
        (
            "webhook.certificates.mode=vault",
            "webhook.certificates.mode",
        ),
        ("issuer.keys.mode=files", "issuer.keys.mode"),
        (
            "webhook.injection.tokenAudiences=x",
            "webhook.injection.tokenAudiences",
        ),
        ("webhook.certificates.mode=secret", "caBundle"),
    ] {
        let values = [value, "issuer.enabled=true"];
        let error = match helm_template(&values) {
            Ok(_) => bail!("helm template --set {value} rendered"),
            Err(error) => format!("{error:#}"),
        };
        ensure!(
            error.contains(message),
            "helm template --set {value} failed without naming {message}: {error}"
        );
    }
    Ok(())
}

/// The issuer's Ingress follows the issuer URL: its host, and its path as a prefix of both documents.
#[test]
fn ingress_follows_the_issuer_url() -> anyhow::Result<()> {
    let rendered = documents(&helm_template(&[
        "webhook.enabled=false",
        "issuer.enabled=true",
        "issuer.ingress.enabled=true",
        "issuer.url=https://oidc.example.org:443/cluster-a/",
    ])?)?;
    let ingress = rendered
        .iter()
        .find(|object| object["kind"] == "Ingress")
        .context("no Ingress rendered")?;
    let rule = &ingress["spec"]["rules"][0];
    ensure!(rule["host"] == "oidc.example.org", "host {}", rule["host"]);
    let paths: Vec<&str> = rule["http"]["paths"]
        .as_array()
        .context("no paths")?
        .iter()
        .filter_map(|path| path["path"].as_str())
        .collect();
    ensure!(
        paths
            == [
                "/cluster-a/.well-known/openid-configuration",
                "/cluster-a/openid/v1/jwks"
            ],
        "paths {paths:?}"
    );
    Ok(())
}

/// The chart is released with the workspace: its version and appVersion (the default image tag) are the
/// crates' version.
#[test]
fn chart_version_is_the_workspace_version() -> anyhow::Result<()> {
    let chart: Value = serde_yaml::from_str(&std::fs::read_to_string(
        workspace_root().join("charts/irsa/Chart.yaml"),
    )?)?;
    let version = env!("CARGO_PKG_VERSION");
    ensure!(
        chart["version"] == version && chart["appVersion"] == version,
        "charts/irsa/Chart.yaml: version {} and appVersion {}, the workspace is {version}",
        chart["version"],
        chart["appVersion"]
    );
    Ok(())
}
