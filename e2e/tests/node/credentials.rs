//! An unmodified AWS SDK program in a pod gets credentials from the token the kubelet wrote.

use std::sync::Arc;

use anyhow::ensure;
use irsa_e2e::cluster::{BUCKET, Cluster};
use irsa_e2e::scenario;
use serde_json::{Value, json};

use irsa_e2e::node::pods::{
    self as support, list_bucket_pod, namespace_with_app, run_to_completion,
};

/// The `ok ...` line sdk-probe prints when it listed the bucket, or an error with its whole log.
fn listed(log: &str) -> anyhow::Result<&str> {
    log.lines()
        .find(|l| l.starts_with(&format!("ok bucket={BUCKET} ")))
        .ok_or_else(|| anyhow::anyhow!("sdk-probe did not list {BUCKET}; its log:\n{log}"))
}

fn env_names(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str().map(String::from))
        .collect()
}

/// As root (the image's user): the pod is mutated (role, token file, STS endpoint injected; the pod itself
/// names only its region and S3 endpoint), and aws-sdk-go-v2's default chain lists the bucket with
/// web-identity credentials.
pub async fn sdk_program_gets_credentials_from_the_kubelets_token(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = namespace_with_app(&cluster, "sdk", json!({})).await?;
    let log = run_to_completion(&cluster, &ns, list_bucket_pod(&cluster, "probe", None)).await?;
    let line = listed(&log)?;
    ensure!(
        line.contains("source=WebIdentityCredentials"),
        "credentials not from web identity: {line}"
    );
    let pod: Value =
        serde_json::from_str(&cluster.kubectl(&["get", "pod", "probe", "-n", &ns, "-o", "json"])?)?;
    let names = env_names(&pod);
    for injected in [
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ENDPOINT_URL_STS",
    ] {
        ensure!(
            names.iter().any(|n| n == injected),
            "{injected} not injected: {names:?}"
        );
    }
    ensure!(scenario::token_volume(&pod).is_some(), "no token volume");
    eprintln!("  root: {line}");
    Ok(())
}

/// As uid 1000 with no fsGroup: the kubelet writes the token file readable by the container's user (0600,
/// owned by it), and the program lists the bucket.
pub async fn sdk_program_as_non_root_reads_the_token(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace_with_app(&cluster, "nonroot", json!({})).await?;
    let log = run_to_completion(
        &cluster,
        &ns,
        list_bucket_pod(&cluster, "probe", Some(1000)),
    )
    .await?;
    let line = listed(&log)?;
    ensure!(
        line.contains("source=WebIdentityCredentials"),
        "credentials not from web identity: {line}"
    );
    eprintln!("  uid 1000: {line}");
    Ok(())
}

/// The egress guard is in place: a pod's connection to a Service ClusterIP is refused at once rather than
/// sent off the machine (sdk-probe pointed at the `kubernetes` Service's address fails fast).
pub async fn guard_rejects_traffic_to_the_service_cidr(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = namespace_with_app(&cluster, "guard", json!({})).await?;
    let cluster_ip = cluster.kubectl(&[
        "get",
        "service",
        "kubernetes",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ])?;
    let pod = support::probe_pod(
        "probe",
        &[BUCKET],
        None,
        &format!("http://{cluster_ip}:443"),
    );
    scenario::create_pod(&cluster, &ns, pod).await?;
    let started = std::time::Instant::now();
    let phase = support::wait_finished(&cluster, &ns, "probe").await?;
    let log = support::logs(&cluster, &ns, "probe")?;
    ensure!(phase == "Failed", "a pod reached {cluster_ip}: {log}");
    ensure!(
        log.contains("connection refused"),
        "not refused by the guard: {log}"
    );
    eprintln!(
        "  {cluster_ip}:443 refused; pod done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
