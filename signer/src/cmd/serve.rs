//! `irsa signer serve`: kube-apiserver's external token signer on a unix socket.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use tokio_stream::wrappers::UnixListenerStream;

use crate::keys::KeySet;
use crate::service::Signer;

/// `irsa signer serve`: sign kube-apiserver's service-account tokens with the keys of a directory.
///
/// Start kube-apiserver with `--service-account-signing-endpoint=<socket>` and without
/// `--service-account-signing-key-file` / `--service-account-key-file`; publish the same keys with
/// `irsa issuer serve` so that STS verifies with exactly the keys that sign.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The unix socket to serve on (created mode 0600; a stale socket is replaced).
    #[arg(long, env = "IRSA_SIGNER_SOCKET")]
    pub socket: PathBuf,
    /// A directory of PEM private keys, one per file (RSA of 2048 bits or more, EC P-256/384/521). Every key
    /// is published; the newest file signs.
    #[arg(long, env = "IRSA_SIGNER_KEY_DIR")]
    pub key_dir: PathBuf,
    /// The file in --key-dir whose key signs, instead of the newest.
    #[arg(long, env = "IRSA_SIGNER_SIGNING_KEY")]
    pub signing_key: Option<String>,
    /// The longest token lifetime the apiserver may issue, in seconds (at least 600). The apiserver exits if
    /// its --service-account-max-token-expiration is longer, and defaults to this when that flag is unset.
    #[arg(long, env = "IRSA_SIGNER_MAX_TOKEN_EXPIRATION_SECONDS", default_value_t = 86_400,
          value_parser = clap::value_parser!(i64).range(600..))]
    pub max_token_expiration_seconds: i64,
    /// How often the apiserver should re-fetch the public keys, in seconds.
    #[arg(long, env = "IRSA_SIGNER_REFRESH_HINT_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub refresh_hint_seconds: i64,
}

/// Runs `irsa signer serve` until SIGTERM or SIGINT, then removes the socket.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let keys = KeySet::load_dir(&args.key_dir, args.signing_key.as_deref())
        .context("loading the signing keys")?;
    for key in keys.keys() {
        tracing::info!(
            kid = key.kid(),
            algorithm = %key.algorithm(),
            file = %key.file().display(),
            signing = Arc::ptr_eq(key, keys.active()),
            "key loaded"
        );
    }
    let listener = crate::socket::bind(&args.socket)?;
    tracing::info!(socket = %args.socket.display(), "serving externaljwt.v1.ExternalJWTSigner");
    let signer = Signer::new(
        Arc::new(keys),
        args.max_token_expiration_seconds,
        args.refresh_hint_seconds,
    );
    let served = tonic::transport::Server::builder()
        .add_service(signer.into_server())
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown())
        .await;
    let _ = std::fs::remove_file(&args.socket);
    served.context("serving the signer")
}

async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down");
}
