//! `irsa issuer serve` as a standalone binary, for benchmarks before the `irsa` command wires it.
//!
//! `cargo run --release -p irsa-issuer --example serve -- --issuer-url https://... --public-key-file k.pem
//! --tls-cert-file tls.crt --tls-key-file tls.key`

use clap::Parser;

/// Serve the OIDC discovery document and JWKS.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    serve: irsa_issuer::cli::ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    irsa_issuer::cli::serve(Cli::parse().serve).await
}
