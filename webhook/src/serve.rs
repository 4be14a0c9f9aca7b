//! `irsa webhook serve`: the admission server, its watches, and its admin port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use irsa_serve::tls::TlsFiles;
use irsa_serve::{Readiness, Shutdown};
use prometheus_client::registry::Registry;

use crate::cache::Index;
use crate::config::InjectionArgs;
use crate::lookup::{LookupLimits, Resolver};
use crate::metrics::Metrics;
use crate::self_signed::SelfSignedArgs;
use crate::server::{AdmissionState, OnForbiddenRole, OnLookupFailure, router};

/// Flags of `irsa webhook serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// PEM certificate chain served to the apiserver; re-read when it changes (Secret updates included).
    /// Not needed with `--self-signed`.
    #[arg(
        long,
        env = "IRSA_TLS_CERT_FILE",
        value_name = "FILE",
        required_unless_present = "self_signed"
    )]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of the serving certificate.
    #[arg(
        long,
        env = "IRSA_TLS_KEY_FILE",
        value_name = "FILE",
        required_unless_present = "self_signed"
    )]
    pub tls_key_file: Option<PathBuf>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub self_signed: SelfSignedArgs,

    /// Address of the HTTPS admission endpoint (`POST /mutate`).
    #[arg(long, env = "IRSA_LISTEN", default_value = "0.0.0.0:9443")]
    pub listen: SocketAddr,

    /// Address of the plain-HTTP admin endpoint (`/livez`, `/readyz`, `/metrics`).
    #[arg(long, env = "IRSA_ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,

    /// Kubeconfig file; by default the in-cluster configuration, then `$KUBECONFIG` / `~/.kube/config`.
    #[arg(long, env = "IRSA_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub injection: InjectionArgs,

    /// When a pod's ServiceAccount or Namespace cannot be looked up: `admit` it without credentials (with a
    /// warning and a metric) or `deny` it (its controller retries).
    #[arg(long, env = "IRSA_ON_LOOKUP_FAILURE", value_enum, default_value_t = OnLookupFailure::Admit)]
    pub on_lookup_failure: OnLookupFailure,

    /// When a namespace's `iam.amazonaws.com/permitted` does not allow the role: `admit` the pod without
    /// credentials (with a warning) or `deny` it.
    #[arg(long, env = "IRSA_ON_FORBIDDEN_ROLE", value_enum, default_value_t = OnForbiddenRole::Admit)]
    pub on_forbidden_role: OnForbiddenRole,

    /// How long a direct ServiceAccount or Namespace GET (made when the watch is behind) may take.
    #[arg(long, env = "IRSA_LOOKUP_TIMEOUT", value_parser = irsa_serve::duration::parse, default_value = "1s")]
    pub lookup_timeout: Duration,

    /// Largest AdmissionReview accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "IRSA_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// How long a SIGTERM waits for in-flight admissions before exiting.
    #[arg(long, env = "IRSA_DRAIN_TIMEOUT", value_parser = irsa_serve::duration::parse, default_value = "15s")]
    pub drain_timeout: Duration,
}

/// Runs the webhook until SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.injection.clone().into_config()?;
    let client = irsa_serve::kube_client::client(args.kubeconfig.as_deref()).await?;
    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        // --self-signed: the CA and certificate live in a Secret, the caBundle is patched into our configuration.
        _ if args.self_signed.self_signed => {
            self_signed_files(client.clone(), &args.self_signed).await?
        }
        (Some(cert), Some(key)) => TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => anyhow::bail!(
            "--tls-cert-file and --tls-key-file are required unless --self-signed is set"
        ),
    };
    // Load (and so check) the certificate before starting the watches: a crash-looping pod says more than a
    // TLS error. The server is handed this loaded configuration rather than reading the files again.
    let mut registry = Registry::default();
    let tls = irsa_serve::tls::ReloadingConfig::new(tls)?
        .with_expiry_metric(registry.sub_registry_with_prefix("irsa_webhook"));
    if args.self_signed.self_signed {
        // Renewed while running, not only at start: a pod can outlive its one-year certificate.
        tokio::spawn(crate::self_signed::keep_renewed(
            client.clone(),
            args.self_signed.clone(),
        ));
    }

    let metrics = Metrics::register(&mut registry);
    let index = Arc::new(Index::new());
    let readiness = Readiness::new();
    let shutdown = Shutdown::on_signals(args.drain_timeout, readiness.clone());

    let (accounts_synced, accounts_ready) = tokio::sync::oneshot::channel();
    let (namespaces_synced, namespaces_ready) = tokio::sync::oneshot::channel();
    tokio::spawn(crate::watcher::watch_service_accounts(
        client.clone(),
        index.clone(),
        config.annotation_prefix.clone(),
        metrics.clone(),
        accounts_synced,
    ));
    tokio::spawn(crate::watcher::watch_namespaces(
        client.clone(),
        index.clone(),
        metrics.clone(),
        namespaces_synced,
    ));
    {
        // Ready only once both initial lists are applied: before that every pod would be a cache miss.
        let readiness = readiness.clone();
        tokio::spawn(async move {
            if accounts_ready.await.is_ok() && namespaces_ready.await.is_ok() {
                tracing::info!("ServiceAccount and Namespace caches synced: ready");
                readiness.set(true);
            }
        });
    }

    let limits = LookupLimits {
        timeout: args.lookup_timeout,
        ..LookupLimits::default()
    };
    let resolver = Resolver::new(
        index,
        client,
        config.annotation_prefix.clone(),
        limits,
        metrics.clone(),
    );
    let state = Arc::new(AdmissionState {
        config,
        resolver,
        on_lookup_failure: args.on_lookup_failure,
        on_forbidden_role: args.on_forbidden_role,
        metrics,
    });

    let listener = bind(args.listen).await?;
    let admin_listener = bind(args.admin_listen).await?;
    tracing::info!(listen = %args.listen, admin = %args.admin_listen, "irsa webhook serving");
    let admin = irsa_serve::serve(
        admin_listener,
        irsa_serve::admin::router(Arc::new(registry), readiness),
        None,
        shutdown.clone(),
    );
    let webhook = irsa_serve::serve(
        listener,
        router(state, args.max_body_bytes),
        Some(tls),
        shutdown,
    );
    tokio::join!(webhook, admin);
    tracing::info!("drained; exiting");
    Ok(())
}

async fn self_signed_files(
    client: kube::Client,
    args: &SelfSignedArgs,
) -> anyhow::Result<TlsFiles> {
    let files = crate::self_signed::ensure(client, args)
        .await
        .context("--self-signed: preparing the serving certificate")?;
    tracing::info!(secret = %args.self_signed_secret, configuration = %args.webhook_configuration, "self-signed serving certificate ready; caBundle patched");
    Ok(files)
}

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}
