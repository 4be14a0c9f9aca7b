//! `irsa issuer serve | publish | jwks`: one file per command, and what they share (the issuer URL's paths,
//! loading key files, logging warnings).

use std::path::PathBuf;

use clap::Args;
use irsa_core::IssuerUrl;

use crate::Warning;
use crate::keys::{self, LoadedKeys};
use crate::paths::Paths;

pub mod jwks;
pub mod publish;
pub mod serve;

/// The key files whose public keys are published (`--public-key-file`), defined once for the three commands.
///
/// Whether the flag is required, and its help line, are each command's (`mut_arg`, as with irsa-serve's
/// groups): `jwks` and `publish` require it and point to `serve`'s help; `serve` can take its keys from the
/// apiserver instead, and its help (this one) says what the files may hold.
#[derive(Debug, Clone, Default, Args)]
pub struct KeyFileArgs {
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
}

/// The external signer whose key set is published (`--signer-socket`), defined once for `serve` and `publish`.
/// Each command makes it one of its key sources (an argument group: exactly one source).
#[derive(Debug, Clone, Default, Args)]
pub struct SignerArgs {
    /// The unix socket of `irsa signer serve` (the socket kube-apiserver's --service-account-signing-endpoint
    /// names): publish the keys the signer signs with, read with its FetchKeys call, instead of key files. Use
    /// it when irsa signs the cluster's tokens: the JWKS then follows the signer's rotations with no copy
    /// step, and its kids are checked to be the ones tokens carry. `serve` asks again as often as the
    /// signer's refresh hint says (1s to 5m) and keeps the last good set while the signer is unreachable.
    #[arg(long, env = "IRSA_ISSUER_SIGNER_SOCKET", value_name = "PATH")]
    pub signer_socket: Option<PathBuf>,
}

/// The paths of `issuer_url` (and `jwks_uri`), after logging what will bite in AWS.
fn paths(issuer_url: &str, jwks_uri: Option<&str>, allow_http: bool) -> anyhow::Result<Paths> {
    let issuer = IssuerUrl::parse(issuer_url, allow_http)?;
    let paths = Paths::new(issuer, jwks_uri, allow_http)?;
    for w in paths.warnings() {
        tracing::warn!("{w}");
    }
    Ok(paths)
}

fn log_warnings(warnings: &[Warning]) {
    for w in warnings {
        tracing::warn!("{w}");
    }
}

fn load(files: &[PathBuf]) -> anyhow::Result<LoadedKeys> {
    let loaded = keys::load_files(files)?;
    log_warnings(&loaded.warnings);
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::jwks::JwksArgs;
    use super::publish::PublishArgs;
    use super::serve::ServeArgs;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, clap::Subcommand)]
    #[allow(clippy::large_enum_variant)] // a test's parse result, made once: its size does not matter
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
            serve.keys.public_key_files,
            [PathBuf::from("a"), PathBuf::from("b")]
        );
        assert_eq!(serve.listen.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(serve.admin.admin_listen.to_string(), "0.0.0.0:8081");
        assert_eq!(
            serve.drain.drain_timeout,
            std::time::Duration::from_secs(10)
        );
        assert_eq!(serve.max_age, 3600);

        // Each command's rules on top of the shared groups, as (arguments, accepted).
        let serve =
            |url, extra: &[&'static str]| [&["serve", "--issuer-url", url][..], extra].concat();
        let publish = |extra: &[&'static str]| {
            let required = [
                "publish",
                "--issuer-url",
                "https://h",
                "--public-key-file",
                "a",
            ];
            [&required[..], extra].concat()
        };
        let cases = [
            // serve: a key source is required, and only one.
            (serve("https://h", &[]), false),
            (
                serve("https://h", &["--public-key-file", "a", "--from-apiserver"]),
                false,
            ),
            (
                serve("https://h", &["--from-apiserver", "--kubeconfig", "k"]),
                true,
            ),
            // serve: the signer is a key source of its own, paced by its hint.
            (
                serve("https://h", &["--signer-socket", "/run/s.sock"]),
                true,
            ),
            (
                serve(
                    "https://h",
                    &["--signer-socket", "s", "--public-key-file", "a"],
                ),
                false,
            ),
            (
                serve("https://h", &["--signer-socket", "s", "--from-apiserver"]),
                false,
            ),
            (
                serve(
                    "https://h",
                    &["--signer-socket", "s", "--reload-interval", "5s"],
                ),
                false,
            ),
            // serve: TLS files go together and exclude --plain-http.
            (
                serve(
                    "https://h",
                    &["--public-key-file", "a", "--tls-cert-file", "c"],
                ),
                false,
            ),
            (
                serve(
                    "u",
                    &[
                        "--public-key-file",
                        "a",
                        "--tls-cert-file",
                        "c",
                        "--tls-key-file",
                        "k",
                        "--plain-http",
                    ],
                ),
                false,
            ),
            // publish needs exactly one destination.
            (publish(&[]), false),
            (publish(&["--out", "d", "--s3-uri", "s3://b"]), false),
            (publish(&["--s3-uri", "s3://b", "--dry-run"]), true),
            // publish: key files or the signer, not both.
            (
                vec![
                    "publish",
                    "--issuer-url",
                    "https://h",
                    "--signer-socket",
                    "s",
                    "--out",
                    "d",
                ],
                true,
            ),
            (publish(&["--signer-socket", "s", "--out", "d"]), false),
            (
                vec!["publish", "--issuer-url", "https://h", "--out", "d"],
                false,
            ),
            // jwks needs a key file.
            (vec!["jwks"], false),
        ];
        for (args, accepted) in cases {
            assert_eq!(
                parse(&args).is_ok(),
                accepted,
                "{args:?}: {:?}",
                parse(&args)
            );
        }
    }
}
