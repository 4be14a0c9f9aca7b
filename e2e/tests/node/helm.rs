//! The chart, installed with `helm install` into its own namespace once the kustomize install is removed,
//! passes the same smoke test: an unmodified SDK program in a pod lists the bucket.

use std::sync::Arc;

use anyhow::{Context as _, bail, ensure};
use irsa_e2e::cluster::Cluster;
use irsa_e2e::peers::{Listed, workspace_root};
use serde_json::json;

use irsa_e2e::node::install::wait_mutating;
use irsa_e2e::node::pods::{
    list_bucket_pod, namespace_with_app, rollout_status, run_to_completion,
};

const RELEASE_NAMESPACE: &str = "irsa-helm";

fn helm(cluster: &Cluster, args: &[&str]) -> anyhow::Result<String> {
    let helm = Listed::read()?.path("IRSA_HELM")?;
    let output = std::process::Command::new(&helm)
        .arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
        .args(args)
        .output()
        .with_context(|| format!("running {}", helm.display()))?;
    if !output.status.success() {
        bail!(
            "helm {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Removes the kustomize install, `helm install`s the chart with the test values, and runs the SDK program.
pub async fn helm_install_passes_the_same_smoke_test(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let root = workspace_root();
    let overlay = root.join("e2e/manifests/node");
    cluster.kubectl(&[
        "delete",
        "-k",
        &overlay.display().to_string(),
        "--wait=true",
        "--timeout=120s",
    ])?;
    let values = overlay.join("helm-values.yaml");
    let installed = helm(
        &cluster,
        &[
            "install",
            "irsa",
            &root.join("charts/irsa").display().to_string(),
            "--namespace",
            RELEASE_NAMESPACE,
            "--create-namespace",
            "--values",
            &values.display().to_string(),
            "--wait",
            "--timeout=180s",
        ],
    )?;
    ensure!(
        installed.contains("STATUS: deployed"),
        "helm install: {installed}"
    );
    let deployments =
        cluster.kubectl(&["get", "deployments", "-n", RELEASE_NAMESPACE, "-o", "name"])?;
    for deployment in deployments.lines() {
        rollout_status(
            &cluster,
            RELEASE_NAMESPACE,
            deployment.trim_start_matches("deployment.apps/"),
        )?;
    }
    wait_mutating(&cluster).await?;
    let ns = namespace_with_app(&cluster, "helm", json!({})).await?;
    let log = run_to_completion(
        &cluster,
        &ns,
        list_bucket_pod(&cluster, "probe", Some(1000)),
    )
    .await?;
    ensure!(
        log.contains("source=WebIdentityCredentials"),
        "not web identity: {log}"
    );
    eprintln!(
        "  helm install: {} ; {}",
        deployments.split_whitespace().collect::<Vec<_>>().join(" "),
        log.trim()
    );
    Ok(())
}
