//! Workloads on the node: the sdk-probe pod (an unmodified aws-sdk-go-v2 program), waiting for pods, their
//! logs, and Deployment rollouts. Shared by the node suite and `demo --node`.

use std::time::Duration;

use crate::cluster::{BUCKET, Cluster, REGION};
use crate::node::PROBE_IMAGE;
use crate::scenario;
use anyhow::{Context as _, bail};
use irsa_testing::wait::{Check, Wait};
use serde_json::{Value, json};

/// A namespace with ServiceAccount `app`, annotated with MinIO's role and `extra` annotations.
pub async fn namespace_with_app(
    cluster: &Cluster,
    prefix: &str,
    extra: Value,
) -> anyhow::Result<String> {
    let ns = scenario::namespace(cluster, prefix, json!({})).await?;
    let mut annotations = json!({"eks.amazonaws.com/role-arn": cluster.minio_role_arn});
    if let (Some(all), Some(more)) = (annotations.as_object_mut(), extra.as_object()) {
        all.extend(more.clone());
    }
    scenario::service_account(cluster, &ns, "app", annotations).await?;
    Ok(ns)
}

/// A pod of ServiceAccount `app` running sdk-probe with `args`: only the region and `s3_endpoint` are its own
/// configuration, as a workload pointed at MinIO would have; everything about credentials comes from the
/// webhook. `run_as`: a `runAsUser` (no fsGroup), or the image's root.
pub fn probe_pod(name: &str, args: &[&str], run_as: Option<u32>, s3_endpoint: &str) -> Value {
    let mut pod = json!({
        "metadata": {"name": name, "labels": {"app": "sdk-probe"}},
        "spec": {
            "serviceAccountName": "app",
            "restartPolicy": "Never",
            // No cluster DNS here, and the program needs none.
            "dnsPolicy": "Default",
            "enableServiceLinks": false,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "app",
                "image": PROBE_IMAGE.trim_start_matches("docker.io/"),
                "imagePullPolicy": "Never",
                "args": args,
                "env": [
                    {"name": "AWS_REGION", "value": REGION},
                    {"name": "AWS_ENDPOINT_URL_S3", "value": s3_endpoint},
                ],
            }],
        },
    });
    if let Some(uid) = run_as {
        pod["spec"]["securityContext"] =
            json!({"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": true});
    }
    pod
}

/// [`probe_pod`] with the cluster's MinIO as its S3 endpoint, listing the e2e bucket once.
pub fn list_bucket_pod(cluster: &Cluster, name: &str, run_as: Option<u32>) -> Value {
    probe_pod(name, &[BUCKET], run_as, &cluster.minio_url)
}

/// Waits until pod `name` has finished; returns its phase (`Succeeded` or `Failed`).
pub async fn wait_finished(cluster: &Cluster, ns: &str, name: &str) -> anyhow::Result<String> {
    Wait::up_to(Duration::from_secs(90))
        .every(Duration::from_millis(500))
        .try_until(&format!("pod {ns}/{name} finishes"), || async {
            let phase = cluster.kubectl(&[
                "get",
                "pod",
                name,
                "-n",
                ns,
                "-o",
                "jsonpath={.status.phase}",
            ])?;
            Ok::<_, anyhow::Error>(match phase.as_str() {
                "Succeeded" | "Failed" => Check::Ready(phase),
                _ => Check::NotYet(format!("phase {phase:?}")),
            })
        })
        .await
}

/// Waits until pod `name` is Running.
pub async fn wait_running(cluster: &Cluster, ns: &str, name: &str) -> anyhow::Result<()> {
    Wait::up_to(Duration::from_secs(90))
        .every(Duration::from_millis(500))
        .try_until(&format!("pod {ns}/{name} runs"), || async {
            let phase = cluster.kubectl(&[
                "get",
                "pod",
                name,
                "-n",
                ns,
                "-o",
                "jsonpath={.status.phase}",
            ])?;
            if phase == "Failed" || phase == "Succeeded" {
                bail!(
                    "pod {ns}/{name} ended ({phase}): {}",
                    logs(cluster, ns, name).unwrap_or_default()
                );
            }
            Ok(Check::ready_if(phase == "Running", || {
                format!("phase {phase:?}")
            }))
        })
        .await
}

/// The pod's log, through the apiserver and the kubelet (as `kubectl logs` gets it).
pub fn logs(cluster: &Cluster, ns: &str, name: &str) -> anyhow::Result<String> {
    cluster.kubectl(&["logs", name, "-n", ns])
}

/// Runs pod `pod` to completion and returns its log, failing with the log if the program failed.
pub async fn run_to_completion(cluster: &Cluster, ns: &str, pod: Value) -> anyhow::Result<String> {
    let name = pod["metadata"]["name"]
        .as_str()
        .context("a pod name")?
        .to_string();
    scenario::create_pod(cluster, ns, pod).await?;
    let phase = wait_finished(cluster, ns, &name).await?;
    let log = logs(cluster, ns, &name)?;
    if phase != "Succeeded" {
        bail!("pod {ns}/{name} {phase}; its log:\n{log}");
    }
    Ok(log)
}

/// The irsa Deployments and their namespace, where an install put them.
pub const IRSA_NAMESPACE: &str = "irsa-system";

/// Waits until Deployment `name` has rolled out (all replicas updated and available).
pub fn rollout_status(cluster: &Cluster, ns: &str, name: &str) -> anyhow::Result<()> {
    cluster
        .kubectl(&[
            "rollout",
            "status",
            &format!("deployment/{name}"),
            "-n",
            ns,
            "--timeout=180s",
        ])
        .map(drop)
        .with_context(|| format!("deployment {ns}/{name} did not roll out"))
}
