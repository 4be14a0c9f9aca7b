//! irsa signs the cluster's tokens (issue #17): `irsa signer serve` on a unix socket, kube-apiserver started
//! with `--service-account-signing-endpoint` and no key file, the issuer publishing the signer's public key.
//! A TokenRequest token carries the signer's kid, and MinIO's STS accepts it.
//!
//! Run with `cargo build -p irsa && cargo test -p irsa-e2e --test signer` (the peers installed by `make e2e`).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use irsa_e2e::cluster::{AUDIENCE, Cluster, Layout};
use irsa_e2e::peers::Peers;
use irsa_e2e::process::Process;
use irsa_e2e::scenario;
use irsa_testing::pki::signing_key;
use irsa_testing::wait::{Check, Wait};
use libtest_mimic::{Arguments, Failed, Trial};
use sha2::{Digest as _, Sha256};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let trial = Trial::test(
        "apiserver_signs_through_irsa_and_minio_accepts_the_token",
        || {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let runtime =
                tokio::runtime::Runtime::new().map_err(|e| Failed::from(e.to_string()))?;
            runtime
                .block_on(apiserver_signs_through_irsa_and_minio_accepts_the_token())
                .map_err(|err| Failed::from(format!("{err:#}")))
        },
    );
    libtest_mimic::run(&args, vec![trial]).exit_code()
}

/// kube-apiserver's kid of a PEM `PUBLIC KEY`: base64url(sha256(DER SubjectPublicKeyInfo)).
fn kid_of(public_pem: &str) -> anyhow::Result<String> {
    let body: String = public_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der)))
}

/// The `kid` of a JWT's header.
fn kid_in(token: &str) -> anyhow::Result<String> {
    let header = token.split('.').next().context("a JWT")?;
    let header: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header)?)?;
    Ok(header["kid"].as_str().context("a kid")?.to_string())
}

async fn apiserver_signs_through_irsa_and_minio_accepts_the_token() -> anyhow::Result<()> {
    let peers = Peers::locate()?;
    let run = tempfile::Builder::new()
        .prefix("irsa-e2e-signer-")
        .tempdir()?;
    let (keys, logs) = (run.path().join("keys"), run.path().join("logs"));
    std::fs::create_dir_all(&keys)?;
    std::fs::create_dir_all(&logs)?;
    let (private, public) = signing_key();
    std::fs::write(keys.join("sa.key"), private)?;
    let kid = kid_of(&public)?;
    let socket = run.path().join("signer.sock");

    let mut signer = Process::start(
        "signer",
        &peers.irsa,
        &[
            "signer".into(),
            "serve".into(),
            format!("--socket={}", socket.display()),
            format!("--key-dir={}", keys.display()),
            "--log-level=debug".into(),
        ],
        &[],
        &logs,
    )?;
    wait_for_socket(&socket, &mut signer).await?;

    let layout = Layout {
        signing_endpoint: Some(socket.clone()),
        ..Layout::default()
    };
    let cluster = Cluster::start_with(peers, layout).await;
    let mut cluster = match cluster {
        Ok(cluster) => cluster,
        Err(err) => {
            let _ = run.keep();
            return Err(err.context(format!(
                "the cluster did not start with the signer (signer log: {})",
                signer.log().display()
            )));
        }
    };
    let result = check(&cluster, &kid, &public).await;
    if result.is_err() {
        eprintln!(
            "signer: logs kept in {} and {}/logs",
            run.keep().display(),
            cluster.keep().display()
        );
    }
    cluster.stop();
    signer.stop();
    result
}

async fn wait_for_socket(socket: &Path, signer: &mut Process) -> anyhow::Result<()> {
    for _ in 0..300 {
        if socket.exists() {
            return Ok(());
        }
        ensure!(
            !signer.exited(),
            "irsa signer serve exited:\n{}",
            signer.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("no socket at {} after 30 s", socket.display())
}

async fn check(cluster: &Cluster, kid: &str, public: &str) -> anyhow::Result<()> {
    // The issuer publishes the signer's key: the harness's own key file is replaced by the signer's public
    // key (write then rename; the issuer re-reads it every second).
    let staged = cluster.dir.join("issuer-keys.pem.new");
    std::fs::write(&staged, public)?;
    std::fs::rename(&staged, &cluster.issuer_keys)?;
    let http = cluster.http()?;
    let jwks = format!("{}/openid/v1/jwks", cluster.issuer_url);
    Wait::up_to(Duration::from_secs(30))
        .every(Duration::from_millis(200))
        .try_until("the issuer publishes the signer's kid", || async {
            let kids = scenario::jwks_kids(&http, &jwks, None).await?;
            anyhow::Ok(if kids.contains(kid) {
                Check::Ready(())
            } else {
                Check::NotYet(format!("{kids:?}"))
            })
        })
        .await?;

    let ns = scenario::app_with_minio_role(cluster, "signer").await?;
    let token = cluster.mint_token(&ns, "app", "app", AUDIENCE, 3600)?;
    ensure!(
        kid_in(&token)? == kid,
        "the token's kid {} is not the signer's {kid}",
        kid_in(&token)?
    );
    let output = scenario::assume_role_at_minio(cluster, &token)?;
    ensure!(
        output.status.success(),
        "MinIO refused the signer's token: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let credentials: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    ensure!(
        credentials["Credentials"]["AccessKeyId"].is_string(),
        "no credentials: {credentials}"
    );
    Ok(())
}
