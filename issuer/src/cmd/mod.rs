//! `irsa issuer serve | publish | jwks`: one file per command, and what they share (the issuer URL's paths,
//! loading key files, logging warnings).

use std::path::PathBuf;

use irsa_core::IssuerUrl;

use crate::Warning;
use crate::keys::{self, LoadedKeys};
use crate::paths::Paths;

pub mod jwks;
pub mod publish;
pub mod serve;

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
        assert_eq!(serve.listen.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(serve.admin.admin_listen.to_string(), "0.0.0.0:8081");
        assert_eq!(
            serve.drain.drain_timeout,
            std::time::Duration::from_secs(10)
        );
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

    #[test]
    fn kubeconfig_help_says_the_kubeconfig_comes_before_in_cluster() {
        use clap::CommandFactory as _;
        let mut cli = Cli::command();
        let help = cli
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        let kubeconfig = help
            .split("--kubeconfig <FILE>")
            .nth(1)
            .and_then(|rest| rest.split("[env: IRSA_KUBECONFIG=]").next())
            .unwrap_or_else(|| panic!("no --kubeconfig in\n{help}"));
        // kube's Config::infer reads $KUBECONFIG / ~/.kube/config first and falls back to in-cluster.
        let local = kubeconfig.find("~/.kube/config").expect(kubeconfig);
        let in_cluster = kubeconfig.find("in-cluster").expect(kubeconfig);
        assert!(local < in_cluster, "{kubeconfig}");
        assert!(kubeconfig.contains("--from-apiserver"), "{kubeconfig}");
    }
}
