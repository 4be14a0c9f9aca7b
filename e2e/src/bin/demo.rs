//! `make demo`: the whole IRSA mechanism on this machine, step by step, with real programs.
//!
//! Brings up etcd, kube-apiserver, irsa's issuer and webhook, MinIO (as STS + S3) and moto; creates an annotated
//! ServiceAccount and a pod; shows what the webhook injected; mints the pod's token as the kubelet would; and
//! runs the unmodified AWS CLI with only the injected env. Then keeps the cluster up until Ctrl-C, or tears it
//! down at once with `--down`.
//!
//! `--node` (`make demo-node`) shows the same on a real node instead: irsa installed from its image with
//! `kubectl apply -k`, and a pod whose token the kubelet writes, running an unmodified aws-sdk-go-v2 program.
//! It needs root and the image (`make image`, minutes cold), so the host-process demo stays the default.

use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use irsa_e2e::cluster::{BUCKET, Cluster};
use irsa_e2e::peers::Peers;
use irsa_e2e::scenario::{
    PodWithToken, container, issuer_document, pod_with_token, run_unmodified, token_volume,
};
use serde_json::Value;

fn step(n: u32, text: &str) {
    println!("\n\x1b[1m== {n}. {text}\x1b[0m");
}

fn main() -> ExitCode {
    let down = std::env::args().any(|a| a == "--down");
    let on_node = std::env::args().any(|a| a == "--node");
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: demo [--down] [--node]\n  --down  tear the cluster down after the demo instead of keeping it up\n  \
             --node  on a real node: irsa from its image, the kubelet's token, an SDK program in a pod (root; make image first)"
        );
        return ExitCode::SUCCESS;
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let demo = async {
        if on_node {
            demo_on_node(down).await
        } else {
            demo(down).await
        }
    };
    match runtime.block_on(demo) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(down: bool) -> anyhow::Result<()> {
    step(
        1,
        "Start real peers: etcd, kube-apiserver, irsa issuer + webhook, MinIO (STS + S3), moto (IAM)",
    );
    let mut cluster = Cluster::start(Peers::locate()?).await?;
    println!(
        "kube-apiserver  {}  (--service-account-issuer={})",
        cluster.apiserver_url, cluster.issuer_url
    );
    println!("irsa issuer     {}", cluster.issuer_url);
    println!(
        "irsa webhook    {}  (registered by a MutatingWebhookConfiguration)",
        cluster.webhook_url
    );
    println!(
        "MinIO           {}  (trusts tokens via {}/.well-known/openid-configuration)",
        cluster.minio_url, cluster.issuer_url
    );

    step(
        2,
        "The issuer publishes what STS needs to verify the apiserver's tokens",
    );
    let discovery = issuer_document(&cluster, "/.well-known/openid-configuration").await?;
    println!("{}", serde_json::to_string_pretty(&discovery)?);
    let jwks = issuer_document(&cluster, "/openid/v1/jwks").await?;
    println!(
        "JWKS kids: {}",
        jwks["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| k["kid"].to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    step(
        3,
        "Annotate a ServiceAccount with a role, create a pod for it (no AWS settings in its manifest)",
    );
    println!(
        "ServiceAccount s3-reader: eks.amazonaws.com/role-arn: {}",
        cluster.minio_role_arn
    );
    let PodWithToken {
        namespace,
        pod,
        env,
        root,
    } = pod_with_token(&cluster, "demo").await?;
    println!("kubectl -n {namespace} get pod reader");

    step(4, "What the webhook injected, as stored by the apiserver");
    let app = container(&pod, "containers", "app")?;
    println!("env:\n{}", serde_yaml::to_string(&app["env"])?);
    println!(
        "volumeMounts:\n{}",
        serde_yaml::to_string(&app["volumeMounts"])?
    );
    println!(
        "volume:\n{}",
        serde_yaml::to_string(token_volume(&pod).context("no token volume")?)?
    );

    step(
        5,
        "The kubelet's part: a TokenRequest bound to the pod, written where AWS_WEB_IDENTITY_TOKEN_FILE points",
    );
    let token_file = &env
        .iter()
        .find(|(k, _)| k == "AWS_WEB_IDENTITY_TOKEN_FILE")
        .context("token file")?
        .1;
    let token = std::fs::read_to_string(token_file)?;
    let claims = token.split('.').nth(1).context("a JWT")?;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims)?)?;
    println!(
        "{token_file}\nclaims: {}",
        serde_json::to_string_pretty(&claims)?
    );

    step(
        6,
        "The unmodified AWS CLI, with only the injected env (+ the S3 endpoint): `aws s3 ls`",
    );
    for (k, v) in &env {
        println!("  {k}={v}");
    }
    println!("  AWS_ENDPOINT_URL_S3={}", cluster.minio_url);
    let output = run_unmodified(&cluster, "aws", &["s3", "ls"], &env, root.path())?;
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    anyhow::ensure!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains(BUCKET),
        "the AWS CLI did not get credentials"
    );
    println!(
        "\nThe CLI called sts:AssumeRoleWithWebIdentity with the pod's token; MinIO verified it against irsa's JWKS."
    );

    if down {
        step(7, "Tearing down (--down)");
        return Ok(());
    }
    let dir = cluster.keep();
    step(7, "The cluster stays up until Ctrl-C");
    println!(
        "kubectl --kubeconfig {} get pods -A",
        cluster.kubeconfig.display()
    );
    println!("logs: {}/logs", dir.display());
    tokio::signal::ctrl_c().await?;
    println!("stopping...");
    Ok(())
}

async fn demo_on_node(down: bool) -> anyhow::Result<()> {
    use irsa_e2e::node::{self, Node, NodePeers, host::Host, install, pods};

    step(
        1,
        "Start real peers and a real node: kube-apiserver, controller-manager, scheduler, kubelet, containerd",
    );
    let node_peers = NodePeers::locate()?;
    let host = Host::prepare()?;
    let mut cluster = Cluster::start_with(Peers::locate()?, node::layout()).await?;
    let mut node = Node::start(&cluster, &node_peers, host).await?;
    println!("{}", cluster.kubectl(&["get", "nodes", "-o", "wide"])?);

    step(
        2,
        "Install irsa from its image as the README says: kubectl apply -k (e2e/manifests/node)",
    );
    install::kustomize_install(&cluster).await?;
    println!(
        "{}",
        cluster.kubectl(&[
            "get",
            "deployments,pods",
            "-n",
            pods::IRSA_NAMESPACE,
            "-o",
            "wide"
        ])?
    );

    step(
        3,
        "Annotate a ServiceAccount, run an unmodified aws-sdk-go-v2 program in a pod as uid 1000",
    );
    let ns = pods::namespace_with_app(&cluster, "demo", serde_json::json!({})).await?;
    println!(
        "ServiceAccount app: eks.amazonaws.com/role-arn: {}",
        cluster.minio_role_arn
    );
    let log = pods::run_to_completion(
        &cluster,
        &ns,
        pods::list_bucket_pod(&cluster, "probe", Some(1000)),
    )
    .await?;
    let pod: Value =
        serde_json::from_str(&cluster.kubectl(&["get", "pod", "probe", "-n", &ns, "-o", "json"])?)?;
    let app = container(&pod, "containers", "app")?;
    println!("env of the pod as stored (the webhook added all but the first two):");
    println!("{}", serde_yaml::to_string(&app["env"])?);

    step(
        4,
        "The program's output: credentials from the token the kubelet wrote",
    );
    print!("{log}");

    if down {
        step(5, "Tearing down (--down)");
        node.stop()?;
        return Ok(());
    }
    let dir = cluster.keep();
    step(5, "The node stays up until Ctrl-C");
    println!(
        "kubectl --kubeconfig {} get pods -A",
        cluster.kubeconfig.display()
    );
    println!("logs: {}/logs", dir.display());
    tokio::signal::ctrl_c().await?;
    println!("stopping (restoring the host)...");
    node.stop()?;
    Ok(())
}
