//! `irsa issuer serve | publish | jwks`: flags and the glue between them and the library.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{ArgGroup, Args};
use irsa_serve::tls::{ReloadingConfig, TlsFiles};
use irsa_serve::{Readiness, Shutdown};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::documents::{DocumentStore, Documents, Publisher};
use crate::issuer_url::{IssuerUrl, Routes};
use crate::keys::{self, LoadedKeys};
use crate::metrics::Metrics;
use crate::publish::{self, S3Uri};
use crate::reload::{self, KeyFiles};
use crate::server::{self, DEFAULT_MAX_AGE};
use crate::{Warning, apiserver};

/// How often key files are re-read when `--reload-interval` is not given.
pub const DEFAULT_FILE_INTERVAL: Duration = Duration::from_secs(5);
/// How often the apiserver's JWKS is re-fetched when `--reload-interval` is not given.
pub const DEFAULT_APISERVER_INTERVAL: Duration = Duration::from_secs(60);

/// `irsa issuer serve`: serve the discovery document and the JWKS over HTTPS.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("keys").required(true).args(["public_key_files", "from_apiserver"])))]
pub struct ServeArgs {
    /// The issuer URL, exactly as the apiserver's --service-account-issuer (the tokens' `iss`), trailing
    /// slash and all. The documents are served under its path.
    #[arg(long, env = "IRSA_ISSUER_URL", value_name = "URL")]
    pub issuer_url: String,

    /// A PEM file of public keys: PUBLIC KEY, RSA PUBLIC KEY, CERTIFICATE, or a private key (RSA PRIVATE KEY,
    /// PRIVATE KEY, EC PRIVATE KEY) of which only the public half is published. Repeat for several files
    /// (the apiserver's --service-account-key-file values); re-read when they change.
    #[arg(
        long = "public-key-file",
        env = "IRSA_PUBLIC_KEY_FILE",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub public_key_files: Vec<PathBuf>,

    /// Republish the apiserver's own /openid/v1/jwks (cleaned for STS) instead of key files; for clusters
    /// whose apiserver is not reachable from the internet. Needs the ClusterRole
    /// system:service-account-issuer-discovery.
    #[arg(long, env = "IRSA_FROM_APISERVER", conflicts_with = "public_key_files")]
    pub from_apiserver: bool,

    /// Kubeconfig for --from-apiserver (default: in-cluster, then $KUBECONFIG or ~/.kube/config).
    #[arg(
        long,
        env = "IRSA_KUBECONFIG",
        value_name = "FILE",
        requires = "from_apiserver"
    )]
    pub kubeconfig: Option<PathBuf>,

    /// The `jwks_uri` to publish (default: <issuer-url path>/openid/v1/jwks on the issuer's host). Its path is
    /// where this server answers with the JWKS.
    #[arg(long, env = "IRSA_JWKS_URI", value_name = "URL")]
    pub jwks_uri: Option<String>,

    /// Serving certificate chain (PEM, leaf first); re-read when it changes.
    #[arg(
        long,
        env = "IRSA_TLS_CERT_FILE",
        value_name = "FILE",
        requires = "tls_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,

    /// Serving private key (PEM); re-read when it changes.
    #[arg(
        long,
        env = "IRSA_TLS_KEY_FILE",
        value_name = "FILE",
        requires = "tls_cert_file"
    )]
    pub tls_key_file: Option<PathBuf>,

    /// Serve plain HTTP (behind a TLS-terminating proxy) and accept an http:// issuer URL (tests only: STS
    /// fetches over HTTPS).
    #[arg(long, env = "IRSA_PLAIN_HTTP", conflicts_with_all = ["tls_cert_file", "tls_key_file"])]
    pub plain_http: bool,

    /// Address to serve the documents on.
    #[arg(
        long,
        env = "IRSA_LISTEN",
        value_name = "ADDR",
        default_value = "0.0.0.0:8443"
    )]
    pub listen: SocketAddr,

    /// Address of the admin port (/livez, /readyz, /metrics; plain HTTP).
    #[arg(
        long,
        env = "IRSA_ADMIN_LISTEN",
        value_name = "ADDR",
        default_value = "0.0.0.0:8081"
    )]
    pub admin_listen: SocketAddr,

    /// Cache-Control max-age of both documents, in seconds. Keep it well under the rotation overlap.
    #[arg(long, env = "IRSA_MAX_AGE", value_name = "SECONDS", default_value_t = DEFAULT_MAX_AGE)]
    pub max_age: u32,

    /// How often to re-read the key files (default 5s) or re-fetch the apiserver's JWKS (default 60s):
    /// `500ms`, `5s`, `2m`, or plain seconds.
    #[arg(long, env = "IRSA_RELOAD_INTERVAL", value_name = "DURATION", value_parser = irsa_serve::duration::parse)]
    pub reload_interval: Option<Duration>,

    /// How long in-flight requests may take to finish after SIGTERM.
    #[arg(long, env = "IRSA_DRAIN_TIMEOUT", value_name = "DURATION", value_parser = irsa_serve::duration::parse, default_value = "10s")]
    pub drain_timeout: Duration,
}

/// `irsa issuer publish`: write the two documents for static hosting (a directory or S3).
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("destination").required(true).args(["out", "s3_uri"])))]
pub struct PublishArgs {
    /// The issuer URL, exactly as the apiserver's --service-account-issuer (the tokens' `iss`).
    #[arg(long, env = "IRSA_ISSUER_URL", value_name = "URL")]
    pub issuer_url: String,

    /// A PEM file of public keys (see `serve`); repeat for several. Publish old and new keys together while
    /// rotating.
    #[arg(
        long = "public-key-file",
        env = "IRSA_PUBLIC_KEY_FILE",
        value_name = "FILE",
        value_delimiter = ',',
        required = true
    )]
    pub public_key_files: Vec<PathBuf>,

    /// The `jwks_uri` to publish (default: <issuer-url path>/openid/v1/jwks on the issuer's host).
    #[arg(long, env = "IRSA_JWKS_URI", value_name = "URL")]
    pub jwks_uri: Option<String>,

    /// The site root to write into: files land at DIR<issuer path>/.well-known/openid-configuration and
    /// DIR<jwks path>, the layout a static site (S3 website, nginx) serves as-is.
    #[arg(long, env = "IRSA_OUT", value_name = "DIR", conflicts_with = "s3_uri")]
    pub out: Option<PathBuf>,

    /// Upload to s3://bucket[/prefix] (the prefix is the site root; the issuer path is appended), with the
    /// right Content-Type and Cache-Control and no ACL. Credentials and endpoint from the standard AWS chain
    /// (AWS_ENDPOINT_URL_S3 for MinIO and other emulators).
    #[arg(long, env = "IRSA_S3_URI", value_name = "S3URI")]
    pub s3_uri: Option<String>,

    /// Cache-Control max-age of the documents, in seconds.
    #[arg(long, env = "IRSA_MAX_AGE", value_name = "SECONDS", default_value_t = DEFAULT_MAX_AGE)]
    pub max_age: u32,

    /// Print what would be written, write nothing.
    #[arg(long, env = "IRSA_DRY_RUN")]
    pub dry_run: bool,
}

/// `irsa issuer jwks`: print the JWKS of key files.
#[derive(Debug, Clone, Args)]
pub struct JwksArgs {
    /// A PEM file of public keys (see `serve`); repeat for several.
    #[arg(
        long = "public-key-file",
        env = "IRSA_PUBLIC_KEY_FILE",
        value_name = "FILE",
        value_delimiter = ',',
        required = true
    )]
    pub public_key_files: Vec<PathBuf>,
}

fn routes(issuer_url: &str, jwks_uri: Option<&str>, allow_http: bool) -> anyhow::Result<Routes> {
    let issuer = IssuerUrl::parse(issuer_url, allow_http)?;
    let routes = Routes::new(issuer, jwks_uri, allow_http)?;
    for w in url_warnings(&routes) {
        tracing::warn!("{w}");
    }
    Ok(routes)
}

/// What is legal here but will bite in AWS.
fn url_warnings(routes: &Routes) -> Vec<Warning> {
    let mut out = Vec::new();
    let issuer = &routes.issuer;
    if !issuer.is_https() {
        out.push(Warning::new(
            issuer.as_str(),
            "http:// issuer: STS only fetches https:// (tests only)",
        ));
    }
    if issuer.port().is_some() {
        out.push(Warning::new(
            issuer.as_str(),
            "AWS refuses OIDC provider URLs with a port (fine for emulators)",
        ));
    }
    if !routes.jwks_on_issuer_origin() {
        out.push(Warning::new(
            &routes.jwks_uri,
            "the jwks_uri is on another host: serve the JWKS there too (this server answers on its path)",
        ));
    }
    out
}

fn log_warnings(warnings: &[Warning]) {
    for w in warnings {
        tracing::warn!("{w}");
    }
}

/// Runs `irsa issuer serve` until SIGTERM (drained) or a second signal.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let admin = TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("listening on {}", args.admin_listen))?;
    let readiness = Readiness::new();
    let shutdown = Shutdown::on_signals(args.drain_timeout, readiness.clone());
    run_server(args, listener, admin, shutdown, readiness).await
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
    let routes = Arc::new(routes(
        &args.issuer_url,
        args.jwks_uri.as_deref(),
        args.plain_http,
    )?);
    let tls = match (args.tls_cert_file, args.tls_key_file, args.plain_http) {
        (Some(cert), Some(key), false) => Some(TlsFiles { cert, key }),
        (None, None, true) => None,
        _ => bail!(
            "give --tls-cert-file and --tls-key-file, or --plain-http when a TLS-terminating proxy is in front"
        ),
    };
    let mut registry = Registry::default();
    // Loaded (and so checked) before anything starts, and read once.
    let tls = tls
        .map(|files| {
            ReloadingConfig::new(files).map(|config| {
                config.with_expiry_metric(registry.sub_registry_with_prefix("irsa_issuer"))
            })
        })
        .transpose()?;
    let metrics = Metrics::register(&mut registry);
    let store = Arc::new(DocumentStore::new());
    let publisher = Publisher::new(routes.clone(), store.clone(), metrics.clone());
    let stopped = {
        let shutdown = shutdown.clone();
        move || async move { shutdown.triggered().await }
    };

    if args.from_apiserver {
        let client = apiserver::client(args.kubeconfig.as_deref()).await?;
        // A mismatched issuer is the most common cause of "invalid identity token": say so at start.
        match apiserver::fetch_issuer(&client).await {
            Ok(iss) if iss != routes.issuer.as_str() => tracing::warn!(
                apiserver = %iss, flag = %routes.issuer,
                "the apiserver's issuer differs from --issuer-url: STS will refuse its tokens"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("could not read the apiserver's issuer: {e}"),
        }
        let interval = args.reload_interval.unwrap_or(DEFAULT_APISERVER_INTERVAL);
        let ready = readiness.clone();
        tokio::spawn(apiserver::run(
            client,
            interval,
            publisher,
            move || ready.set(true),
            stopped(),
        ));
    } else {
        let mut files = KeyFiles::new(args.public_key_files);
        // Start only with a complete key set: a missing or bad file at start is an error, later a warning.
        let loaded = files.poll()?.unwrap_or_default();
        publisher.publish(&loaded.keys, &loaded.warnings);
        readiness.set(true);
        let interval = args.reload_interval.unwrap_or(DEFAULT_FILE_INTERVAL);
        tokio::spawn(reload::run(files, interval, publisher, stopped()));
    }

    tracing::info!(
        issuer = %routes.issuer, discovery = %routes.discovery_path, jwks = %routes.jwks_path,
        addr = %listener.local_addr()?, tls = tls.is_some(), "serving"
    );
    let router = server::router(&routes, store, &metrics, args.max_age);
    let admin_router = irsa_serve::admin::router(Arc::new(registry), readiness);
    let admin = tokio::spawn(irsa_serve::serve(
        admin_listener,
        admin_router,
        None,
        shutdown.clone(),
    ));
    irsa_serve::serve(listener, router, tls, shutdown).await;
    admin.await.context("admin server task")?;
    Ok(())
}

fn load(files: &[PathBuf]) -> anyhow::Result<LoadedKeys> {
    let loaded = keys::load_files(files)?;
    log_warnings(&loaded.warnings);
    Ok(loaded)
}

/// Runs `irsa issuer publish`, reporting on `out` what was (or would be) written.
pub async fn publish(args: PublishArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let routes = routes(&args.issuer_url, args.jwks_uri.as_deref(), false)?;
    let loaded = load(&args.public_key_files)?;
    let (docs, warnings) = Documents::render(&routes, &loaded.keys);
    log_warnings(&warnings);
    let files = publish::files(&routes, &docs)?;
    let cache_control = format!("public, max-age={}", args.max_age);
    let s3 = args.s3_uri.as_deref().map(S3Uri::parse).transpose()?;
    let destinations: Vec<String> = match (&args.out, &s3) {
        (Some(dir), None) => files
            .iter()
            .map(|f| publish::path_in(dir, f).display().to_string())
            .collect(),
        (None, Some(target)) => files
            .iter()
            .map(|f| format!("s3://{}/{}", target.bucket, target.key(f)))
            .collect(),
        _ => bail!("give exactly one of --out DIR and --s3-uri s3://bucket/prefix"),
    };
    if args.dry_run {
        for (file, dest) in files.iter().zip(&destinations) {
            writeln!(
                out,
                "would write {dest} (Content-Type: {}, Cache-Control: {cache_control}):",
                file.content_type
            )?;
            out.write_all(&file.body)?;
            writeln!(out)?;
        }
        return Ok(());
    }
    match (&args.out, &s3) {
        (Some(dir), _) => {
            for path in publish::write_dir(dir, &files)? {
                writeln!(out, "wrote {}", path.display())?;
            }
        }
        (_, Some(target)) => {
            let client = publish::s3_client().await;
            for uri in publish::upload(&client, target, &files, args.max_age).await? {
                writeln!(out, "uploaded {uri} ({cache_control})")?;
            }
        }
        _ => unreachable!("checked above"),
    }
    writeln!(
        out,
        "issuer {} publishes {} key(s): {}",
        routes.issuer,
        docs.keys.len(),
        kids(&docs)
    )?;
    Ok(())
}

fn kids(docs: &Documents) -> String {
    docs.keys
        .iter()
        .map(|k| k.kid())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `irsa issuer jwks`: prints the JWKS, exactly the bytes `serve` and `publish` publish, and a newline.
pub fn jwks(args: JwksArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let loaded = load(&args.public_key_files)?;
    let rendered = crate::jwks::render(&loaded.keys);
    log_warnings(&rendered.warnings);
    out.write_all(&rendered.json)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Command {
        Serve(ServeArgs),
        Publish(PublishArgs),
        Jwks(JwksArgs),
    }

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        use clap::Parser as _;
        Cli::try_parse_from(std::iter::once("issuer").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn flags() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
        let serve = parse(&[
            "serve",
            "--issuer-url",
            "https://h",
            "--public-key-file",
            "a",
            "--public-key-file",
            "b",
            "--plain-http",
        ]);
        let Ok(Command::Serve(serve)) = serve else {
            panic!("{serve:?}")
        };
        assert_eq!(
            serve.public_key_files,
            [PathBuf::from("a"), PathBuf::from("b")]
        );
        assert_eq!(serve.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(serve.admin_listen.to_string(), "0.0.0.0:8081");
        assert_eq!(serve.max_age, 3600);
        // A key source is required, and only one.
        assert!(parse(&["serve", "--issuer-url", "https://h"]).is_err());
        assert!(
            parse(&[
                "serve",
                "--issuer-url",
                "https://h",
                "--public-key-file",
                "a",
                "--from-apiserver"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "serve",
                "--issuer-url",
                "https://h",
                "--from-apiserver",
                "--kubeconfig",
                "k"
            ])
            .is_ok()
        );
        // TLS files go together and exclude --plain-http.
        assert!(
            parse(&[
                "serve",
                "--issuer-url",
                "https://h",
                "--public-key-file",
                "a",
                "--tls-cert-file",
                "c"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "serve",
                "--issuer-url",
                "u",
                "--public-key-file",
                "a",
                "--tls-cert-file",
                "c",
                "--tls-key-file",
                "k",
                "--plain-http"
            ])
            .is_err()
        );
        // publish needs exactly one destination.
        assert!(
            parse(&[
                "publish",
                "--issuer-url",
                "https://h",
                "--public-key-file",
                "a"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "publish",
                "--issuer-url",
                "https://h",
                "--public-key-file",
                "a",
                "--out",
                "d",
                "--s3-uri",
                "s3://b"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "publish",
                "--issuer-url",
                "https://h",
                "--public-key-file",
                "a",
                "--s3-uri",
                "s3://b",
                "--dry-run"
            ])
            .is_ok()
        );
        assert!(parse(&["jwks"]).is_err());
    }
}
