//! `irsa doctor` against the real chain: the apiserver, the issuer, the webhook, moto as IAM and MinIO as
//! STS. A healthy setup passes; then failures are injected for real, one at a time, and each is named with
//! its fix. Whatever a test adds to moto or the cluster outside its namespaces, it removes; the issuer keys it
//! replaces it puts back; the peers it starts for one case (a second issuer with an untrusted certificate, a
//! moto whose clock runs behind) stop with it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use irsa_e2e::cluster::{Cluster, REGION};
use irsa_e2e::process::{Process, free_port};
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
    doctor_with_sts(cluster, &cluster.minio_url, args)
}

/// `irsa doctor ARGS` with IAM at moto and STS at `sts`: the exit code and the JSON report.
fn doctor_with_sts(cluster: &Cluster, sts: &str, args: &[&str]) -> anyhow::Result<(i32, Value)> {
    let mut command = std::process::Command::new(&cluster.peers.irsa);
    command
        .arg("doctor")
        .args(args)
        .arg(format!("--kubeconfig={}", cluster.kubeconfig.display()))
        .arg(format!(
            "--ca-file={}",
            cluster.dir.join("ca.crt").display()
        ))
        .arg(format!("--sts-endpoint={sts}"))
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

/// `irsa create-role ARGS --output json` against moto: the new role's ARN.
fn create_role(cluster: &Cluster, args: &[&str]) -> anyhow::Result<String> {
    let args = [&["create-role"], args, &["--output", "json"]].concat();
    let created: Value = serde_json::from_str(&at_moto(cluster, &cluster.peers.irsa, &args)?)?;
    Ok(created["role"]["role_arn"]
        .as_str()
        .context("role ARN")?
        .to_owned())
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
    // This apiserver is a host process, not a kube-system static pod: its flags cannot be seen, and the
    // doctor says so instead of guessing.
    let issuers = finding(&report, "cluster.issuers")?;
    ensure!(
        issuers["status"] == "skipped"
            && issuers["what"]
                .as_str()
                .unwrap_or_default()
                .contains("flags are not visible"),
        "cluster.issuers: {issuers:#}"
    );
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
    // How fast is a number for the note, not an assertion: the machines are shared and noisy.
    eprintln!(
        "doctor diagnosed a healthy cluster in {:?}",
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
    let role_arn = create_role(
        cluster,
        &[
            "--issuer-url",
            issuer,
            "--namespace",
            &other,
            "--service-account",
            "wrong-trust",
            "--role-name",
            role_name,
        ],
    )?;
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

/// The ARN of moto's provider for exactly `url`, if there is one.
fn provider_for(cluster: &Cluster, url: &str) -> anyhow::Result<Option<String>> {
    let out = at_moto(
        cluster,
        &cluster.peers.venv_bin("aws"),
        &["iam", "list-open-id-connect-providers", "--output", "json"],
    )?;
    let listed: Value = serde_json::from_str(&out)?;
    let suffix = format!(":oidc-provider/{}", url.trim_start_matches("https://"));
    Ok(listed["OpenIDConnectProviderList"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["Arn"].as_str())
        .find(|arn| arn.ends_with(&suffix))
        .map(str::to_owned))
}

/// Registers a provider for `url` in moto as given (moto stores what it is told); returns its ARN.
fn create_provider(cluster: &Cluster, url: &str, thumbprint: &str) -> anyhow::Result<String> {
    let out = at_moto(
        cluster,
        &cluster.peers.venv_bin("aws"),
        &[
            "iam",
            "create-open-id-connect-provider",
            "--url",
            url,
            "--client-id-list",
            irsa_e2e::cluster::AUDIENCE,
            "--thumbprint-list",
            thumbprint,
            "--output",
            "json",
        ],
    )?;
    let created: Value = serde_json::from_str(&out)?;
    created["OpenIDConnectProviderArn"]
        .as_str()
        .map(str::to_owned)
        .context("create-open-id-connect-provider returned no ARN")
}

fn delete_provider(cluster: &Cluster, arn: &str) -> anyhow::Result<()> {
    remove_provider(cluster, Some(arn.to_owned()))
}

pub(crate) async fn doctor_names_iam_misconfigurations(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let issuer = cluster.issuer_url.clone();
    let elsewhere = format!("{issuer}/old-cluster");
    let role_name = unique("doctor-aud");
    // The cases need the issuer's own provider absent or replaced: an earlier test's is put back after.
    let had_provider = provider_for(&cluster, &issuer)?;
    if let Some(arn) = &had_provider {
        delete_provider(&cluster, arn)?;
    }
    let result = iam_cases(&cluster, &elsewhere, &role_name).await;
    // Leave moto as found, whatever happened.
    let _ = at_moto(
        &cluster,
        &cluster.peers.venv_bin("aws"),
        &["iam", "delete-role", "--role-name", &role_name],
    );
    for url in [elsewhere.as_str(), issuer.as_str()] {
        if let Some(arn) = provider_for(&cluster, url)? {
            delete_provider(&cluster, &arn)?;
        }
    }
    if had_provider.is_some() {
        associate(&cluster)?;
    }
    result
}

async fn iam_cases(cluster: &Cluster, elsewhere: &str, role_name: &str) -> anyhow::Result<()> {
    let issuer = cluster.issuer_url.as_str();
    let ns = namespace(cluster, "doctor-iam", json!({})).await?;
    service_account_with_role(cluster, &ns, "app", &cluster.minio_role_arn).await?;
    let sa = ["--namespace", ns.as_str(), "--service-account", "app"];

    // 1. A provider registered for another URL of the same host (an old path), none for the issuer.
    let other = create_provider(cluster, elsewhere, &"ab".repeat(20))?;
    let (code, report) = doctor(cluster, &sa)?;
    ensure!(code == 1, "exit {code}: {report:#}");
    failed_with(
        &report,
        "iam.provider",
        &[
            &format!("no IAM OIDC provider for {issuer}"),
            &format!(
                "providers exist for {}",
                elsewhere.trim_start_matches("https://")
            ),
        ],
        &format!("irsa associate-oidc-provider --issuer-url {issuer}"),
    )?;
    delete_provider(cluster, &other)?;

    // 2. The issuer's provider with a thumbprint that is not its CA's.
    let wrong = "0123456789abcdef0123456789abcdef01234567";
    let provider = create_provider(cluster, issuer, wrong)?;
    let (code, report) = doctor(cluster, &sa)?;
    ensure!(code == 1, "exit {code}: {report:#}");
    ensure!(
        finding(&report, "iam.provider")?["status"] == "pass",
        "the provider exists: {report:#}"
    );
    failed_with(
        &report,
        "iam.thumbprint",
        &[wrong, "do not include"],
        &format!("irsa associate-oidc-provider --issuer-url {issuer} --thumbprint auto"),
    )?;
    delete_provider(cluster, &provider)?;

    // 3. The right provider, and a role whose trust policy admits another audience.
    associate(cluster)?;
    let role_arn = create_role(
        cluster,
        &[
            "--issuer-url",
            issuer,
            "--namespace",
            &ns,
            "--service-account",
            "wrong-aud",
            "--audience",
            "other.example",
            "--role-name",
            role_name,
        ],
    )?;
    service_account_with_role(cluster, &ns, "wrong-aud", &role_arn).await?;
    let (code, report) = doctor(
        cluster,
        &["--namespace", &ns, "--service-account", "wrong-aud"],
    )?;
    ensure!(code == 1, "exit {code}: {report:#}");
    ensure!(
        finding(&report, "iam.thumbprint")?["status"] == "pass",
        "only the audience is wrong: {report:#}"
    );
    failed_with(
        &report,
        "iam.trust-policy",
        &[
            "other.example",
            "not the tokens' audience sts.amazonaws.com",
        ],
        &format!(
            "irsa create-role --issuer-url {issuer} --namespace {ns} --service-account wrong-aud --role-name {role_name} --audience sts.amazonaws.com"
        ),
    )?;
    Ok(())
}

/// Replaces the file of public keys the cluster's issuer serves, as an operator would (write, rename), and
/// waits until the issuer serves exactly `kids` (it re-reads the file every second).
async fn publish_keys(
    cluster: &Cluster,
    pem: &str,
    kids: impl Fn(&std::collections::BTreeSet<String>) -> bool,
) -> anyhow::Result<()> {
    let staged = cluster.dir.join("issuer-keys.pem.doctor");
    std::fs::write(&staged, pem)?;
    std::fs::rename(&staged, &cluster.issuer_keys)?;
    let http = cluster.http()?;
    let url = format!("{}/openid/v1/jwks", cluster.issuer_url);
    let mut seen = Default::default();
    for _ in 0..100 {
        seen = jwks_kids(&http, &url, None).await?;
        if kids(&seen) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the issuer still serves {seen:?}")
}

/// A second `irsa issuer serve` on a free loopback port for the cluster's keys, with `leaf`'s certificate;
/// returns it (stopped when dropped) and its issuer URL.
async fn second_issuer(
    cluster: &Cluster,
    name: &str,
    leaf: &irsa_testing::pki::Leaf,
) -> anyhow::Result<(Process, String)> {
    let dir = cluster.dir.join(name);
    std::fs::create_dir_all(&dir)?;
    let (cert, key) = (dir.join("serving.crt"), dir.join("serving.key"));
    std::fs::write(&cert, &leaf.chain_pem)?;
    std::fs::write(&key, &leaf.key_pem)?;
    let (port, admin) = (free_port(), free_port());
    let url = format!("https://127.0.0.1:{port}");
    let path = |p: &Path| p.display().to_string();
    let process = Process::start(
        name,
        &cluster.peers.irsa,
        &[
            "issuer".into(),
            "serve".into(),
            format!("--issuer-url={url}"),
            format!("--public-key-file={}", path(&cluster.issuer_keys)),
            format!("--tls-cert-file={}", path(&cert)),
            format!("--tls-key-file={}", path(&key)),
            format!("--listen=127.0.0.1:{port}"),
            format!("--admin-listen=127.0.0.1:{admin}"),
        ],
        &[],
        &cluster.dir.join("logs"),
    )?;
    let http = cluster.http()?;
    for _ in 0..100 {
        let ready = http
            .get(format!("http://127.0.0.1:{admin}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok((process, url));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{name} did not get ready: {}", process.log_tail(20))
}

pub(crate) async fn doctor_names_broken_issuers(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let published = std::fs::read_to_string(&cluster.issuer_keys)?;
    let jwks_url = format!("{}/openid/v1/jwks", cluster.issuer_url);
    let served = jwks_kids(&cluster.http()?, &jwks_url, None).await?;
    let result = issuer_cases(&cluster, &served).await;
    // Put the published keys back, whatever happened, and wait until the issuer serves them again.
    let restored = publish_keys(&cluster, &published, |kids| *kids == served).await;
    result.and(restored)
}

async fn issuer_cases(
    cluster: &Cluster,
    served: &std::collections::BTreeSet<String>,
) -> anyhow::Result<()> {
    let ns = namespace(cluster, "doctor-issuer", json!({})).await?;
    service_account_with_role(cluster, &ns, "app", &cluster.minio_role_arn).await?;
    let sa = ["--namespace", ns.as_str(), "--service-account", "app"];
    let published = std::fs::read_to_string(&cluster.issuer_keys)?;

    // 1. A rotated key not published: the issuer serves another key than the one the apiserver signs with.
    let (_, stranger) = irsa_testing::pki::signing_key();
    publish_keys(cluster, &stranger, |kids| {
        !kids.is_empty() && kids.is_disjoint(served)
    })
    .await?;
    let (code, report) = doctor(cluster, &sa)?;
    ensure!(code == 1, "exit {code}: {report:#}");
    ensure!(
        finding(&report, "jwks.keys")?["status"] == "pass",
        "the JWKS itself is fine: {report:#}"
    );
    failed_with(
        &report,
        "jwks.current-kid",
        &["a rotated key not published"],
        "publish the new public key before signing with it",
    )?;
    publish_keys(cluster, &published, |kids| kids == served).await?;

    // 2. Discovery unreachable: an issuer URL on a closed port.
    let closed = format!("https://127.0.0.1:{}", free_port());
    let (code, report) = doctor(cluster, &[&sa[..], &["--issuer-url", &closed]].concat())?;
    ensure!(code == 1, "exit {code}: {report:#}");
    failed_with(
        &report,
        "discovery.fetch",
        &[
            "cannot fetch it the way STS does",
            "Couldn't retrieve verification key",
        ],
        "serve the issuer publicly over HTTPS",
    )?;

    // 3. An issuer served with a certificate from a CA STS does not trust.
    let stranger_ca = irsa_testing::pki::Ca::new("not-a-ca-sts-trusts");
    let (_issuer, untrusted) = second_issuer(
        cluster,
        &unique("doctor-untrusted-issuer"),
        &stranger_ca.leaf(&["127.0.0.1"]),
    )
    .await?;
    let (code, report) = doctor(cluster, &[&sa[..], &["--issuer-url", &untrusted]].concat())?;
    ensure!(code == 1, "exit {code}: {report:#}");
    failed_with(
        &report,
        "discovery.fetch",
        &["certificate is not trusted"],
        &format!("irsa associate-oidc-provider --issuer-url {untrusted} --ca-file CA.pem"),
    )?;
    Ok(())
}

pub(crate) async fn doctor_sees_a_skewed_sts_clock(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace(cluster.as_ref(), "doctor-clock", json!({})).await?;
    service_account_with_role(&cluster, &ns, "app", &cluster.minio_role_arn).await?;
    // A real STS emulator (moto) whose clock runs ten minutes behind: Python's clock, shifted before the
    // server starts, is what it stamps its Date headers with.
    let port = free_port();
    let _sts = Process::start(
        &unique("moto-skewed"),
        &cluster.peers.venv_bin("python"),
        &[
            "-c".into(),
            "import sys, time\n\
             real = time.time\n\
             time.time = lambda: real() - 600\n\
             from moto.server import main\n\
             main(['-H', '127.0.0.1', '-p', sys.argv[1]])"
                .into(),
            port.to_string(),
        ],
        &[],
        &cluster.dir.join("logs"),
    )?;
    let sts = format!("http://127.0.0.1:{port}");
    let http = cluster.http()?;
    let mut up = false;
    for _ in 0..150 {
        if http.get(format!("{sts}/moto-api/")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(up, "the skewed moto did not start");
    let (code, report) = doctor_with_sts(
        &cluster,
        &sts,
        &["--namespace", &ns, "--service-account", "app"],
    )?;
    ensure!(code == 1, "exit {code}: {report:#}");
    ensure!(
        finding(&report, "sts.assume-role")?["status"] == "pass",
        "the skewed STS still answers: {report:#}"
    );
    failed_with(
        &report,
        "clock.skew",
        &["ahead of STS"],
        "sync the clocks with NTP",
    )?;
    Ok(())
}
