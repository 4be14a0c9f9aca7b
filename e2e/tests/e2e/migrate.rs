//! From kiam and kube2iam to web identity: a second webhook run with `--legacy-role-annotations` (registered
//! for this test's namespaces only) injects pods by their `iam.amazonaws.com/role`, within what their
//! namespace permits; `irsa migrate` plans the trust statements from the real apiserver, `--apply` writes
//! them into moto's roles (twice: the second run changes nothing), and `--prune-node-trust` then removes the
//! node role's trust. A pod with MinIO's role gets credentials from MinIO with only what was injected.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use base64::Engine as _;
use irsa_e2e::cluster::{BUCKET, Cluster, ROLE_ARN_PATTERN};
use irsa_e2e::process::free_port;
use irsa_e2e::scenario::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

/// moto's account.
const ACCOUNT: &str = "123456789012";
const BASE: &str = "arn:aws:iam::123456789012:role/";

/// Runs `irsa` with AWS pointed at moto; returns (success, stdout, stderr).
fn irsa(cluster: &Cluster, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let output = std::process::Command::new(&cluster.peers.irsa)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &cluster.dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &cluster.moto_url)
        .output()?;
    Ok((
        output.status.success(),
        String::from_utf8(output.stdout)?,
        String::from_utf8(output.stderr)?,
    ))
}

fn irsa_ok(cluster: &Cluster, args: &[&str]) -> anyhow::Result<String> {
    let (ok, stdout, stderr) = irsa(cluster, args)?;
    ensure!(ok, "irsa {} failed: {stderr}{stdout}", args.join(" "));
    Ok(stdout)
}

/// The AWS CLI against moto.
fn aws(cluster: &Cluster, args: &[&str]) -> anyhow::Result<Value> {
    let output = std::process::Command::new(cluster.peers.venv_bin("aws"))
        .args(args)
        .args(["--output", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &cluster.dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &cluster.moto_url)
        .output()?;
    ensure!(
        output.status.success(),
        "aws {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout).unwrap_or(Value::Null))
}

/// A role as kube2iam and kiam needed it: trusting the node role, which their agents ran as.
fn node_trusted_role(cluster: &Cluster, name: &str, node_role: &str) -> anyhow::Result<()> {
    let policy = json!({"Version": "2012-10-17", "Statement": [node_statement(node_role)]});
    aws(
        cluster,
        &[
            "iam",
            "create-role",
            "--role-name",
            name,
            "--assume-role-policy-document",
            &policy.to_string(),
        ],
    )?;
    Ok(())
}

fn node_statement(node_role: &str) -> Value {
    json!({"Effect": "Allow", "Principal": {"AWS": node_role}, "Action": "sts:AssumeRole"})
}

/// The role's trust statements as moto holds them.
fn trust_statements(cluster: &Cluster, name: &str) -> anyhow::Result<Vec<Value>> {
    let role = aws(cluster, &["iam", "get-role", "--role-name", name])?;
    let doc = &role["Role"]["AssumeRolePolicyDocument"];
    Ok(match &doc["Statement"] {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    })
}

/// Whether `statement` is exactly the web-identity trust of `ns`/`sa` by this cluster's provider.
fn is_web_identity_of(cluster: &Cluster, statement: &Value, ns: &str, sa: &str) -> bool {
    let host = cluster.issuer_url.trim_start_matches("https://");
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host}");
    let condition = &statement["Condition"]["StringEquals"];
    statement["Effect"] == "Allow"
        && statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        && statement["Principal"]["Federated"] == provider.as_str()
        && condition[format!("{host}:sub")] == format!("system:serviceaccount:{ns}:{sa}").as_str()
        && condition[format!("{host}:aud")] == "sts.amazonaws.com"
}

/// A namespace with `label` (which the legacy webhook selects) and `annotations`.
async fn labelled_namespace(
    cluster: &Cluster,
    prefix: &str,
    label: &str,
    annotations: Value,
) -> anyhow::Result<String> {
    let name = unique(prefix);
    let api: Api<Namespace> = Api::all(cluster.client().await?);
    let ns = serde_json::from_value(json!({"metadata": {
        "name": name, "labels": {"irsa-e2e-legacy": label}, "annotations": annotations}}))?;
    api.create(&PostParams::default(), &ns).await?;
    Ok(name)
}

/// A pod template of `account` that picks `role` the kiam/kube2iam way.
fn legacy_template(account: &str, role: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "legacy"}, "annotations": {"iam.amazonaws.com/role": role}},
        "spec": {"serviceAccountName": account,
                 "containers": [{"name": "app", "image": "registry.example/app:1"}]}
    })
}

/// A Deployment (which no controller turns into pods here: `migrate` reads its template) and one bare pod
/// of the same template, created through the admission chain.
async fn deployment_and_pod(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    account: &str,
    role: &str,
) -> anyhow::Result<Value> {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await?, ns);
    let deployment = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "legacy"}}, "template": legacy_template(account, role)}
    }))?;
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .context("creating the Deployment")?;
    let mut pod = legacy_template(account, role);
    pod["metadata"]["name"] = format!("{name}-1").into();
    create_pod(cluster, ns, pod).await
}

/// Starts a webhook with the legacy flags and registers it for namespaces labelled `label`; returns the
/// configuration's name.
async fn start_legacy_webhook(cluster: &Cluster, label: &str) -> anyhow::Result<String> {
    let (port, admin) = (free_port(), free_port());
    let dir = &cluster.dir;
    cluster.start_irsa(
        "webhook-legacy",
        &[
            "webhook".into(),
            "serve".into(),
            format!("--kubeconfig={}", cluster.kubeconfig.display()),
            format!("--tls-cert-file={}", dir.join("serving.crt").display()),
            format!("--tls-key-file={}", dir.join("serving.key").display()),
            format!("--listen=127.0.0.1:{port}"),
            format!("--admin-listen=127.0.0.1:{admin}"),
            format!("--role-arn-pattern={ROLE_ARN_PATTERN}"),
            "--legacy-role-annotations".into(),
            // STS is MinIO: its endpoint comes from the injection, like every other setting of the pod.
            format!("--sts-endpoint-url={}", cluster.minio_url),
            format!("--base-role-arn={BASE}"),
            "--log-level=info,irsa_webhook=debug".into(),
        ],
    )?;
    cluster
        .wait_ready(
            "webhook-legacy",
            &format!("http://127.0.0.1:{admin}/readyz"),
        )
        .await?;
    let name = format!("irsa-e2e-legacy-{label}");
    let configuration = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "legacy.irsa.dev",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {
                "url": format!("https://127.0.0.1:{port}/mutate"),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(cluster.ca.pem()),
            },
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            "namespaceSelector": {"matchLabels": {"irsa-e2e-legacy": label}},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "timeoutSeconds": 3,
            "reinvocationPolicy": "IfNeeded",
        }],
    });
    cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&configuration.to_string()))?;
    Ok(name)
}

/// Creates probe pods until the apiserver calls the new webhook (it picks configurations up a moment after
/// they are written); each probe is deleted, so that the plan does not meet it.
async fn wait_until_called(
    cluster: &Cluster,
    ns: &str,
    account: &str,
    role: &str,
) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await?, ns);
    for attempt in 0..40 {
        let name = format!("probe-{attempt}");
        let mut pod = legacy_template(account, role);
        pod["metadata"]["name"] = name.clone().into();
        let pod = create_pod(cluster, ns, pod).await?;
        // Never scheduled (no node), so deleted at once.
        pods.delete(&name, &DeleteParams::default()).await?;
        if !left_alone(&pod)? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("the legacy webhook was never called in {ns}")
}

pub(crate) async fn migrate_from_kiam_and_kube2iam(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let label = unique("mig");
    let (uploader, reports, nodes) = (
        unique("e2e-uploader"),
        unique("e2e-reports"),
        unique("e2e-nodes"),
    );
    let node_role = format!("{BASE}{nodes}");
    node_trusted_role(&cluster, &uploader, &node_role)?;
    node_trusted_role(&cluster, &reports, &node_role)?;
    // The provider the statements name (idempotent: another test may have made it).
    let ca_file = cluster.dir.join("ca.crt").display().to_string();
    irsa_ok(
        &cluster,
        &[
            "associate-oidc-provider",
            "--issuer-url",
            &cluster.issuer_url,
            "--ca-file",
            &ca_file,
        ],
    )?;

    // kube2iam: a role name, and the namespace's allowed-roles (a glob).
    let kube2iam = labelled_namespace(
        &cluster,
        "kube2iam",
        &label,
        json!({"iam.amazonaws.com/allowed-roles": json!([format!("{}*", &uploader[..12])]).to_string()}),
    )
    .await?;
    // kiam: ARNs, and the namespace's permitted regex; MinIO's role too, for the credentials.
    let kiam = labelled_namespace(
        &cluster,
        "kiam",
        &label,
        json!({"iam.amazonaws.com/permitted": format!("{BASE}{reports}|arn:minio:iam:[a-z0-9-]*::role/.*")}),
    )
    .await?;
    // Neither annotation: nothing is permitted.
    let closed = labelled_namespace(&cluster, "closed", &label, json!({})).await?;
    let configuration = start_legacy_webhook(&cluster, &label).await?;
    let result = run(
        &cluster, &kube2iam, &kiam, &closed, &uploader, &reports, &node_role,
    )
    .await;
    cluster.kubectl(&["delete", "mutatingwebhookconfiguration", &configuration])?;
    result
}

async fn run(
    cluster: &Cluster,
    kube2iam: &str,
    kiam: &str,
    closed: &str,
    uploader: &str,
    reports: &str,
    node_role: &str,
) -> anyhow::Result<()> {
    for (ns, account) in [
        (kube2iam, "uploader"),
        (kiam, "reports"),
        (kiam, "s3-reader"),
        (closed, "denied"),
    ] {
        service_account(cluster, ns, account, json!({})).await?;
    }
    wait_until_called(cluster, kube2iam, "uploader", uploader).await?;

    // The webhook part: each pod gets exactly the role its annotation resolves to, or nothing.
    let web = deployment_and_pod(cluster, kube2iam, "web", "uploader", uploader).await?;
    let app = container(&web, "containers", "app")?;
    ensure!(
        env_of(app, "AWS_ROLE_ARN") == Some(format!("{BASE}{uploader}").as_str())
            && token_volume(&web).is_some(),
        "kube2iam pod: {web}"
    );
    let report = deployment_and_pod(
        cluster,
        kiam,
        "reports",
        "reports",
        &format!("{BASE}{reports}"),
    )
    .await?;
    ensure!(
        env_of(container(&report, "containers", "app")?, "AWS_ROLE_ARN")
            == Some(format!("{BASE}{reports}").as_str()),
        "kiam pod: {report}"
    );
    // Another role than the others: a workload its namespace refuses a role to keeps that role's node trust.
    let denied = deployment_and_pod(cluster, closed, "denied", "denied", "e2e-denied").await?;
    ensure!(
        left_alone(&denied)?,
        "a role its namespace does not permit was injected: {denied}"
    );

    // MinIO's role, the kiam way: credentials from the injected env alone.
    let mut pod = legacy_template("s3-reader", &cluster.minio_role_arn);
    pod["metadata"]["name"] = "s3".into();
    let s3 = create_pod(cluster, kiam, pod).await?;
    let env: Vec<(String, String)> = container(&s3, "containers", "app")?["env"]
        .as_array()
        .context("no env injected")?
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let token_file = env
        .iter()
        .find(|(k, _)| k == "AWS_WEB_IDENTITY_TOKEN_FILE")
        .context("no token file injected")?
        .1
        .clone();
    let token = cluster.mint_token(kiam, "s3-reader", "s3", "sts.amazonaws.com", 3600)?;
    let root = tempfile::tempdir()?;
    let path = root.path().join(token_file.trim_start_matches('/'));
    std::fs::create_dir_all(path.parent().context("a parent")?)?;
    std::fs::write(&path, token)?;
    let env: Vec<(String, String)> = env
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "AWS_WEB_IDENTITY_TOKEN_FILE" => (k, path.display().to_string()),
            _ => (k, v),
        })
        .collect();
    let listed = run_unmodified(cluster, "aws", &["s3", "ls"], &env, root.path())?;
    ensure!(
        listed.status.success() && String::from_utf8_lossy(&listed.stdout).contains(BUCKET),
        "aws s3 ls with the injected env: {}{}",
        String::from_utf8_lossy(&listed.stdout),
        String::from_utf8_lossy(&listed.stderr)
    );

    // The plan, read-only.
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let base = format!("--base-role-arn={BASE}");
    let common = [
        "migrate",
        "--issuer-url",
        &cluster.issuer_url,
        "--kubeconfig",
        &kubeconfig,
        &base,
    ];
    let text = irsa_ok(cluster, &common)?;
    for needle in [
        format!("IAM role {uploader} ({BASE}{uploader})"),
        format!(
            "  + trust system:serviceaccount:{kube2iam}:uploader <- Deployment {kube2iam}/web, Pod {kube2iam}/web-1"
        ),
        format!(
            "  + trust system:serviceaccount:{kiam}:reports <- Deployment {kiam}/reports, Pod {kiam}/reports-1"
        ),
        format!("Deployment {closed}/denied: role {BASE}e2e-denied (it has neither"),
        format!("webhook flags (irsa webhook serve): --legacy-role-annotations {base}"),
    ] {
        ensure!(
            text.contains(&needle),
            "{needle:?} missing from the plan:\n{text}"
        );
    }
    ensure!(
        trust_statements(cluster, uploader)? == [node_statement(node_role)],
        "the read-only plan changed a role"
    );

    // --apply, then checked statement by statement in moto.
    let apply: Vec<&str> = common
        .iter()
        .copied()
        .chain(["--apply", "--output", "json"])
        .collect();
    let first: Value = serde_json::from_str(&irsa_ok(cluster, &apply)?)?;
    ensure!(
        first["applied"] == true && first["migration"]["changes"] == true,
        "--apply applied nothing: {first}"
    );
    for (role, ns, sa) in [(uploader, kube2iam, "uploader"), (reports, kiam, "reports")] {
        let statements = trust_statements(cluster, role)?;
        ensure!(
            statements.len() == 2
                && statements[0] == node_statement(node_role)
                && is_web_identity_of(cluster, &statements[1], ns, sa),
            "{role}: {statements:#?}"
        );
    }
    let second: Value = serde_json::from_str(&irsa_ok(cluster, &apply)?)?;
    ensure!(
        second["applied"] == false && second["migration"]["changes"] == false,
        "a second --apply changed something: {second}"
    );
    ensure!(
        trust_statements(cluster, uploader)?.len() == 2,
        "a second --apply added a statement"
    );

    // Every pod of both roles runs on web identity now: the node trust goes.
    let prune: Vec<String> = common
        .iter()
        .map(|s| s.to_string())
        .chain([
            "--prune-node-trust".into(),
            format!("--node-role-arn={node_role}"),
        ])
        .collect();
    let prune: Vec<&str> = prune.iter().map(String::as_str).collect();
    let pruned = irsa_ok(cluster, &prune)?;
    ensure!(
        pruned.contains(&format!("  - node trust {}", node_statement(node_role))),
        "{pruned}"
    );
    for (role, ns, sa) in [(uploader, kube2iam, "uploader"), (reports, kiam, "reports")] {
        let statements = trust_statements(cluster, role)?;
        ensure!(
            statements.len() == 1 && is_web_identity_of(cluster, &statements[0], ns, sa),
            "{role} after pruning: {statements:#?}"
        );
    }
    Ok(())
}
