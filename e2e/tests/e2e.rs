//! The end-to-end suite: one local cluster of real peers (see `irsa_e2e::cluster`), shared by every test,
//! run one test at a time. Each test works in namespaces of its own (namespaces never finish deleting
//! without a controller-manager, so names are fresh per run).
//!
//! Run with `make e2e` (which installs the peers and builds `irsa` first) or
//! `cargo test -p irsa-e2e --test e2e -- [FILTER]`.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail, ensure};
use irsa_e2e::cluster::{AUDIENCE, BUCKET, Cluster};
use irsa_e2e::peers::Peers;
use irsa_e2e::scenario::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};

type TestFn =
    fn(Arc<Cluster>) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|c| Box::pin($name(c))) as TestFn)),*]
    };
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // One cluster, shared: tests run one at a time (the rotation test restarts the apiserver).
    args.test_threads = Some(1);
    let tests: Vec<(&'static str, TestFn)> = tests![
        annotated_pod_gets_env_mount_and_projected_volume,
        unannotated_pod_is_untouched,
        skip_label_leaves_the_pod_alone,
        already_injected_pod_gets_nothing_more,
        service_account_annotated_then_pod_created_at_once_is_mutated,
        aws_cli_gets_credentials_from_the_injected_env_alone,
        boto3_gets_credentials_from_the_injected_env_alone,
        token_with_a_wrong_audience_is_refused,
        issuer_kids_equal_the_apiservers,
        issuer_publish_to_s3_matches_the_live_issuer,
        namespace_restriction_stops_a_forbidden_role,
        associate_oidc_provider_and_create_role_against_moto,
        manifests_render_and_apply_with_server_dry_run,
        self_signed_mode_patches_its_ca_bundle_and_is_called,
        zz_rotation_keeps_old_and_new_tokens_valid,
    ];
    let wanted = |name: &str| {
        let matches = |pattern: &str| {
            if args.exact {
                name == pattern
            } else {
                name.contains(pattern)
            }
        };
        args.filter.as_deref().is_none_or(matches) && !args.skip.iter().any(|s| matches(s))
    };
    let selected: Vec<_> = tests.iter().filter(|(name, _)| wanted(name)).collect();
    if selected.is_empty() || args.list {
        let trials = tests
            .iter()
            .map(|(name, _)| Trial::test(*name, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }

    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let peers = match Peers::locate() {
        Ok(peers) => peers,
        Err(err) => {
            eprintln!("e2e: cannot run: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let cluster = match runtime.block_on(Cluster::start(peers)) {
        Ok(cluster) => cluster,
        Err(err) => {
            eprintln!("e2e: the cluster did not start: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let kept = std::env::var_os("IRSA_E2E_KEEP").is_some();
    let cluster_ref = Arc::new(cluster);
    let trials = tests
        .iter()
        .map(|(name, test)| {
            let (cluster, handle, test) = (cluster_ref.clone(), runtime.handle().clone(), *test);
            Trial::test(*name, move || {
                handle
                    .block_on(test(cluster))
                    .map_err(|err| Failed::from(format!("{err:#}")))
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    let mut cluster = Arc::try_unwrap(cluster_ref)
        .ok()
        .expect("tests are done with the cluster");
    cluster.stop();
    if conclusion.has_failed() || kept {
        eprintln!(
            "e2e: logs of every peer kept in {}/logs",
            cluster.keep().display()
        );
    }
    drop(cluster);
    conclusion.exit_code()
}

const ROLE: &str = "arn:aws:iam::111122223333:role/e2e-app";
const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

async fn annotated_pod_gets_env_mount_and_projected_volume(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "mutate", json!({})).await?;
    service_account(
        &cluster,
        &ns,
        "app",
        json!({"eks.amazonaws.com/role-arn": ROLE, "eks.amazonaws.com/token-expiration": "3600"}),
    )
    .await?;
    let pod = create_pod(
        &cluster,
        &ns,
        json!({
            "metadata": {"name": "app", "annotations": {"eks.amazonaws.com/skip-containers": "untouched"}},
            "spec": {
                "serviceAccountName": "app",
                "initContainers": [
                    {"name": "init", "image": "registry.example/init:1"},
                    {"name": "sidecar", "image": "registry.example/proxy:1", "restartPolicy": "Always"}
                ],
                "containers": [
                    {"name": "app", "image": "registry.example/app:1", "env": [{"name": "KEEP", "value": "me"}]},
                    {"name": "untouched", "image": "registry.example/other:1"}
                ]
            }
        }),
    )
    .await?;
    for (list, name) in [
        ("containers", "app"),
        ("initContainers", "init"),
        ("initContainers", "sidecar"),
    ] {
        let c = container(&pod, list, name)?;
        ensure!(
            env_of(c, "AWS_ROLE_ARN") == Some(ROLE),
            "{name}: AWS_ROLE_ARN missing: {c}"
        );
        ensure!(
            env_of(c, "AWS_WEB_IDENTITY_TOKEN_FILE") == Some(TOKEN_FILE),
            "{name}: token file env: {c}"
        );
        let mounted = c["volumeMounts"].as_array().into_iter().flatten().any(|m| {
            m["name"] == "aws-iam-token"
                && m["mountPath"] == "/var/run/secrets/eks.amazonaws.com/serviceaccount"
                && m["readOnly"] == true
        });
        ensure!(mounted, "{name}: token volume not mounted: {c}");
    }
    ensure!(
        env_of(container(&pod, "containers", "app")?, "KEEP") == Some("me"),
        "existing env kept"
    );
    ensure!(
        container(&pod, "initContainers", "sidecar")?["restartPolicy"] == "Always",
        "native sidecar kept"
    );
    let untouched = container(&pod, "containers", "untouched")?;
    ensure!(
        env_of(untouched, "AWS_ROLE_ARN").is_none(),
        "skip-containers ignored: {untouched}"
    );
    let volume = token_volume(&pod).context("no aws-iam-token volume")?;
    let source = &volume["projected"]["sources"][0]["serviceAccountToken"];
    ensure!(source["audience"] == AUDIENCE, "audience: {volume}");
    ensure!(
        source["expirationSeconds"] == 3600,
        "expiration from the SA annotation: {volume}"
    );
    ensure!(source["path"] == "token", "path: {volume}");
    Ok(())
}

async fn unannotated_pod_is_untouched(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "plain", json!({})).await?;
    service_account(&cluster, &ns, "plain", json!({"unrelated": "x"})).await?;
    let pod = create_pod(&cluster, &ns, simple_pod("plain", "plain")).await?;
    let app = container(&pod, "containers", "app")?;
    ensure!(
        env_of(app, "AWS_ROLE_ARN").is_none() && token_volume(&pod).is_none(),
        "mutated: {pod}"
    );
    Ok(())
}

async fn skip_label_leaves_the_pod_alone(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "skip", json!({})).await?;
    service_account_with_role(&cluster, &ns, "app", ROLE).await?;
    let mut pod = simple_pod("skipped", "app");
    pod["metadata"]["labels"] = json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"});
    let pod = create_pod(&cluster, &ns, pod).await?;
    ensure!(token_volume(&pod).is_none(), "skip label ignored: {pod}");
    Ok(())
}

async fn already_injected_pod_gets_nothing_more(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "again", json!({})).await?;
    service_account_with_role(&cluster, &ns, "app", ROLE).await?;
    // What a first pass produced: a second invocation (reinvocationPolicy IfNeeded) must add nothing.
    let first = create_pod(&cluster, &ns, simple_pod("first", "app")).await?;
    let mut again = simple_pod("again", "app");
    again["spec"]["containers"] = first["spec"]["containers"].clone();
    token_volume(&first).context("first pod not mutated")?;
    again["spec"]["volumes"] = first["spec"]["volumes"].clone();
    let second = create_pod(&cluster, &ns, again).await?;
    let app = container(&second, "containers", "app")?;
    let count = |name: &str| {
        app["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["name"] == name)
            .count()
    };
    ensure!(
        count("AWS_ROLE_ARN") == 1 && count("AWS_WEB_IDENTITY_TOKEN_FILE") == 1,
        "duplicated env: {app}"
    );
    let volumes = second["spec"]["volumes"].as_array().into_iter().flatten();
    ensure!(
        volumes.filter(|v| v["name"] == "aws-iam-token").count() == 1,
        "duplicated volume: {second}"
    );
    Ok(())
}

async fn service_account_annotated_then_pod_created_at_once_is_mutated(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "race", json!({})).await?;
    // No sleep between the two: the watch is usually behind, and the miss path must answer.
    for i in 0..5 {
        let account = format!("fresh-{i}");
        service_account_with_role(&cluster, &ns, &account, ROLE).await?;
        let pod = create_pod(&cluster, &ns, simple_pod(&format!("fresh-{i}"), &account)).await?;
        let app = container(&pod, "containers", "app")?;
        ensure!(
            env_of(app, "AWS_ROLE_ARN") == Some(ROLE),
            "pod {i} admitted unmutated: {app}"
        );
    }
    Ok(())
}

async fn aws_cli_gets_credentials_from_the_injected_env_alone(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let PodWithToken { env, root, .. } = pod_with_token(&cluster, "cli").await?;
    let output = run_unmodified(&cluster, "aws", &["s3", "ls"], &env, root.path())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success() && stdout.contains(BUCKET),
        "aws s3 ls failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

async fn boto3_gets_credentials_from_the_injected_env_alone(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let PodWithToken { env, root, .. } = pod_with_token(&cluster, "boto3").await?;
    let script =
        "import boto3; print([b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']])";
    let output = run_unmodified(&cluster, "python", &["-c", script], &env, root.path())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success() && stdout.contains(BUCKET),
        "boto3 list_buckets failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

async fn token_with_a_wrong_audience_is_refused(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "audience", json!({})).await?;
    service_account_with_role(&cluster, &ns, "app", &cluster.minio_role_arn).await?;
    create_pod(&cluster, &ns, simple_pod("app", "app")).await?;
    let right = assume_role_at_minio(
        &cluster,
        &cluster.mint_token(&ns, "app", "app", AUDIENCE, 3600)?,
    )?;
    ensure!(
        right.status.success(),
        "the right audience was refused: {}",
        String::from_utf8_lossy(&right.stderr)
    );
    let wrong = assume_role_at_minio(
        &cluster,
        &cluster.mint_token(&ns, "app", "app", "not-sts.example", 3600)?,
    )?;
    ensure!(
        !wrong.status.success(),
        "a token for another audience was accepted"
    );
    Ok(())
}

async fn jwks_kids(
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

async fn issuer_kids_equal_the_apiservers(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let http = cluster.http()?;
    let ours = jwks_kids(
        &http,
        &format!("{}/openid/v1/jwks", cluster.issuer_url),
        None,
    )
    .await?;
    let token = std::fs::read_to_string(cluster.dir.join("tokens.csv"))?;
    let token = token.split(',').next().unwrap_or_default().to_string();
    let theirs = jwks_kids(
        &http,
        &format!("{}/openid/v1/jwks", cluster.apiserver_url),
        Some(&token),
    )
    .await?;
    ensure!(
        !ours.is_empty() && ours == theirs,
        "issuer kids {ours:?} != apiserver kids {theirs:?}"
    );
    let discovery: Value = http
        .get(format!(
            "{}/.well-known/openid-configuration",
            cluster.issuer_url
        ))
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        discovery["issuer"] == cluster.issuer_url.as_str(),
        "discovery issuer: {discovery}"
    );
    Ok(())
}

async fn issuer_publish_to_s3_matches_the_live_issuer(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let keys = cluster.issuer_keys.display().to_string();
    let publish = cluster.as_minio_root(
        &cluster.peers.irsa,
        &[
            "issuer",
            "publish",
            "--issuer-url",
            &cluster.issuer_url,
            "--public-key-file",
            &keys,
            "--s3-uri",
            &format!("s3://{BUCKET}/oidc"),
        ],
    )?;
    ensure!(
        publish.status.success(),
        "publish failed: {}",
        String::from_utf8_lossy(&publish.stderr)
    );
    let aws = cluster.peers.venv_bin("aws");
    let http = cluster.http()?;
    for (key, content_type, live) in [
        (
            "oidc/.well-known/openid-configuration",
            "application/json",
            "/.well-known/openid-configuration",
        ),
        (
            "oidc/openid/v1/jwks",
            "application/jwk-set+json",
            "/openid/v1/jwks",
        ),
    ] {
        let head = cluster.as_minio_root(
            &aws,
            &["s3api", "head-object", "--bucket", BUCKET, "--key", key],
        )?;
        let head: Value = serde_json::from_slice(&head.stdout).with_context(|| {
            format!(
                "head-object {key}: {}",
                String::from_utf8_lossy(&head.stderr)
            )
        })?;
        ensure!(head["ContentType"] == content_type, "{key}: {head}");
        ensure!(
            head["CacheControl"]
                .as_str()
                .is_some_and(|c| c.contains("max-age")),
            "{key}: {head}"
        );
        let file = cluster.dir.join("published.json");
        let file_arg = file.display().to_string();
        let get = cluster.as_minio_root(
            &aws,
            &[
                "s3api",
                "get-object",
                "--bucket",
                BUCKET,
                "--key",
                key,
                &file_arg,
            ],
        )?;
        ensure!(
            get.status.success(),
            "get-object {key}: {}",
            String::from_utf8_lossy(&get.stderr)
        );
        let published: Value = serde_json::from_slice(&std::fs::read(&file)?)?;
        let served: Value = http
            .get(format!("{}{live}", cluster.issuer_url))
            .send()
            .await?
            .json()
            .await?;
        ensure!(
            published == served,
            "{key} differs from the live issuer:\n{published}\n{served}"
        );
    }
    Ok(())
}

async fn namespace_restriction_stops_a_forbidden_role(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace(
        &cluster,
        "restricted",
        json!({"iam.amazonaws.com/permitted": "arn:aws:iam::111122223333:role/team-a-.*"}),
    )
    .await?;
    service_account_with_role(
        &cluster,
        &ns,
        "allowed",
        "arn:aws:iam::111122223333:role/team-a-app",
    )
    .await?;
    service_account_with_role(
        &cluster,
        &ns,
        "forbidden",
        "arn:aws:iam::111122223333:role/admin",
    )
    .await?;
    let allowed = create_pod(&cluster, &ns, simple_pod("allowed", "allowed")).await?;
    ensure!(
        token_volume(&allowed).is_some(),
        "a permitted role was not injected: {allowed}"
    );
    let forbidden = create_pod(&cluster, &ns, simple_pod("forbidden", "forbidden")).await?;
    let app = container(&forbidden, "containers", "app")?;
    ensure!(
        env_of(app, "AWS_ROLE_ARN").is_none() && token_volume(&forbidden).is_none(),
        "forbidden role injected: {forbidden}"
    );
    Ok(())
}

async fn zz_rotation_keeps_old_and_new_tokens_valid(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "rotate", json!({})).await?;
    service_account_with_role(&cluster, &ns, "app", &cluster.minio_role_arn).await?;
    create_pod(&cluster, &ns, simple_pod("app", "app")).await?;
    let old_token = cluster.mint_token(&ns, "app", "app", AUDIENCE, 3600)?;
    cluster.rotate_signing_key().await?;
    let new_token = cluster.mint_token(&ns, "app", "app", AUDIENCE, 3600)?;
    let kid = |token: &str| -> anyhow::Result<String> {
        use base64::Engine as _;
        let header = token.split('.').next().context("a JWT")?;
        let header: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header)?,
        )?;
        Ok(header["kid"].as_str().context("kid")?.to_string())
    };
    ensure!(
        kid(&old_token)? != kid(&new_token)?,
        "the apiserver still signs with the old key"
    );
    // The issuer re-reads its key file; wait until it publishes both kids.
    let http = cluster.http()?;
    let url = format!("{}/openid/v1/jwks", cluster.issuer_url);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let kids = jwks_kids(&http, &url, None).await?;
        if kids.contains(&kid(&old_token)?) && kids.contains(&kid(&new_token)?) {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("the issuer did not publish both keys: {kids:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    for (which, token) in [("old", &old_token), ("new", &new_token)] {
        let output = assume_role_at_minio(&cluster, token)?;
        ensure!(
            output.status.success(),
            "{which} token refused after rotation: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// `aws sts assume-role-with-web-identity` at MinIO with `token`, and nothing else configured.
fn assume_role_at_minio(cluster: &Cluster, token: &str) -> anyhow::Result<std::process::Output> {
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
    run_unmodified(cluster, "aws", &args, &[], home.path())
}

/// Runs `irsa` with AWS pointed at moto; returns stdout, or an error with stderr.
fn irsa_against_moto(cluster: &Cluster, args: &[&str]) -> anyhow::Result<String> {
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
    if !output.status.success() {
        bail!(
            "irsa {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

async fn associate_oidc_provider_and_create_role_against_moto(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    use sha1_smol::Sha1;
    let ca_file = cluster.dir.join("ca.crt").display().to_string();
    let associate = [
        "associate-oidc-provider",
        "--issuer-url",
        &cluster.issuer_url,
        "--ca-file",
        &ca_file,
        "--output",
        "json",
    ];
    let first: Value = serde_json::from_str(&irsa_against_moto(&cluster, &associate)?)?;
    ensure!(
        first["applied"] == true && first["provider"]["changes"] == true,
        "first run created nothing: {first}"
    );
    let second: Value = serde_json::from_str(&irsa_against_moto(&cluster, &associate)?)?;
    ensure!(
        second["provider"]["changes"] == false && second["applied"] == false,
        "second run changed something: {second}"
    );
    // The thumbprint is the SHA-1 of the last certificate the issuer presents: our CA.
    let expected = Sha1::from(cluster.ca.der()).digest().to_string();
    let thumbprints = &second["provider"]["existing"]["thumbprints"];
    ensure!(
        thumbprints
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == expected.as_str())),
        "thumbprints {thumbprints} lack the CA's {expected}"
    );

    let ns = namespace(&cluster, "iam", json!({})).await?;
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let create_role = [
        "create-role",
        "--issuer-url",
        &cluster.issuer_url,
        "--namespace",
        &ns,
        "--service-account",
        "app",
        "--role-name",
        "e2e-app",
        "--annotate-service-account",
        "--kubeconfig",
        &kubeconfig,
        "--output",
        "json",
    ];
    let created: Value = serde_json::from_str(&irsa_against_moto(&cluster, &create_role)?)?;
    ensure!(
        created["applied"] == true,
        "create-role applied nothing: {created}"
    );
    let again: Value = serde_json::from_str(&irsa_against_moto(&cluster, &create_role)?)?;
    ensure!(
        again["role"]["changes"] == false,
        "second create-role changed something: {again}"
    );

    // The trust policy as IAM stores it.
    let role = std::process::Command::new(cluster.peers.venv_bin("aws"))
        .args([
            "iam",
            "get-role",
            "--role-name",
            "e2e-app",
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &cluster.moto_url)
        .output()?;
    let role: Value = serde_json::from_slice(&role.stdout).with_context(|| {
        format!(
            "aws iam get-role: {}",
            String::from_utf8_lossy(&role.stderr)
        )
    })?;
    let statement = &role["Role"]["AssumeRolePolicyDocument"]["Statement"][0];
    let host = cluster.issuer_url.trim_start_matches("https://");
    let condition = &statement["Condition"]["StringEquals"];
    ensure!(
        statement["Action"] == "sts:AssumeRoleWithWebIdentity"
            && statement["Principal"]["Federated"]
                == format!("arn:aws:iam::123456789012:oidc-provider/{host}").as_str()
            && condition[format!("{host}:sub")]
                == format!("system:serviceaccount:{ns}:app").as_str()
            && condition[format!("{host}:aud")] == AUDIENCE,
        "trust policy: {statement}"
    );

    // The annotated ServiceAccount in the real apiserver, and a pod of it mutated with that role.
    let role_arn = role["Role"]["Arn"]
        .as_str()
        .context("role ARN")?
        .to_string();
    let sa: Value = serde_json::from_str(&cluster.kubectl(&[
        "get",
        "serviceaccount",
        "app",
        "-n",
        &ns,
        "-o",
        "json",
    ])?)?;
    ensure!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role_arn.as_str(),
        "SA not annotated: {sa}"
    );
    let pod = create_pod(&cluster, &ns, simple_pod("app", "app")).await?;
    ensure!(
        env_of(container(&pod, "containers", "app")?, "AWS_ROLE_ARN") == Some(role_arn.as_str()),
        "pod: {pod}"
    );
    Ok(())
}

async fn manifests_render_and_apply_with_server_dry_run(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let manifests = irsa_e2e::peers::workspace_root().join("manifests");
    // A server-side dry run creates nothing, so the namespace every object lives in must exist for real.
    cluster.kubectl(&[
        "apply",
        "-k",
        &manifests.join("base/namespace").display().to_string(),
    ])?;
    let overlays = std::fs::read_dir(manifests.join("overlays"))?;
    let mut checked = Vec::new();
    for overlay in overlays {
        let overlay = overlay?.path();
        let name = overlay
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let rendered = cluster.kubectl(&["kustomize", &overlay.display().to_string()])?;
        // cert-manager's own kinds need its CRDs, which a bare apiserver lacks; everything else must apply.
        let mut kept = Vec::new();
        let mut cert_manager_objects = 0;
        for document in rendered.split("\n---\n") {
            let object: Value =
                serde_yaml::from_str(document).with_context(|| format!("{name}: bad YAML"))?;
            if object["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("cert-manager.io/"))
            {
                cert_manager_objects += 1;
            } else {
                kept.push(document);
            }
        }
        ensure!(
            name != "cert-manager" || cert_manager_objects > 0,
            "the cert-manager overlay has no Certificate"
        );
        let applied = cluster
            .kubectl_stdin(
                &["apply", "--dry-run=server", "-f", "-"],
                Some(&kept.join("\n---\n")),
            )
            .with_context(|| format!("overlay {name}"))?;
        ensure!(applied.contains("(server dry run)"), "{name}: {applied}");
        checked.push(name);
    }
    ensure!(
        checked.len() >= 4,
        "only these overlays were found: {checked:?}"
    );
    Ok(())
}

async fn self_signed_mode_patches_its_ca_bundle_and_is_called(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::Secret;
    let ns = namespace(&cluster, "selfsigned", json!({})).await?;
    let client = cluster.client().await?;
    kube::Api::<Namespace>::all(client.clone())
        .patch(
            &ns,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"labels": {"irsa-e2e/self-signed": "yes"}}}),
            ),
        )
        .await?;
    let (port, admin_port) = (
        irsa_e2e::process::free_port(),
        irsa_e2e::process::free_port(),
    );
    let configuration_name = format!("irsa-self-signed-{ns}");
    // Registered without a caBundle: only the self-signed webhook can make the apiserver trust it.
    let configuration: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": configuration_name},
        "webhooks": [{
            "name": "pod-identity.self-signed.irsa.dev",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/mutate")},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "timeoutSeconds": 3,
            "namespaceSelector": {"matchLabels": {"irsa-e2e/self-signed": "yes"}},
        }],
    }))?;
    let configurations: kube::Api<MutatingWebhookConfiguration> = kube::Api::all(client.clone());
    configurations
        .create(&PostParams::default(), &configuration)
        .await?;
    let tls_dir = cluster.dir.join(format!("self-signed-{ns}"));
    let s = |v: &str| v.to_string();
    cluster.start_irsa(
        "webhook-self-signed",
        &[
            s("webhook"),
            s("serve"),
            s("--self-signed"),
            format!("--kubeconfig={}", cluster.kubeconfig.display()),
            format!("--self-signed-namespace={ns}"),
            s("--self-signed-secret=irsa-webhook-tls"),
            format!("--webhook-configuration={configuration_name}"),
            s("--self-signed-extra-san=127.0.0.1"),
            format!("--self-signed-dir={}", tls_dir.display()),
            // Re-checked every second here (every minute by default), so the renewals below are seen quickly.
            s("--self-signed-check-interval=1s"),
            format!("--listen=127.0.0.1:{port}"),
            format!("--admin-listen=127.0.0.1:{admin_port}"),
        ],
    )?;
    cluster
        .wait_ready(
            "webhook-self-signed",
            &format!("http://127.0.0.1:{admin_port}/readyz"),
        )
        .await?;

    let secret = kube::Api::<Secret>::namespaced(client.clone(), &ns)
        .get("irsa-webhook-tls")
        .await?;
    let ca = secret
        .data
        .as_ref()
        .and_then(|d| d.get("ca.crt"))
        .context("the Secret has no ca.crt")?
        .0
        .clone();
    let patched = configurations.get(&configuration_name).await?;
    let bundle = patched
        .webhooks
        .as_ref()
        .and_then(|w| w[0].client_config.ca_bundle.clone())
        .context("no caBundle")?;
    ensure!(bundle.0 == ca, "the caBundle is not the Secret's CA");

    service_account_with_role(&cluster, &ns, "app", ROLE).await?;
    let pod = create_pod(&cluster, &ns, simple_pod("app", "app")).await?;
    ensure!(token_volume(&pod).is_some(), "pod not mutated: {pod}");
    // failurePolicy Fail: the pod exists only because the apiserver reached the webhook with that caBundle.
    let metrics = cluster
        .metrics(&format!("http://127.0.0.1:{admin_port}"))
        .await?;
    let called = metrics.lines().any(|l| {
        l.starts_with("irsa_webhook_admissions_total{outcome=\"")
            && !l.ends_with(" 0")
            && !l.contains("invalid-request")
    });
    ensure!(
        called,
        "the self-signed webhook counted no admission:\n{metrics}"
    );

    renews_while_running(&cluster, &ns, port, admin_port).await?;
    a_new_ca_keeps_the_previous_one_trusted(&cluster, &ns, port, &configuration_name).await?;

    // SIGTERM drains and exits on its own, well within the drain timeout.
    let pid = cluster
        .pid_of("webhook-self-signed")
        .context("the self-signed webhook's PID")?;
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() {
        ensure!(
            std::time::Instant::now() < deadline,
            "the webhook did not exit within 10 s of SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(cluster.dir.join("logs/webhook-self-signed.log"))?;
    ensure!(
        log.contains("drained; exiting"),
        "no graceful drain in the log:\n{log}"
    );
    Ok(())
}

/// The self-signed webhook (serving on `port`, Secret `irsa-webhook-tls` in `ns`) renews its certificate while
/// running: its leaf is replaced by one in its last 30 days, signed by the same CA, as if eleven months had
/// passed; within a few check intervals the webhook has renewed the Secret, serves the new leaf without a
/// restart, reports the new expiry in its metrics, and the apiserver (same CA, same caBundle) still calls it.
async fn renews_while_running(
    cluster: &Cluster,
    ns: &str,
    port: u16,
    admin_port: u16,
) -> anyhow::Result<()> {
    use irsa_webhook::self_signed::{Material, renew_leaf, san_list};
    use k8s_openapi::api::core::v1::Secret;
    use std::time::{Duration, Instant, SystemTime};

    let secrets = kube::Api::<Secret>::namespaced(cluster.client().await?, ns);
    let mut secret = secrets.get("irsa-webhook-tls").await?;
    let first = Material::from_secret(&secret);
    ensure!(
        served_leaf(port)? == first_pem(&first.tls_crt),
        "the webhook does not serve the Secret's certificate"
    );
    let sans = san_list("irsa-webhook", ns, &["127.0.0.1".to_string()])?;
    let eleven_months_ago = SystemTime::now() - Duration::from_secs(340 * 24 * 3600);
    let aged = renew_leaf(
        first.ca_crt.clone(),
        first.ca_key.clone(),
        &sans,
        eleven_months_ago,
    )?;
    // Same CA: only the leaf and its key differ from what the Secret held.
    secret.data = Some(aged.secret_data());
    secrets
        .replace("irsa-webhook-tls", &PostParams::default(), &secret)
        .await?;

    let deadline = Instant::now() + Duration::from_secs(30);
    let renewed = loop {
        let now = Material::from_secret(&secrets.get("irsa-webhook-tls").await?);
        let renewed = now.tls_crt != aged.tls_crt && now.tls_crt != first.tls_crt;
        if renewed && served_leaf(port)? == first_pem(&now.tls_crt) {
            break now;
        }
        ensure!(
            Instant::now() < deadline,
            "within 30 s the webhook neither renewed the aged certificate in the Secret nor served the renewal \
             (Secret renewed: {renewed})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    ensure!(
        renewed.ca_crt == first.ca_crt,
        "the renewal replaced the CA"
    );
    // The served leaf is a fresh one-year certificate, and the metric says so (the aged one had < 30 days).
    let metrics = cluster
        .metrics(&format!("http://127.0.0.1:{admin_port}"))
        .await?;
    let expiry: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("irsa_webhook_serving_certificate_expiry_timestamp_seconds "))
        .context("no serving-certificate expiry metric")?
        .parse()?;
    let in_300_days = SystemTime::now() + Duration::from_secs(300 * 24 * 3600);
    ensure!(
        expiry
            > in_300_days
                .duration_since(SystemTime::UNIX_EPOCH)?
                .as_secs(),
        "the expiry metric ({expiry}) is not the renewed certificate's"
    );

    let pod = create_pod(cluster, ns, simple_pod("after-renewal", "app")).await?;
    ensure!(
        token_volume(&pod).is_some(),
        "pod created after the renewal not mutated: {pod}"
    );
    Ok(())
}

/// The Secret is deleted while the self-signed webhook runs: within a few check intervals it has made a new CA,
/// serves a leaf of it, and the caBundle holds the new CA first and the previous one after it (so that another
/// replica still serving the previous CA's leaf stays verifiable until it adopts the new one); pods are still
/// mutated through the apiserver.
async fn a_new_ca_keeps_the_previous_one_trusted(
    cluster: &Cluster,
    ns: &str,
    port: u16,
    configuration_name: &str,
) -> anyhow::Result<()> {
    use irsa_webhook::self_signed::Material;
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::Secret;
    use std::time::{Duration, Instant};

    let client = cluster.client().await?;
    let secrets = kube::Api::<Secret>::namespaced(client.clone(), ns);
    let previous = Material::from_secret(&secrets.get("irsa-webhook-tls").await?);
    secrets
        .delete("irsa-webhook-tls", &Default::default())
        .await?;

    let configurations: kube::Api<MutatingWebhookConfiguration> = kube::Api::all(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let current = secrets
            .get_opt("irsa-webhook-tls")
            .await?
            .map(|secret| Material::from_secret(&secret));
        let bundle = configurations
            .get(configuration_name)
            .await?
            .webhooks
            .and_then(|w| w[0].client_config.ca_bundle.clone())
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .unwrap_or_default();
        if let Some(current) = current.filter(|c| c.ca_crt != previous.ca_crt) {
            let expected = [first_pem(&current.ca_crt), first_pem(&previous.ca_crt)];
            let served = served_leaf(port)? == first_pem(&current.tls_crt);
            if served && pem_blocks(&bundle) == expected {
                break;
            }
        }
        ensure!(
            Instant::now() < deadline,
            "within 30 s of the Secret's deletion the webhook did not serve a new CA's leaf with the caBundle \
             holding the new CA then the previous one; bundle now:\n{bundle}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let pod = create_pod(cluster, ns, simple_pod("after-new-ca", "app")).await?;
    ensure!(
        token_volume(&pod).is_some(),
        "pod created after the new CA not mutated: {pod}"
    );
    Ok(())
}

/// The PEM certificate blocks in `text`, each from its BEGIN line to its END line.
fn pem_blocks(text: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    text.split_inclusive(END)
        .filter_map(|part| Some(part[part.find(BEGIN)?..].to_string()))
        .filter(|block| block.ends_with(END))
        .collect()
}

/// The first PEM certificate block in `text` (empty when there is none).
fn first_pem(text: &str) -> String {
    pem_blocks(text).into_iter().next().unwrap_or_default()
}

/// The leaf certificate the server on 127.0.0.1:`port` presents, as PEM (read by `openssl s_client` on a fresh
/// connection: the server re-reads its files per connection).
fn served_leaf(port: u16) -> anyhow::Result<String> {
    let output = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .context("running openssl s_client")?;
    let leaf = first_pem(&String::from_utf8_lossy(&output.stdout));
    ensure!(!leaf.is_empty(), "openssl s_client printed no certificate");
    Ok(leaf)
}
