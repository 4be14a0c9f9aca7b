//! The end-to-end suite: one local cluster of real peers (see `irsa_e2e::cluster`), shared by every test,
//! run one test at a time. Each test works in namespaces of its own (namespaces never finish deleting
//! without a controller-manager, so names are fresh per run).
//!
//! The tests live by area in the modules below; this file is the runner, and the one place that says in
//! which order they run.
//!
//! Run with `make e2e` (which installs the peers and builds `irsa` first) or
//! `cargo test -p irsa-e2e --test e2e -- [FILTER]`.

mod credentials;
mod doctor;
mod faults;
mod iam;
mod issuer;
mod manifests;
mod migrate;
mod rotation;
mod self_signed;
mod webhook;

use std::process::ExitCode;
use std::sync::Arc;

use irsa_e2e::cluster::Cluster;
use irsa_e2e::peers::Peers;
use irsa_e2e::runner::{self, TestFn};
use irsa_e2e::tests;

/// A role ARN of the AWS form, for tests that only look at what the webhook injects (no STS checks it).
const ROLE: &str = "arn:aws:iam::111122223333:role/e2e-app";

fn main() -> ExitCode {
    let args = runner::arguments();
    // Tests that leave the cluster as they found it, apart from namespaces of their own.
    let ordinary = tests![
        webhook::annotated_pod_gets_env_mount_and_projected_volume,
        webhook::unannotated_pod_is_untouched,
        webhook::skip_label_leaves_the_pod_alone,
        webhook::already_injected_pod_gets_nothing_more,
        webhook::service_account_annotated_then_pod_created_at_once_is_mutated,
        credentials::aws_cli_gets_credentials_from_the_injected_env_alone,
        credentials::boto3_gets_credentials_from_the_injected_env_alone,
        credentials::go_sdk_gets_credentials_from_the_injected_env_alone,
        credentials::token_with_a_wrong_audience_is_refused,
        issuer::issuer_kids_equal_the_apiservers,
        issuer::issuer_publish_to_s3_matches_the_live_issuer,
        webhook::namespace_restriction_stops_a_forbidden_role,
        iam::associate_oidc_provider_and_create_role_against_moto,
        doctor::doctor_passes_a_healthy_setup,
        doctor::doctor_names_injected_failures_with_their_fix,
        doctor::doctor_names_iam_misconfigurations,
        doctor::doctor_names_broken_issuers,
        doctor::doctor_sees_a_skewed_sts_clock,
        manifests::manifests_render_and_apply_with_server_dry_run,
        self_signed::self_signed_mode_patches_its_ca_bundle_and_is_called,
        migrate::migrate_from_kiam_and_kube2iam,
        faults::a_service_account_annotated_while_the_watch_is_stalled_is_found_by_a_direct_get,
        faults::certificate_secret_swapped_under_load_fails_no_handshake,
        faults::slow_clients_are_closed_at_their_timeouts_while_good_ones_are_served,
    ];
    // Tests that change the shared cluster for whoever runs after them, so they run after every other one.
    // Rotation stops kube-apiserver and starts it again with a second signing key, the issuer publishing both:
    // a test after it would meet watchers (the webhook's cache) still reconnecting to a fresh apiserver, and two
    // keys where the others expect the run's one.
    // The apiserver restart under load likewise, before it.
    let disruptive = tests![
        faults::apiserver_restart_mid_load_recovers_the_watch_and_admits_nothing_silently,
        rotation::rotation_keeps_old_and_new_tokens_valid,
    ];
    let tests: Vec<(&'static str, TestFn)> = ordinary.into_iter().chain(disruptive).collect();
    if let Some(listed) = runner::list_only(&args, &tests) {
        return listed.exit_code();
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
    let conclusion = runner::run(&args, &tests, &cluster_ref, &runtime, None);
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
