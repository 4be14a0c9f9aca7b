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
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, bail, ensure};
use irsa_e2e::cluster::{AUDIENCE, BUCKET, Cluster, REGION};
use irsa_e2e::peers::Peers;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::Api;
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
        namespace_restriction_stops_a_forbidden_role,
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

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh namespace name for this run.
fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

async fn namespace(cluster: &Cluster, prefix: &str, annotations: Value) -> anyhow::Result<String> {
    let name = unique(prefix);
    let api: Api<Namespace> = Api::all(cluster.client().await?);
    let ns =
        serde_json::from_value(json!({"metadata": {"name": name, "annotations": annotations}}))?;
    api.create(&PostParams::default(), &ns)
        .await
        .context("creating the namespace")?;
    Ok(name)
}

async fn service_account(
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
async fn create_pod(cluster: &Cluster, ns: &str, pod: Value) -> anyhow::Result<Value> {
    let api: Api<Pod> = Api::namespaced(cluster.client().await?, ns);
    let pod: Pod = serde_json::from_value(pod)?;
    let created = api
        .create(&PostParams::default(), &pod)
        .await
        .context("creating the pod")?;
    Ok(serde_json::to_value(created)?)
}

fn simple_pod(name: &str, account: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"serviceAccountName": account, "containers": [{"name": "app", "image": "registry.example/app:1"}]}
    })
}

fn env_of<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

fn container<'a>(pod: &'a Value, list: &str, name: &str) -> anyhow::Result<&'a Value> {
    pod["spec"][list]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .with_context(|| format!("no {list} entry named {name}"))
}

fn token_volume(pod: &Value) -> Option<&Value> {
    pod["spec"]["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == "aws-iam-token")
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
    service_account(
        &cluster,
        &ns,
        "app",
        json!({"eks.amazonaws.com/role-arn": ROLE}),
    )
    .await?;
    let mut pod = simple_pod("skipped", "app");
    pod["metadata"]["labels"] = json!({"eks.amazonaws.com/skip-pod-identity-webhook": "true"});
    let pod = create_pod(&cluster, &ns, pod).await?;
    ensure!(token_volume(&pod).is_none(), "skip label ignored: {pod}");
    Ok(())
}

async fn already_injected_pod_gets_nothing_more(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace(&cluster, "again", json!({})).await?;
    service_account(
        &cluster,
        &ns,
        "app",
        json!({"eks.amazonaws.com/role-arn": ROLE}),
    )
    .await?;
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
        service_account(
            &cluster,
            &ns,
            &account,
            json!({"eks.amazonaws.com/role-arn": ROLE}),
        )
        .await?;
        let pod = create_pod(&cluster, &ns, simple_pod(&format!("fresh-{i}"), &account)).await?;
        let app = container(&pod, "containers", "app")?;
        ensure!(
            env_of(app, "AWS_ROLE_ARN") == Some(ROLE),
            "pod {i} admitted unmutated: {app}"
        );
    }
    Ok(())
}

/// A mutated pod for an SA with MinIO's role, and the token the kubelet would have written for it, placed
/// where `AWS_WEB_IDENTITY_TOKEN_FILE` points under a temp root. Returns (injected env, root).
async fn pod_with_token(
    cluster: &Cluster,
    prefix: &str,
) -> anyhow::Result<(Vec<(String, String)>, tempfile::TempDir)> {
    let ns = namespace(cluster, prefix, json!({})).await?;
    service_account(
        cluster,
        &ns,
        "s3-reader",
        json!({"eks.amazonaws.com/role-arn": cluster.minio_role_arn}),
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
    Ok((env, root))
}

/// Runs a program of the venv with ONLY the injected env, the local endpoint and a region: no keys, no config.
fn run_unmodified(
    cluster: &Cluster,
    program: &str,
    args: &[&str],
    env: &[(String, String)],
    home: &Path,
) -> anyhow::Result<std::process::Output> {
    Ok(std::process::Command::new(cluster.peers.venv_bin(program))
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
        .env("AWS_ENDPOINT_URL", &cluster.minio_url)
        .env("AWS_REGION", REGION)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()?)
}

async fn aws_cli_gets_credentials_from_the_injected_env_alone(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let (env, root) = pod_with_token(&cluster, "cli").await?;
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
    let (env, root) = pod_with_token(&cluster, "boto3").await?;
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
    service_account(
        &cluster,
        &ns,
        "app",
        json!({"eks.amazonaws.com/role-arn": cluster.minio_role_arn}),
    )
    .await?;
    create_pod(&cluster, &ns, simple_pod("app", "app")).await?;
    let home = tempfile::tempdir()?;
    let assume = |token: String| -> anyhow::Result<std::process::Output> {
        run_unmodified(
            &cluster,
            "aws",
            &[
                "sts",
                "assume-role-with-web-identity",
                "--role-arn",
                &cluster.minio_role_arn,
                "--role-session-name",
                "e2e",
                "--web-identity-token",
                &token,
            ],
            &[],
            home.path(),
        )
    };
    let right = assume(cluster.mint_token(&ns, "app", "app", AUDIENCE, 3600)?)?;
    ensure!(
        right.status.success(),
        "the right audience was refused: {}",
        String::from_utf8_lossy(&right.stderr)
    );
    let wrong = assume(cluster.mint_token(&ns, "app", "app", "not-sts.example", 3600)?)?;
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

async fn namespace_restriction_stops_a_forbidden_role(cluster: Arc<Cluster>) -> anyhow::Result<()> {
    let ns = namespace(
        &cluster,
        "restricted",
        json!({"iam.amazonaws.com/permitted": "arn:aws:iam::111122223333:role/team-a-.*"}),
    )
    .await?;
    service_account(
        &cluster,
        &ns,
        "allowed",
        json!({"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/team-a-app"}),
    )
    .await?;
    service_account(
        &cluster,
        &ns,
        "forbidden",
        json!({"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/admin"}),
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
    service_account(
        &cluster,
        &ns,
        "app",
        json!({"eks.amazonaws.com/role-arn": cluster.minio_role_arn}),
    )
    .await?;
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
    let home = tempfile::tempdir()?;
    for (which, token) in [("old", &old_token), ("new", &new_token)] {
        let output = run_unmodified(
            &cluster,
            "aws",
            &[
                "sts",
                "assume-role-with-web-identity",
                "--role-arn",
                &cluster.minio_role_arn,
                "--role-session-name",
                "rotation",
                "--web-identity-token",
                token,
            ],
            &[],
            home.path(),
        )?;
        ensure!(
            output.status.success(),
            "{which} token refused after rotation: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
