//! `irsa`: IAM roles for Kubernetes service accounts, for any cluster.
//!
//! Thin on purpose: parse the command line, install the TLS provider, set up logging, call a library.

use std::io::Write;

use clap::{Parser, Subcommand};
use irsa_serve::logging::LogArgs;

/// Every build allocates with mimalloc, so what is tested and benchmarked allocates as the image does. The static
/// (musl) build, which the image ships, needs it: musl's own allocator made the webhook's admission path five
/// times slower (criterion, 6.6 KB review: 197 µs against 38 µs with glibc). And glibc's was a fifth of the
/// webhook's CPU under load (`perf record` at saturation: malloc, free and malloc_consolidate; bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// IAM roles for Kubernetes service accounts, for any cluster.
///
/// Pods whose ServiceAccount carries `eks.amazonaws.com/role-arn` get AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE
/// and a projected service-account token, so every AWS SDK obtains credentials from
/// sts:AssumeRoleWithWebIdentity; the issuer publishes the keys STS verifies those tokens with.
#[derive(Parser)]
#[command(name = "irsa", version, propagate_version = true, max_term_width = 110)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    /// Threads that run requests (default: one per CPU). 1 runs everything on one thread: no cross-thread
    /// wake-ups, so the lowest tail latency when the pod has about one core.
    #[arg(long, env = "IRSA_WORKER_THREADS", global = true, value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: Option<u16>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The mutating admission webhook that injects web-identity credentials into pods.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// The OIDC issuer: the discovery document and JWKS that STS fetches to verify service-account tokens.
    #[command(subcommand)]
    Issuer(IssuerCommand),
    /// Register the cluster's issuer as an IAM OIDC identity provider (idempotent; prints its plan).
    AssociateOidcProvider(irsa_iam::cmd::associate::AssociateArgs),
    /// Create (or reconcile) an IAM role that only one service account can assume.
    CreateRole(irsa_iam::cmd::create_role::CreateRoleArgs),
    /// Move kiam/kube2iam roles to web identity: plan (read-only), then --apply the trust statements.
    Migrate(Box<irsa_iam::cmd::migrate::MigrateArgs>),
    /// Walk the chain a pod's credentials travel (cluster, issuer, IAM, STS, clock, SDK) and name the broken
    /// link with its fix.
    Doctor(Box<irsa_doctor::cmd::DoctorArgs>),
    /// kube-apiserver's external token signer (--service-account-signing-endpoint): signs with the keys the
    /// issuer publishes.
    #[command(subcommand)]
    Signer(SignerCommand),
}

#[derive(Subcommand)]
enum SignerCommand {
    /// Serve externaljwt.v1.ExternalJWTSigner on a unix socket with the keys of a directory or of AWS KMS.
    Serve(Box<irsa_signer::cmd::serve::ServeArgs>),
    /// Add the next signing key (a file or a KMS key): published now, signing after --pre-publish (--prune
    /// removes retired keys).
    Rotate(Box<irsa_signer::cmd::rotate::RotateArgs>),
    /// Show each key's rotation state (pre-published, active, retiring, retired) and dates.
    Status(Box<irsa_signer::cmd::status::StatusArgs>),
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Serve the admission webhook over HTTPS (POST /mutate), with an admin port for probes and metrics.
    Serve(Box<irsa_webhook::cmd::serve::ServeArgs>),
    /// Show what the webhook would do to a pod, offline: prints the JSON Patch, the mutated pod or the review.
    Mutate(Box<irsa_webhook::cmd::mutate::MutateArgs>),
}

#[derive(Subcommand)]
enum IssuerCommand {
    /// Serve the discovery document and JWKS over HTTPS (or plain HTTP behind an ingress).
    Serve(Box<irsa_issuer::cmd::serve::ServeArgs>),
    /// Write the discovery document and JWKS for static hosting: to a directory or an S3 bucket.
    Publish(Box<irsa_issuer::cmd::publish::PublishArgs>),
    /// Print the JWKS of the given public keys.
    Jwks(irsa_issuer::cmd::jwks::JwksArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut builder = match cli.worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if let Some(n) = cli.worker_threads.filter(|&n| n > 1) {
        builder.worker_threads(n.into());
    }
    let runtime = builder.enable_all().build();
    match runtime {
        Ok(runtime) => runtime.block_on(start(cli)),
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn start(cli: Cli) -> std::process::ExitCode {
    // One provider for every TLS user in the process (servers, kube, the AWS SDK).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if let Err(err) = cli.log.init() {
        eprintln!("error: invalid --log-level: {err}");
        return std::process::ExitCode::from(2);
    }
    match run(cli.command).await {
        Ok(code) => code,
        Err(err) => {
            // Each cause once: many library errors already name their cause in their message, and anyhow's
            // `{:#}` would print it again for every layer that also exposes it as its source.
            eprintln!("error: {}", irsa_serve::logging::error_chain(err.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the command; its exit code is 0, or what the command says (`irsa doctor`: 1 when a check failed, 2 when
/// it could not run).
async fn run(command: Command) -> anyhow::Result<std::process::ExitCode> {
    let mut out = std::io::stdout();
    match command {
        Command::Webhook(WebhookCommand::Serve(args)) => {
            irsa_webhook::cmd::serve::serve(*args).await
        }
        Command::Webhook(WebhookCommand::Mutate(args)) => {
            irsa_webhook::cmd::mutate::run_mutate(*args, std::io::stdin().lock(), &mut out)
        }
        Command::Issuer(IssuerCommand::Serve(args)) => irsa_issuer::cmd::serve::serve(*args).await,
        Command::Issuer(IssuerCommand::Publish(args)) => {
            irsa_issuer::cmd::publish::publish(*args, &mut out).await
        }
        Command::Issuer(IssuerCommand::Jwks(args)) => irsa_issuer::cmd::jwks::jwks(args, &mut out),
        Command::AssociateOidcProvider(args) => {
            irsa_iam::cmd::associate::associate(args, &mut out).await
        }
        Command::CreateRole(args) => irsa_iam::cmd::create_role::create_role(args, &mut out).await,
        Command::Migrate(args) => irsa_iam::cmd::migrate::migrate(*args, &mut out).await,
        Command::Doctor(args) => {
            let code = irsa_doctor::cmd::run(&args, &mut out).await;
            out.flush()?;
            return Ok(code.into());
        }
        Command::Signer(SignerCommand::Serve(args)) => irsa_signer::cmd::serve::serve(*args).await,
        Command::Signer(SignerCommand::Rotate(args)) => {
            irsa_signer::cmd::rotate::rotate(&args, &mut out).await
        }
        Command::Signer(SignerCommand::Status(args)) => {
            irsa_signer::cmd::status::status(&args, &mut out).await
        }
    }?;
    out.flush()?;
    Ok(std::process::ExitCode::SUCCESS)
}
