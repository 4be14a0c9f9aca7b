//! `irsa webhook serve`: the admission server, its watches, and its admin port.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use irsa_serve::Runtime;
use irsa_serve::args::{AdminArgs, ConnectionArgs, DrainArgs, KubeArgs, ListenArgs, TlsArgs};
use irsa_serve::tls::TlsFiles;

use crate::cache::Index;
use crate::config::InjectionArgs;
use crate::lookup::{LookupLimits, Resolver};
use crate::metrics::Metrics;
use crate::policy::{OnFailure, Policy};
use crate::routes::{AdmissionState, router};
use crate::self_signed::SelfSignedArgs;

/// Flags of `irsa webhook serve`.
#[derive(Clone, Debug, clap::Args)]
// The shared flag groups leave these to each command: the webhook's ports, its drain, its help lines, and
// its TLS rule (the files, unless `--self-signed` makes them).
#[command(
    mut_arg("tls_cert_file", |a| a.required_unless_present("self_signed").help(
        "PEM certificate chain served to the apiserver; re-read when it changes (Secret updates included). \
         Not needed with `--self-signed`",
    )),
    mut_arg("tls_key_file", |a| a
        .required_unless_present("self_signed")
        .help("PEM private key of the serving certificate")),
    mut_arg("listen", |a| a
        .required(false)
        .default_value("0.0.0.0:9443")
        .help("Address of the HTTPS admission endpoint (`POST /mutate`)")),
    mut_arg("admin_listen", |a| a
        .required(false)
        .default_value("0.0.0.0:9090")
        .help("Address of the plain-HTTP admin endpoint (`/livez`, `/readyz`, `/metrics`)")),
    mut_arg("drain_timeout", |a| a
        .required(false)
        .default_value("15s")
        .help("How long a SIGTERM waits for in-flight admissions before exiting")),
)]
pub struct ServeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: TlsArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub self_signed: SelfSignedArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub listen: ListenArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub kube: KubeArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub injection: InjectionArgs,

    /// When a pod's ServiceAccount or Namespace cannot be looked up: `admit` it without credentials (with a
    /// warning and a metric) or `deny` it (its controller retries).
    #[arg(long, env = "IRSA_ON_LOOKUP_FAILURE", value_enum, default_value_t = OnFailure::Admit)]
    pub on_lookup_failure: OnFailure,

    /// When a namespace's `iam.amazonaws.com/permitted` (or, for a pod's legacy `iam.amazonaws.com/role`,
    /// `iam.amazonaws.com/allowed-roles`) does not allow the role: `admit` the pod without credentials (with
    /// a warning) or `deny` it.
    #[arg(long, env = "IRSA_ON_FORBIDDEN_ROLE", value_enum, default_value_t = OnFailure::Admit)]
    pub on_forbidden_role: OnFailure,

    /// How long a direct ServiceAccount or Namespace GET (made when the watch is behind) may take.
    #[arg(long, env = "IRSA_LOOKUP_TIMEOUT", value_parser = irsa_serve::duration::parse, default_value = "1s")]
    pub lookup_timeout: Duration,

    /// Largest AdmissionReview accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "IRSA_MAX_BODY_BYTES", default_value_t = crate::routes::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub drain: DrainArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub connection: ConnectionArgs,
}

/// Runs the webhook until SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.injection.clone().into_config()?;
    let mut runtime = Runtime::bind("irsa_webhook", &args.listen, &args.admin, &args.drain).await?;
    runtime.limit_connections(&args.connection);
    let client = args.kube.client().await?;
    let tls = match args.tls.files() {
        // --self-signed: the CA and certificate live in a Secret, the caBundle is patched into our configuration.
        _ if args.self_signed.self_signed => {
            self_signed_files(client.clone(), &args.self_signed).await?
        }
        Some(files) => files,
        None => anyhow::bail!(
            "--tls-cert-file and --tls-key-file are required unless --self-signed is set"
        ),
    };
    // Load (and so check) the certificate before starting the watches: a crash-looping pod says more than a
    // TLS error. The server is handed this loaded configuration rather than reading the files again.
    let tls = runtime.load_tls(tls)?;
    if args.self_signed.self_signed {
        // Renewed while running, not only at start: a pod can outlive its one-year certificate.
        tokio::spawn(crate::self_signed::keep_renewed(
            client.clone(),
            args.self_signed.clone(),
        ));
    }

    let metrics = Metrics::register(runtime.registry());
    let index = Arc::new(Index::new());

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
        let readiness = runtime.readiness().clone();
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
    // The direct GETs get a client of their own: with the watches' client they could ride a pooled
    // connection opened beside the watches, which a path that stalls the watches stalls too (the e2e fault
    // test `a_service_account_annotated_while_the_watch_is_stalled_is_found_by_a_direct_get`).
    let lookups = args.kube.client().await?;
    let resolver = Resolver::new(
        index,
        lookups,
        config.annotation_prefix.clone(),
        limits,
        metrics.clone(),
    );
    let state = Arc::new(AdmissionState {
        config,
        resolver,
        policy: Policy {
            on_lookup_failure: args.on_lookup_failure,
            on_forbidden_role: args.on_forbidden_role,
        },
        metrics,
    });

    runtime
        .run(router(state, args.max_body_bytes), Some(tls))
        .await;
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|c| c.serve)
    }

    #[test]
    fn the_webhook_defaults_and_tls_rule() {
        Cli::command().debug_assert();
        let serve = parse(&["--tls-cert-file", "c", "--tls-key-file", "k"]).unwrap();
        assert_eq!(serve.listen.listen.to_string(), "0.0.0.0:9443");
        assert_eq!(serve.admin.admin_listen.to_string(), "0.0.0.0:9090");
        assert_eq!(serve.drain.drain_timeout, Duration::from_secs(15));
        // Both files, unless --self-signed makes them.
        assert!(parse(&[]).is_err());
        assert!(parse(&["--tls-cert-file", "c"]).is_err());
        assert!(parse(&["--self-signed"]).is_ok());
    }
}
