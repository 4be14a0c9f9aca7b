//! The node suite: irsa run the way users run it. A real node (containerd, runc, a CNI bridge, the kubelet,
//! kube-controller-manager and kube-scheduler; see `irsa_e2e::node`) joins the harness's apiserver; irsa is
//! installed from its image with `kubectl apply -k` of the shipped overlay (through the test overlay
//! `e2e/manifests/node`, which changes only what this machine forces), and later with `helm install`. Pods
//! run an unmodified aws-sdk-go-v2 program that reads the token file the kubelet wrote and lists a bucket at
//! MinIO, the STS.
//!
//! Needs root, and one node per machine. Run with `make node` or, after `make image` and
//! `hack/install-peers.sh node`, `cargo test -p irsa-e2e --test node -- [FILTER]`.

mod credentials;
mod helm;
mod install;
mod refresh;
mod rollout;

use std::process::ExitCode;
use std::sync::Arc;

use irsa_e2e::cluster::Cluster;
use irsa_e2e::node::host::Host;
use irsa_e2e::node::{self, Node, NodePeers};
use irsa_e2e::peers::Peers;
use irsa_e2e::runner::{self, TestFn};
use irsa_e2e::tests;

fn main() -> ExitCode {
    let args = runner::arguments();
    let tests: Vec<(&'static str, TestFn)> = tests![
        // Started first, checked last: the kubelet refreshes a 600 s token only after 480 s.
        refresh::token_refresh_probe_starts,
        install::irsa_runs_from_its_image_as_its_own_service_accounts,
        install::rbac_is_exactly_what_the_manifests_grant,
        install::issuer_in_the_cluster_republishes_the_apiservers_keys,
        credentials::sdk_program_gets_credentials_from_the_kubelets_token,
        credentials::sdk_program_as_non_root_reads_the_token,
        credentials::guard_rejects_traffic_to_the_service_cidr,
        rollout::rollout_restart_under_pod_creation_mutates_every_pod,
        rollout::one_webhook_pod_killed_the_other_serves,
        rollout::both_webhook_pods_gone_pods_start_without_credentials,
        // The kustomize install is replaced by the chart's; the refresh probe needs neither any more.
        helm::helm_install_passes_the_same_smoke_test,
        refresh::token_refresh_keeps_credentials_coming,
    ];
    if let Some(listed) = runner::list_only(&args, &tests) {
        return listed.exit_code();
    }

    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let (peers, node_peers) = match Peers::locate().and_then(|p| Ok((p, NodePeers::locate()?))) {
        Ok(found) => found,
        Err(err) => {
            eprintln!("node: cannot run: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    let host = match Host::prepare() {
        Ok(host) => host,
        Err(err) => {
            eprintln!("node: cannot prepare the host: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let cluster = match runtime.block_on(Cluster::start_with(peers, node::layout())) {
        Ok(cluster) => cluster,
        Err(err) => {
            eprintln!("node: the cluster did not start: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut cluster = cluster;
    let node = match runtime.block_on(Node::start(&cluster, &node_peers, host)) {
        Ok(node) => node,
        Err(err) => {
            eprintln!("node: the node did not start: {err:#}");
            // Dropping the partial node (inside start) already restored the host.
            eprintln!("node: logs kept in {}/logs", cluster.keep().display());
            return ExitCode::FAILURE;
        }
    };
    let installed = runtime.block_on(irsa_e2e::node::install::kustomize_install(&cluster));
    eprintln!(
        "[node] cluster, node and irsa up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let kept = std::env::var_os("IRSA_E2E_KEEP").is_some();
    let cluster_ref = Arc::new(cluster);
    let install_error = installed
        .err()
        .map(|err| format!("irsa was not installed: {err:#}"));
    let conclusion = runner::run(&args, &tests, &cluster_ref, &runtime, install_error);
    let mut cluster = Arc::try_unwrap(cluster_ref)
        .ok()
        .expect("tests are done with the cluster");
    let teardown = std::time::Instant::now();
    let mut node = node;
    let restored = node.stop();
    cluster.stop();
    eprintln!(
        "[node] torn down in {:.1} s",
        teardown.elapsed().as_secs_f64()
    );
    if conclusion.has_failed() || kept || restored.is_err() {
        eprintln!(
            "node: logs of every peer kept in {}/logs",
            cluster.keep().display()
        );
    }
    if let Err(err) = restored {
        eprintln!("node: teardown failed: {err:#}");
        return ExitCode::FAILURE;
    }
    conclusion.exit_code()
}
