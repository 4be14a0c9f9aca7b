//! Building blocks of the e2e tests and the demo: namespaces, service accounts and pods created through the
//! real apiserver, and the kubelet's part (minting the projected token) done by hand.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, ensure};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

use crate::cluster::{Cluster, REGION};
use irsa_core::names::{IRSA_ANNOTATION_PREFIX, irsa_annotation};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh namespace name for this run.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Creates a namespace with a fresh name starting with `prefix`; returns the name.
pub async fn namespace(
    cluster: &Cluster,
    prefix: &str,
    annotations: Value,
) -> anyhow::Result<String> {
    let name = unique(prefix);
    let api: Api<Namespace> = Api::all(cluster.client().await?);
    let ns =
        serde_json::from_value(json!({"metadata": {"name": name, "annotations": annotations}}))?;
    api.create(&PostParams::default(), &ns)
        .await
        .context("creating the namespace")?;
    Ok(name)
}

/// Creates a ServiceAccount annotated with `eks.amazonaws.com/role-arn: role_arn`.
pub async fn service_account_with_role(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    role_arn: &str,
) -> anyhow::Result<()> {
    service_account(
        cluster,
        ns,
        name,
        json!({ "eks.amazonaws.com/role-arn": role_arn }),
    )
    .await
}

/// Creates a ServiceAccount with `annotations`.
pub async fn service_account(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    annotations: Value,
) -> anyhow::Result<()> {
    let api: Api<ServiceAccount> = Api::namespaced(cluster.client().await?, ns);
    let sa =
        serde_json::from_value(json!({"metadata": {"name": name, "annotations": annotations}}))?;
    api.create(&PostParams::default(), &sa)
        .await
        .context("creating the service account")?;
    Ok(())
}

/// Creates a pod through the real admission chain and returns it as stored.
pub async fn create_pod(cluster: &Cluster, ns: &str, pod: Value) -> anyhow::Result<Value> {
    let api: Api<Pod> = Api::namespaced(cluster.client().await?, ns);
    let pod: Pod = serde_json::from_value(pod)?;
    let created = api
        .create(&PostParams::default(), &pod)
        .await
        .context("creating the pod")?;
    Ok(serde_json::to_value(created)?)
}

/// A one-container pod manifest running as `account`.
pub fn simple_pod(name: &str, account: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"serviceAccountName": account, "containers": [{"name": "app", "image": "registry.example/app:1"}]}
    })
}

/// The literal value of env var `name` in a container.
pub fn env_of<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

/// The container (or init container, by `list`) called `name`.
pub fn container<'a>(pod: &'a Value, list: &str, name: &str) -> anyhow::Result<&'a Value> {
    pod["spec"][list]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .with_context(|| format!("no {list} entry named {name}"))
}

/// The pod's `aws-iam-token` volume.
pub fn token_volume(pod: &Value) -> Option<&Value> {
    pod["spec"]["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == "aws-iam-token")
}

/// A fresh namespace with pod `app` of service account `app`, which has MinIO's role: the pod tokens are
/// minted for (`cluster.mint_token(&ns, "app", "app", ...)`) when a test talks to STS itself. Returns the
/// namespace.
pub async fn app_with_minio_role(cluster: &Cluster, prefix: &str) -> anyhow::Result<String> {
    let ns = namespace(cluster, prefix, json!({})).await?;
    service_account_with_role(cluster, &ns, "app", &cluster.minio_role_arn).await?;
    create_pod(cluster, &ns, simple_pod("app", "app")).await?;
    Ok(ns)
}

/// Whether the webhook left `pod` alone: no role in its `app` container, no token volume.
pub fn left_alone(pod: &Value) -> anyhow::Result<bool> {
    let app = container(pod, "containers", "app")?;
    Ok(env_of(app, "AWS_ROLE_ARN").is_none() && token_volume(pod).is_none())
}

/// A pod the webhook mutated, with its token in place as the kubelet would have written it.
pub struct PodWithToken {
    /// Its namespace.
    pub namespace: String,
    /// The pod as stored.
    pub pod: Value,
    /// The `AWS_*` env injected into its `app` container, `AWS_WEB_IDENTITY_TOKEN_FILE` moved under `root`.
    pub env: Vec<(String, String)>,
    /// Stands for the container's filesystem root.
    pub root: tempfile::TempDir,
}

/// A mutated pod for an SA with MinIO's role, and the token the kubelet would have written for it, placed
/// where `AWS_WEB_IDENTITY_TOKEN_FILE` points under a temp root.
pub async fn pod_with_token(cluster: &Cluster, prefix: &str) -> anyhow::Result<PodWithToken> {
    let ns = namespace(cluster, prefix, json!({})).await?;
    // The STS endpoint is injected (issue #14): MinIO's, through irsa's per-ServiceAccount annotation.
    service_account(
        cluster,
        &ns,
        "s3-reader",
        json!({
            "eks.amazonaws.com/role-arn": cluster.minio_role_arn,
            format!("{IRSA_ANNOTATION_PREFIX}/{}", irsa_annotation::STS_ENDPOINT_URL): cluster.minio_url,
        }),
    )
    .await?;
    let pod = create_pod(cluster, &ns, simple_pod("reader", "s3-reader")).await?;
    let app = container(&pod, "containers", "app")?;
    let env: Vec<(String, String)> = app["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .filter(|(name, _)| name.starts_with("AWS_"))
        .collect();
    ensure!(
        env.iter().any(|(k, _)| k == "AWS_ROLE_ARN"),
        "pod not mutated: {app}"
    );
    let source = &token_volume(&pod).context("no token volume")?["projected"]["sources"][0]["serviceAccountToken"];
    let token = cluster.mint_token(
        &ns,
        "s3-reader",
        "reader",
        source["audience"].as_str().context("audience")?,
        source["expirationSeconds"]
            .as_i64()
            .context("expirationSeconds")?,
    )?;
    let root = tempfile::tempdir()?;
    let file = env
        .iter()
        .find(|(k, _)| k == "AWS_WEB_IDENTITY_TOKEN_FILE")
        .context("token file env")?
        .1
        .clone();
    let path = root.path().join(file.trim_start_matches('/'));
    std::fs::create_dir_all(path.parent().expect("a parent"))?;
    std::fs::write(&path, token)?;
    let env = env
        .into_iter()
        .map(|(k, v)| {
            if k == "AWS_WEB_IDENTITY_TOKEN_FILE" {
                (k, path.display().to_string())
            } else {
                (k, v)
            }
        })
        .collect();
    Ok(PodWithToken {
        namespace: ns,
        pod,
        env,
        root,
    })
}

/// Runs a program of the venv with ONLY the injected env, the S3 endpoint and a region: no keys, no config,
/// no STS endpoint (the webhook injects `AWS_ENDPOINT_URL_STS`).
pub fn run_unmodified(
    cluster: &Cluster,
    program: &str,
    args: &[&str],
    env: &[(String, String)],
    home: &Path,
) -> anyhow::Result<std::process::Output> {
    run_unmodified_at(cluster, &cluster.peers.venv_bin(program), args, env, home)
}

/// As [`run_unmodified`], for a program at `program` (sdk-probe, say).
pub fn run_unmodified_at(
    cluster: &Cluster,
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    home: &Path,
) -> anyhow::Result<std::process::Output> {
    Ok(std::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("absent-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.join("absent-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // The workload's own S3 endpoint, as a MinIO user sets it; STS's comes from the injected env only.
        .env("AWS_ENDPOINT_URL_S3", &cluster.minio_url)
        .env("AWS_REGION", REGION)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()?)
}

/// `aws sts assume-role-with-web-identity` at MinIO with `token`, and nothing else configured.
pub fn assume_role_at_minio(
    cluster: &Cluster,
    token: &str,
) -> anyhow::Result<std::process::Output> {
    let home = tempfile::tempdir()?;
    let args = [
        "sts",
        "assume-role-with-web-identity",
        "--role-arn",
        &cluster.minio_role_arn,
        "--role-session-name",
        "e2e",
        "--web-identity-token",
        token,
    ];
    let sts = [(
        "AWS_ENDPOINT_URL_STS".to_string(),
        cluster.minio_url.clone(),
    )];
    run_unmodified(cluster, "aws", &args, &sts, home.path())
}

/// The document the issuer serves at `path` (`/.well-known/openid-configuration`, `/openid/v1/jwks`), as JSON.
pub async fn issuer_document(cluster: &Cluster, path: &str) -> anyhow::Result<Value> {
    let url = format!("{}{path}", cluster.issuer_url);
    let response = cluster.http()?.get(&url).send().await?;
    response
        .json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))
}

/// The key IDs of the JWKS at `url`, fetched with `token` as a bearer token when given (the apiserver's needs one).
pub async fn jwks_kids(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> anyhow::Result<BTreeSet<String>> {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let jwks: Value = request.send().await?.error_for_status()?.json().await?;
    Ok(jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_string))
        .collect())
}
