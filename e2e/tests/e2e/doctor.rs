//! `irsa doctor` against the real chain: the apiserver, the issuer, the webhook, moto as IAM and MinIO as
//! STS. A healthy setup passes; then failures are injected for real, one at a time, and each is named with
//! its fix. Whatever a test adds to moto or the cluster outside its namespaces, it removes.

use std::sync::Arc;

use anyhow::{Context as _, bail, ensure};
use irsa_e2e::cluster::{Cluster, REGION};
use irsa_e2e::scenario::*;
use serde_json::{Value, json};

/// The AWS configuration of every command here: moto for IAM (and the caller's identity), nothing else.
fn with_moto(cluster: &Cluster, command: &mut std::process::Command) {
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &cluster.dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ENDPOINT_URL", &cluster.moto_url);
}

/// `irsa doctor ARGS` with IAM at moto and STS at MinIO: the exit code and the JSON report.
fn doctor(cluster: &Cluster, args: &[&str]) -> anyhow::Result<(i32, Value)> {
    let mut command = std::process::Command::new(&cluster.peers.irsa);
    command
        .arg("doctor")
        .args(args)
        .arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
        .arg(format!(
            "--ca-file={}",
            cluster.dir.join("ca.crt").display()
        ))
        .arg(format!("--sts-endpoint={}", cluster.minio_url))
        .arg("--output=json");
    with_moto(cluster, &mut command);
    let output = command.output().context("running irsa doctor")?;
    let report = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "irsa doctor {args:?} printed no JSON report; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    Ok((output.status.code().unwrap_or(-1), report))
}

/// The finding of `check` in `report`.
fn finding<'a>(report: &'a Value, check: &str) -> anyhow::Result<&'a Value> {
    report["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["check"] == check))
        .with_context(|| format!("no {check} finding in {report:#}"))
}

/// Asserts that `check` failed, its `what` mentions each of `what` and its fix contains `fix`.
fn failed_with(report: &Value, check: &str, what: &[&str], fix: &str) -> anyhow::Result<()> {
    let f = finding(report, check)?;
    let text = f["what"].as_str().unwrap_or_default();
    let given = f["fix"].as_str().unwrap_or_default();
    ensure!(
        f["status"] == "fail" && what.iter().all(|w| text.contains(w)) && given.contains(fix),
        "{check} should fail mentioning {what:?} with a fix containing {fix:?}: {f:#}"
    );
    Ok(())
}

/// Runs `program args` with moto's configuration; returns stdout, or an error with stderr.
fn at_moto(cluster: &Cluster, program: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let mut command = std::process::Command::new(program);
    command.args(args);
    with_moto(cluster, &mut command);
    let output = command.output()?;
    if !output.status.success() {
        bail!(
            "{} {} failed: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Registers the issuer in moto (idempotent); returns the provider's ARN when this call created it, for
/// [`remove_provider`] to delete.
fn associate(cluster: &Cluster) -> anyhow::Result<Option<String>> {
    let ca_file = cluster.dir.join("ca.crt").display().to_string();
    let out = at_moto(
        cluster,
        &cluster.peers.irsa,
        &[
            "associate-oidc-provider",
            "--issuer-url",
            &cluster.issuer_url,
            "--ca-file",
            &ca_file,
            "--output",
            "json",
        ],
    )?;
    let report: Value = serde_json::from_str(&out)?;
    let created = report["provider"]["existing"].is_null();
    Ok(created.then(|| {
        report["provider"]["arn"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }))
}

fn remove_provider(cluster: &Cluster, created: Option<String>) -> anyhow::Result<()> {
    if let Some(arn) = created {
        at_moto(
            cluster,
            &cluster.peers.venv_bin("aws"),
            &[
                "iam",
                "delete-open-id-connect-provider",
                "--open-id-connect-provider-arn",
                &arn,
            ],
        )?;
    }
    Ok(())
}

pub(crate) async fn doctor_passes_a_healthy_setup(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let created = associate(&cluster)?;
    let result = healthy(&cluster).await;
    remove_provider(&cluster, created)?;
    result
}

async fn healthy(cluster: &Cluster) -> anyhow::Result<()> {
    let ns = namespace(cluster, "doctor", json!({})).await?;
    service_account_with_role(cluster, &ns, "app", &cluster.minio_role_arn).await?;
    let started = std::time::Instant::now();
    let (code, report) = doctor(cluster, &["--namespace", &ns, "--service-account", "app"])?;
    ensure!(code == 0 && report["ok"] == true, "exit {code}: {report:#}");
    for check in [
        "cluster.issuer",
        "cluster.service-account",
        "cluster.token-request",
        "cluster.webhook",
        "cluster.injection",
        "discovery.fetch",
        "discovery.issuer",
        "jwks.keys",
        "jwks.current-kid",
        "iam.provider",
        "iam.client-id",
        "iam.thumbprint",
        "sts.assume-role",
        "clock.skew",
        "sdk.environment",
        "sdk.annotations",
    ] {
        let f = finding(&report, check)?;
        ensure!(f["status"] == "pass", "{check} did not pass: {f:#}");
    }
    // MinIO's role ARN is not an IAM one: the role checks are skipped, saying so.
    let role = finding(&report, "iam.role")?;
    ensure!(
        role["status"] == "skipped"
            && role["what"]
                .as_str()
                .unwrap_or_default()
                .contains("not an IAM role ARN"),
        "iam.role: {role:#}"
    );
    ensure!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "a healthy cluster took {:?} to diagnose",
        started.elapsed()
    );
    Ok(())
}

pub(crate) async fn doctor_names_injected_failures_with_their_fix(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let created = associate(&cluster)?;
    let role_name = unique("doctor-e2e");
    let webhook_name = unique("irsa-doctor-e2e");
    let result = injected(&cluster, &role_name, &webhook_name).await;
    // Leave moto and the cluster as found, whatever happened.
    let _ = at_moto(
        &cluster,
        &cluster.peers.venv_bin("aws"),
        &["iam", "delete-role", "--role-name", &role_name],
    );
    let _ = cluster.kubectl(&[
        "delete",
        "mutatingwebhookconfiguration",
        &webhook_name,
        "--ignore-not-found",
    ]);
    remove_provider(&cluster, created)?;
    result
}

async fn injected(cluster: &Cluster, role_name: &str, webhook_name: &str) -> anyhow::Result<()> {
    let issuer = cluster.issuer_url.as_str();
    let ns = namespace(cluster, "doctor", json!({})).await?;
    service_account_with_role(cluster, &ns, "app", &cluster.minio_role_arn).await?;

    // 1. The issuer with a trailing slash: the apiserver signs without one, and IAM has the URL without.
    let slashed = format!("{issuer}/");
    let (code, report) = doctor(
        cluster,
        &[
            "--namespace",
            &ns,
            "--service-account",
            "app",
            "--issuer-url",
            &slashed,
        ],
    )?;
    ensure!(code == 1, "exit {code}: {report:#}");
    failed_with(
        &report,
        "cluster.issuer",
        &["trailing slash"],
        &format!("--service-account-issuer={slashed}"),
    )?;
    failed_with(
        &report,
        "discovery.issuer",
        &["trailing slash"],
        "irsa issuer serve --issuer-url",
    )?;
    let host_path = issuer.trim_start_matches("https://");
    failed_with(
        &report,
        "iam.provider",
        &[&format!("providers exist for {host_path}")],
        &format!("irsa associate-oidc-provider --issuer-url {slashed}"),
    )?;

    // 2. An audience the provider does not list.
    service_account(
        cluster,
        &ns,
        "other-audience",
        json!({"eks.amazonaws.com/role-arn": cluster.minio_role_arn, "eks.amazonaws.com/audience": "other.example"}),
    )
    .await?;
    let (code, report) = doctor(
        cluster,
        &["--namespace", &ns, "--service-account", "other-audience"],
    )?;
    ensure!(code == 1, "exit {code}: {report:#}");
    failed_with(
        &report,
        "iam.client-id",
        &["other.example"],
        &format!("irsa associate-oidc-provider --issuer-url {issuer} --client-id other.example"),
    )?;

    // 3. A role whose trust policy names another namespace.
    let other = unique("elsewhere");
    let created = at_moto(
        cluster,
        &cluster.peers.irsa,
        &[
            "create-role",
            "--issuer-url",
            issuer,
            "--namespace",
            &other,
            "--service-account",
            "wrong-trust",
            "--role-name",
            role_name,
            "--output",
            "json",
        ],
    )?;
    let created: Value = serde_json::from_str(&created)?;
    let role_arn = created["role"]["role_arn"]
        .as_str()
        .context("role ARN")?
        .to_owned();
    service_account_with_role(cluster, &ns, "wrong-trust", &role_arn).await?;
    let (code, report) = doctor(
        cluster,
        &["--namespace", &ns, "--service-account", "wrong-trust"],
    )?;
    ensure!(code == 1, "exit {code}: {report:#}");
    failed_with(
        &report,
        "iam.trust-policy",
        &[&format!("namespace {other}, not {ns}")],
        &format!(
            "irsa create-role --issuer-url {issuer} --namespace {ns} --service-account wrong-trust --role-name {role_name}"
        ),
    )?;

    // 4. A pod with static keys, which win over web identity in every SDK.
    let mut pod = simple_pod("static-keys", "app");
    pod["spec"]["containers"][0]["env"] =
        json!([{"name": "AWS_ACCESS_KEY_ID", "value": "AKIAEXAMPLE"}]);
    create_pod(cluster, &ns, pod).await?;
    let (code, report) = doctor(cluster, &["--pod", &format!("{ns}/static-keys")])?;
    ensure!(code == 1, "exit {code}: {report:#}");
    failed_with(
        &report,
        "sdk.environment",
        &["app: AWS_ACCESS_KEY_ID"],
        "AWS_ACCESS_KEY_ID-",
    )?;

    // 5. A second irsa webhook for this namespace whose caBundle is another CA's.
    let stranger = irsa_testing::pki::Ca::new("not-the-webhooks-ca");
    use base64::Engine as _;
    let configuration = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": webhook_name},
        "webhooks": [{
            "name": "pod-identity.doctor.irsa.dev",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {
                "url": cluster.webhook_url,
                "caBundle": base64::engine::general_purpose::STANDARD.encode(stranger.pem()),
            },
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            // Ignore: the broken webhook must not stop the other tests' pods (it selects only this namespace).
            "failurePolicy": "Ignore",
            "sideEffects": "None",
            "timeoutSeconds": 3,
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
        }],
    });
    cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&configuration.to_string()))?;
    let (code, report) = doctor(cluster, &["--namespace", &ns, "--service-account", "app"])?;
    ensure!(code == 1, "exit {code}: {report:#}");
    failed_with(
        &report,
        "cluster.webhook",
        &["caBundle does not verify", webhook_name],
        &format!("kubectl patch mutatingwebhookconfiguration {webhook_name}"),
    )?;
    Ok(())
}
