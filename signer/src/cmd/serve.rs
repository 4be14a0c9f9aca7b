//! `irsa signer serve`: kube-apiserver's external token signer on a unix socket, rotating keys without a
//! restart of anything.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::Args;
use irsa_serve::{Readiness, Shutdown};
use prometheus_client::registry::Registry;
use tokio_stream::wrappers::UnixListenerStream;

use crate::cmd::args::KeyArgs;
use crate::key_file::NewKeyAlgorithm;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::reload::{AutoRotate, Reloader};
use crate::service::Signer;

/// How long in-flight signatures may take to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// `irsa signer serve`: sign kube-apiserver's service-account tokens with the keys of a directory or of a KMS
/// key set.
///
/// Start kube-apiserver with `--service-account-signing-endpoint=<socket>` and without
/// `--service-account-signing-key-file` / `--service-account-key-file`; publish the same keys with
/// `irsa issuer serve` so that STS verifies with exactly the keys that sign. `irsa signer rotate` adds the
/// next key (a file, or a KMS key); this process publishes it at once and signs with it after --pre-publish.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The unix socket to serve on (created mode 0600; a stale socket is replaced).
    #[arg(long, env = "IRSA_SIGNER_SOCKET")]
    pub socket: PathBuf,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub keys: KeyArgs,

    /// How often the apiserver should re-fetch the public keys, in seconds.
    #[arg(long, env = "IRSA_SIGNER_REFRESH_HINT_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub refresh_hint_seconds: i64,

    /// How often to re-read --key-dir or to list --kms-key-set (states are also re-evaluated at each
    /// transition).
    #[arg(long, env = "IRSA_SIGNER_RELOAD_INTERVAL", value_name = "DURATION",
          value_parser = irsa_serve::duration::parse, default_value = "10s")]
    pub reload_interval: Duration,

    /// Rotate automatically: when the signing key was published this long ago and no successor is
    /// pre-published, add the next key: a file in --key-dir (which must then be writable), or a KMS key of
    /// --kms-key-set (kms:CreateKey, kms:TagResource). Off by default.
    #[arg(long, env = "IRSA_SIGNER_ROTATE_AFTER", value_name = "DURATION",
          value_parser = irsa_serve::duration::parse)]
    pub rotate_after: Option<Duration>,

    /// The algorithm of the keys the automatic rotation writes.
    #[arg(
        long,
        env = "IRSA_SIGNER_ROTATE_ALGORITHM",
        value_enum,
        default_value = "RS256"
    )]
    pub rotate_algorithm: NewKeyAlgorithm,

    /// Serve /livez, /readyz and /metrics (plain HTTP) on this address, e.g. 127.0.0.1:9102. Off by default.
    #[arg(long, env = "IRSA_SIGNER_METRICS_ADDRESS", value_name = "ADDRESS")]
    pub metrics_address: Option<SocketAddr>,
}

/// Runs `irsa signer serve` until SIGTERM or SIGINT, then removes the socket.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let policy = args.keys.policy(Some(args.refresh_hint_seconds))?;
    let readiness = Readiness::new();
    // The first signal makes the signer unready and stops it; a second one exits at once.
    let shutdown = Shutdown::on_signals(DRAIN_TIMEOUT, Duration::ZERO, readiness.clone());
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    if let Some(address) = args.metrics_address {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        tracing::info!(%address, "serving /livez, /readyz and /metrics");
        tokio::spawn(irsa_serve::serve(
            listener,
            irsa_serve::admin::router(Arc::new(registry), readiness.clone()),
            None,
            shutdown.clone(),
        ));
    }

    // The admin port answers (unready) while the keys load.
    let source = args.keys.source.source().await?;
    let keys = match source.load().await {
        // The automatic mode starts an empty source with its first key.
        Err(e) if e.is_empty() && args.rotate_after.is_some() => {
            let key = source
                .create(args.rotate_algorithm, SystemTime::now())
                .await?;
            tracing::info!(%key, "added the first key");
            source.load().await?
        }
        loaded => loaded?,
    };
    let live = Arc::new(Live::new(keys, policy, SystemTime::now()).context("loading the keys")?);
    let snapshot = live.current();
    for (key, state) in snapshot.states() {
        tracing::info!(
            kid = key.kid(),
            algorithm = %key.algorithm(),
            key = %key.location(),
            state = state.name(),
            "key loaded"
        );
    }
    metrics.set_states(&snapshot);

    let listener = crate::socket::bind(&args.socket)?;
    tracing::info!(socket = %args.socket.display(), "serving externaljwt.v1.ExternalJWTSigner");
    let reloader = Reloader {
        source,
        live: live.clone(),
        interval: args.reload_interval,
        auto_rotate: args.rotate_after.map(|after| AutoRotate {
            after,
            algorithm: args.rotate_algorithm,
        }),
        metrics: metrics.clone(),
    };
    let stopped = shutdown.clone();
    tokio::spawn(reloader.run(async move { stopped.triggered().await }));
    let signer = Signer::new(
        live,
        args.keys.max_token_expiration_seconds,
        args.refresh_hint_seconds,
    )
    .with_metrics(metrics);
    readiness.set(true);
    let stopped = shutdown.clone();
    let served = tonic::transport::Server::builder()
        .add_service(signer.into_server())
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
            stopped.triggered().await;
            tracing::info!("shutting down");
        })
        .await;
    let _ = std::fs::remove_file(&args.socket);
    served.context("serving the signer")
}
