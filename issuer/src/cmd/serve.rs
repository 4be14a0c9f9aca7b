//! `irsa issuer serve`: serve the discovery document and the JWKS, reloaded from key files, the apiserver or the
//! external signer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::{ArgGroup, Args};
use irsa_serve::args::{AdminArgs, ConnectionArgs, DrainArgs, KubeArgs, ListenArgs, TlsArgs};
use irsa_serve::{Listeners, Readiness, Runtime, Shutdown};
use tokio::net::TcpListener;

use super::{KeyFileArgs, SignerArgs, paths};
use crate::apiserver;
use crate::documents::{DocumentStore, Publisher};
use crate::metrics::Metrics;
use crate::reload::{self, KeyFiles};
use crate::routes::{self, DEFAULT_MAX_AGE};
use crate::signer;

/// How often key files are re-read when `--reload-interval` is not given.
pub const DEFAULT_FILE_INTERVAL: Duration = Duration::from_secs(5);
/// How often the apiserver's JWKS is re-fetched when `--reload-interval` is not given.
pub const DEFAULT_APISERVER_INTERVAL: Duration = Duration::from_secs(60);

/// `irsa issuer serve`: serve the discovery document and the JWKS over HTTPS.
#[derive(Debug, Clone, Args)]
#[command(group(
    ArgGroup::new("keys").required(true).args(["public_key_files", "from_apiserver", "signer_socket"])
))]
// The shared flag groups leave these to each command: the issuer's ports, its drain, its help lines, and its
// rules (the TLS files go together and exclude --plain-http; --kubeconfig is only for --from-apiserver).
#[command(
    mut_arg("kubeconfig", |a| {
        let help = a.get_help().map(ToString::to_string).unwrap_or_default();
        a.requires("from_apiserver").help(format!("{help} (with --from-apiserver)"))
    }),
    // The signer's refresh hint paces its fetches: an interval of our own would only contradict it.
    mut_arg("signer_socket", |a| a.conflicts_with("reload_interval")),
    mut_arg("tls_cert_file", |a| a.requires("tls_key_file")),
    mut_arg("tls_key_file", |a| a.requires("tls_cert_file")),
    mut_arg("listen", |a| a
        .required(false)
        .default_value("0.0.0.0:8443")
        .value_name("ADDR")
        .help("Address to serve the documents on")),
    mut_arg("admin_listen", |a| a
        .required(false)
        .default_value("0.0.0.0:8081")
        .value_name("ADDR")),
    mut_arg("drain_timeout", |a| a
        .required(false)
        .default_value("10s")
        .value_name("DURATION")),
)]
pub struct ServeArgs {
    /// The issuer URL, exactly as the apiserver's --service-account-issuer (the tokens' `iss`), trailing
    /// slash and all. The documents are served under its path.
    #[arg(long, env = "IRSA_ISSUER_URL", value_name = "URL")]
    pub issuer_url: String,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub keys: KeyFileArgs,

    /// Republish the apiserver's own /openid/v1/jwks (cleaned for STS) instead of key files; for clusters
    /// whose apiserver is not reachable from the internet. Needs the ClusterRole
    /// system:service-account-issuer-discovery.
    #[arg(long, env = "IRSA_FROM_APISERVER", conflicts_with = "public_key_files")]
    pub from_apiserver: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub signer: SignerArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub kube: KubeArgs,

    /// The `jwks_uri` to publish (default: <issuer-url path>/openid/v1/jwks on the issuer's host). Its path is
    /// where this server answers with the JWKS.
    #[arg(long, env = "IRSA_JWKS_URI", value_name = "URL")]
    pub jwks_uri: Option<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,

    /// Serve plain HTTP (behind a TLS-terminating proxy) and accept an http:// issuer URL (tests only: STS
    /// fetches over HTTPS).
    #[arg(long, env = "IRSA_PLAIN_HTTP", conflicts_with_all = ["tls_cert_file", "tls_key_file"])]
    pub plain_http: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub listen: ListenArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,

    /// Cache-Control max-age of both documents, in seconds. Keep it well under the rotation overlap.
    #[arg(long, env = "IRSA_MAX_AGE", value_name = "SECONDS", default_value_t = DEFAULT_MAX_AGE)]
    pub max_age: u32,

    /// How often to re-read the key files (default 5s) or re-fetch the apiserver's JWKS (default 60s):
    /// `500ms`, `5s`, `2m`, or plain seconds. Not with --signer-socket: the signer's refresh hint sets that pace.
    #[arg(long, env = "IRSA_RELOAD_INTERVAL", value_name = "DURATION", value_parser = irsa_serve::duration::parse)]
    pub reload_interval: Option<Duration>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub drain: DrainArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: ConnectionArgs,
}

/// The prefix of the issuer's metrics.
const METRIC_PREFIX: &str = "irsa_issuer";

/// Runs `irsa issuer serve` until SIGTERM (drained) or a second signal.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = Runtime::bind(METRIC_PREFIX, &args.listen, &args.admin, &args.drain).await?;
    run(args, runtime).await
}

/// `serve` on listeners bound by the caller, until `shutdown` (tests and embedding). `readiness` turns true once
/// documents are published.
pub async fn run_server(
    args: ServeArgs,
    listener: TcpListener,
    admin_listener: TcpListener,
    shutdown: Shutdown,
    readiness: Readiness,
) -> anyhow::Result<()> {
    let listeners = Listeners {
        main: listener,
        admin: admin_listener,
    };
    run(
        args,
        Runtime::new(METRIC_PREFIX, listeners, shutdown, readiness),
    )
    .await
}

/// The issuer's part of the start-up: its documents, their reloading, its router; the runtime does the rest.
async fn run(args: ServeArgs, mut runtime: Runtime) -> anyhow::Result<()> {
    runtime.limit_connections(&args.connection);
    let paths = Arc::new(paths(
        &args.issuer_url,
        args.jwks_uri.as_deref(),
        args.plain_http,
    )?);
    let tls = match (args.tls.files(), args.plain_http) {
        (Some(files), false) => Some(files),
        (None, true) => None,
        _ => bail!(
            "give --tls-cert-file and --tls-key-file, or --plain-http when a TLS-terminating proxy is in front"
        ),
    };
    // Loaded (and so checked) before anything starts, and read once.
    let tls = tls.map(|files| runtime.load_tls(files)).transpose()?;
    let metrics = Metrics::register(runtime.registry());
    let store = Arc::new(DocumentStore::new());
    let publisher = Publisher::new(paths.clone(), store.clone(), metrics.clone());
    let stopped = {
        let shutdown = runtime.shutdown().clone();
        move || async move { shutdown.triggered().await }
    };

    if args.from_apiserver {
        let client = args.kube.client().await?;
        // A mismatched issuer is the most common cause of "invalid identity token": say so at start.
        match apiserver::fetch_issuer(&client).await {
            Ok(iss) if iss != paths.issuer.as_str() => tracing::warn!(
                apiserver = %iss, flag = %paths.issuer,
                "the apiserver's issuer differs from --issuer-url: STS will refuse its tokens"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("could not read the apiserver's issuer: {e}"),
        }
        let interval = args.reload_interval.unwrap_or(DEFAULT_APISERVER_INTERVAL);
        let ready = runtime.readiness().clone();
        tokio::spawn(apiserver::run(
            client,
            interval,
            publisher,
            move || ready.set(true),
            stopped(),
        ));
    } else if let Some(socket) = args.signer.signer_socket {
        // Unready until the signer's first key set is published: it may start after the issuer.
        let ready = runtime.readiness().clone();
        tokio::spawn(signer::run(
            socket,
            publisher,
            move || ready.set(true),
            stopped(),
        ));
    } else {
        let mut files = KeyFiles::new(args.keys.public_key_files);
        // Start only with a complete key set: a missing or bad file at start is an error, later a warning.
        let loaded = files.poll()?.unwrap_or_default();
        publisher.publish(&loaded.keys, &loaded.warnings);
        runtime.readiness().set(true);
        let interval = args.reload_interval.unwrap_or(DEFAULT_FILE_INTERVAL);
        tokio::spawn(reload::run(files, interval, publisher, stopped()));
    }

    tracing::info!(
        issuer = %paths.issuer, discovery = %paths.discovery_path, jwks = %paths.jwks_path,
        "serving the issuer's documents"
    );
    let router = routes::router(&paths, store, &metrics, args.max_age);
    runtime.run(router, tls).await;
    Ok(())
}
