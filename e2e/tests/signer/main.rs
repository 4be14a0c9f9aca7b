//! irsa signs the cluster's tokens (issue #17): `irsa signer serve` on a unix socket, kube-apiserver started
//! with `--service-account-signing-endpoint` and no key file, the issuer reading the signer's key set itself
//! (`irsa issuer serve --signer-socket`, no key file, no copy step).
//! A TokenRequest token carries the signer's kid and MinIO's STS accepts it; a rotation while a token is in
//! use; the signer down, then restarted.
//!
//! Run with `cargo build -p irsa && cargo test -p irsa-e2e --test signer` (the peers installed by `make e2e`).

mod signer;
mod signs;

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use irsa_e2e::cluster::{Cluster, Layout};
use irsa_e2e::peers::Peers;
use irsa_e2e::runner::{self, TestFn};
use irsa_e2e::tests;

/// The signer every test shares, started before the cluster (the apiserver needs its socket to start).
static SIGNER: OnceLock<signer::Signer> = OnceLock::new();

/// The suite's signer.
fn the_signer() -> &'static signer::Signer {
    SIGNER
        .get()
        .expect("the signer is set up before the tests run")
}

fn main() -> ExitCode {
    let args = runner::arguments();
    let tests: Vec<(&'static str, TestFn)> = tests![
        signs::apiserver_signs_through_irsa_and_minio_accepts_the_token,
        signs::a_rotation_keeps_the_token_in_use_valid_and_new_tokens_carry_the_new_kid,
        signs::with_the_signer_down_token_requests_fail_and_a_restart_recovers,
    ];
    if let Some(listed) = runner::list_only(&args, &tests) {
        return listed.exit_code();
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let run = match tempfile::Builder::new()
        .prefix("irsa-e2e-signer-")
        .tempdir()
    {
        Ok(run) => run,
        Err(err) => {
            eprintln!("signer: cannot create a run directory: {err}");
            return ExitCode::FAILURE;
        }
    };
    let cluster = match runtime.block_on(setup(run.path())) {
        Ok(cluster) => cluster,
        Err(err) => {
            eprintln!(
                "signer: cannot run: {err:#} (signer logs kept in {}/logs)",
                run.keep().display()
            );
            return ExitCode::FAILURE;
        }
    };
    let kept = std::env::var_os("IRSA_E2E_KEEP").is_some();
    let cluster_ref = Arc::new(cluster);
    let conclusion = runner::run(&args, &tests, &cluster_ref, &runtime, None);
    let mut cluster = Arc::try_unwrap(cluster_ref)
        .ok()
        .expect("tests are done with the cluster");
    cluster.stop();
    the_signer().stop();
    if conclusion.has_failed() || kept {
        eprintln!(
            "signer: logs kept in {}/logs and {}/logs",
            run.keep().display(),
            cluster.keep().display()
        );
    }
    drop(cluster);
    conclusion.exit_code()
}

/// The signer with a first key (written by `irsa signer rotate`, which signs at once), then the issuer reading
/// it (ready after its first FetchKeys), then the apiserver calling it.
async fn setup(run: &std::path::Path) -> anyhow::Result<Cluster> {
    let peers = Peers::locate()?;
    let signer = SIGNER
        .get_or_init(|| signer::Signer::new(&peers.irsa, run).expect("the signer's directories"));
    signer.command("rotate", &[])?;
    signer.start("signer").await?;
    let layout = Layout {
        signing_endpoint: Some(signer.socket.clone()),
        issuer_signer_socket: Some(signer.socket.clone()),
        ..Layout::default()
    };
    Cluster::start_with(peers, layout).await
}
