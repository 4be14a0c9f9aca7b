//! `--self-signed`: the webhook makes its own CA and serving certificate, for clusters without cert-manager.
//!
//! At start [`ensure`] makes the Secret hold a usable pair (reusing it when it is still good), writes the
//! certificate and key where the server reads them, and patches the CA into the `caBundle` of every webhook of
//! its MutatingWebhookConfiguration. The CA key is kept in the Secret (`ca.key`) so that a renewed leaf is
//! signed by the same CA: the `caBundle` then stays the same, and a replica still serving the previous leaf
//! keeps being trusted while the other one renews. When a new CA has to be made, the `caBundle` keeps the
//! previous CA after the new one ([`merged_bundle`]), for the replica that has not adopted it yet.
//! [`keep_renewed`] repeats all of this while the webhook runs.
//!
//! Replicas starting together race on the Secret: the apiserver lets exactly one create (or update, by
//! resourceVersion) win; the losers get 409, re-read, and adopt the winner's material.

use std::path::PathBuf;
use std::time::Duration;

use irsa_serve::tls::TlsFiles;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

mod ca_bundle;
mod files;
mod material;
mod secret;

use ca_bundle::patch_ca_bundle;
pub use ca_bundle::{ca_bundle_patch, merged_bundle};
use files::write_files;
pub use material::{
    Material, RENEW_BEFORE, Reason, Verdict, assess, new_material, renew_leaf, san_list,
};
use secret::ensure_secret;

const FIELD_MANAGER: &str = "irsa-webhook-self-signed";
/// Attempts at settling the Secret (each loss of a race costs one) and at patching the configuration.
const ATTEMPTS: usize = 10;
const RETRY_DELAY: Duration = Duration::from_secs(3);

/// Settings of `--self-signed` mode (flattened into `irsa webhook serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct SelfSignedArgs {
    /// Create a CA and serving certificate at start, keep them in a Secret, patch the caBundle of the webhook
    /// configuration. The certificate and key are then read from `--self-signed-dir`.
    #[arg(long, env = "IRSA_SELF_SIGNED")]
    pub self_signed: bool,

    /// Name of the `kubernetes.io/tls` Secret that keeps the CA and the serving certificate.
    #[arg(
        long,
        env = "IRSA_SELF_SIGNED_SECRET",
        default_value = "irsa-webhook-tls",
        value_name = "NAME"
    )]
    pub self_signed_secret: String,

    /// Namespace of that Secret and of the webhook Service (default: `$POD_NAMESPACE`, else `irsa-system`).
    #[arg(long, env = "IRSA_SELF_SIGNED_NAMESPACE", default_value_t = default_namespace(), value_name = "NAMESPACE")]
    pub self_signed_namespace: String,

    /// Name of the webhook's Service: the certificate is valid for `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`
    /// and `<svc>.<ns>.svc.cluster.local`.
    #[arg(
        long,
        env = "IRSA_SERVICE_NAME",
        default_value = "irsa-webhook",
        value_name = "NAME"
    )]
    pub service_name: String,

    /// Name of the MutatingWebhookConfiguration whose webhooks get the CA as `clientConfig.caBundle`.
    #[arg(
        long,
        env = "IRSA_WEBHOOK_CONFIGURATION",
        default_value = "irsa",
        value_name = "NAME"
    )]
    pub webhook_configuration: String,

    /// More subject alternative names: IP addresses or DNS names (comma-separated in the env var).
    #[arg(
        long = "self-signed-extra-san",
        env = "IRSA_SELF_SIGNED_EXTRA_SANS",
        value_delimiter = ',',
        value_name = "SAN"
    )]
    pub extra_sans: Vec<String>,

    /// Directory where `tls.crt`, `tls.key` and `ca.crt` are written for the server to read. With a
    /// read-only root filesystem, mount an emptyDir there.
    #[arg(
        long = "self-signed-dir",
        env = "IRSA_SELF_SIGNED_DIR",
        default_value = "/tmp/irsa-tls",
        value_name = "DIR"
    )]
    pub dir: PathBuf,

    /// How often the running webhook re-checks the Secret and the caBundle (two GETs when nothing changed): it
    /// renews the serving certificate in its last 30 days (a pod may run for longer than the certificate's
    /// year), adopts what another replica made, and restores a caBundle that was edited.
    #[arg(
        long = "self-signed-check-interval",
        env = "IRSA_SELF_SIGNED_CHECK_INTERVAL",
        value_parser = irsa_serve::duration::parse,
        default_value = "1m",
        value_name = "DURATION"
    )]
    pub check_interval: Duration,
}

/// `$POD_NAMESPACE` (set from the downward API), else `irsa-system`.
pub fn default_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "irsa-system".to_string())
}

/// Why the self-signed certificate could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelfSignedError {
    /// A subject alternative name is neither an IP address nor a DNS name.
    #[error("invalid subject alternative name {0:?}: expected an IP address or a DNS name")]
    InvalidSan(String),
    /// rcgen could not generate a key or a certificate.
    #[error("cannot generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A call to the apiserver failed (RBAC: see the manifests' self-signed overlay).
    #[error("cannot {action}: {source}")]
    Kube {
        /// What was attempted, naming the object.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Other writers kept changing the Secret while this replica tried to settle it.
    #[error("Secret {0} kept changing under concurrent updates; giving up")]
    Contended(String),
    /// The MutatingWebhookConfiguration does not exist (apply the manifests first).
    #[error("MutatingWebhookConfiguration {0} not found")]
    WebhookConfigurationNotFound(String),
    /// A file could not be written to the certificate directory.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Ensures the Secret holds a valid CA and serving certificate (reused when present, valid for more than
/// [`RENEW_BEFORE`] and covering the SANs; otherwise renewed or created), writes `tls.crt` (leaf then CA),
/// `tls.key` and `ca.crt` into `args.dir`, then sets `clientConfig.caBundle` of every webhook of the
/// MutatingWebhookConfiguration (a JSON patch that touches nothing else). Returns the files to serve.
///
/// Idempotent and cheap when nothing changed (two GETs, no write), so it may be called again periodically.
pub async fn ensure(
    client: kube::Client,
    args: &SelfSignedArgs,
) -> Result<TlsFiles, SelfSignedError> {
    let sans = san_list(
        &args.service_name,
        &args.self_signed_namespace,
        &args.extra_sans,
    )?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &args.self_signed_namespace);
    let material = ensure_secret(
        &secrets,
        &args.self_signed_namespace,
        &args.self_signed_secret,
        &sans,
    )
    .await?;
    let files = write_files(&args.dir, &material).await?;
    let configurations: Api<MutatingWebhookConfiguration> = Api::all(client);
    patch_ca_bundle(
        &configurations,
        &args.webhook_configuration,
        &material.ca_crt,
    )
    .await?;
    Ok(files)
}

/// Calls [`ensure`] every `args.check_interval`, for as long as the webhook runs. The server re-reads the
/// files on the next connection after they change; the CA stays the same across renewals, so the `caBundle`
/// does too. A failed check is logged and retried at the next interval: the certificate in use has at least
/// [`RENEW_BEFORE`] left when renewal becomes due, so there is time for RBAC or the apiserver to be fixed.
pub async fn keep_renewed(client: kube::Client, args: SelfSignedArgs) {
    let mut ticks = tokio::time::interval(args.check_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate, and `ensure` just ran at start
    loop {
        ticks.tick().await;
        match ensure(client.clone(), &args).await {
            Ok(_) => tracing::debug!("self-signed: certificate checked"),
            Err(err) => tracing::warn!(
                error = %irsa_serve::logging::error_chain(&err),
                retry_in = ?args.check_interval,
                "self-signed: cannot check or renew the serving certificate"
            ),
        }
    }
}

#[cfg(test)]
mod test_support {
    use std::time::{Duration, SystemTime};

    pub const DAY: Duration = Duration::from_secs(24 * 3600);

    pub fn sans() -> Vec<String> {
        super::san_list("irsa-webhook", "irsa-system", &["127.0.0.1".to_string()]).unwrap()
    }

    pub fn now() -> SystemTime {
        // A fixed instant keeps the tests independent of the clock: 2030-01-01T00:00:00Z.
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000)
    }
}
