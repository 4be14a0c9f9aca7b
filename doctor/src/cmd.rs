//! `irsa doctor`: its flags, and the run that gathers, judges, prints and sets the exit code.

use std::io::Write;
use std::path::PathBuf;

use irsa_iam::cmd::{AwsArgs, OutputFormat};
use irsa_serve::args::KubeArgs;

use crate::diagnose::diagnose;
use crate::gather::{self, Options};

/// What `irsa doctor --help` explains after the flags (the subcommand's own line comes from the binary).
const AFTER_HELP: &str = "\
The checks, in the order a credential travels:
- cluster: the apiserver's issuer, the issuers it accepts (read from its kube-system
  static pod, against IAM's providers: an issuer change keeps the old one), the
  ServiceAccount and its role annotation, a TokenRequest with the audience, the
  MutatingWebhookConfiguration (namespace selected, caBundle verifying the webhook's
  certificate, failure policy), and a server-side dry-run pod that must come back
  injected;
- discovery, jwks: fetched the way STS fetches them (https, no redirects, 5 s, a trusted
  chain), answering quickly with a sane Cache-Control; the issuer byte for byte the
  apiserver's and the token's iss; the keys by STS's rules; the apiserver's current
  signing kid published;
- iam: the OIDC provider for exactly the issuer URL, its client IDs and thumbprints,
  the role, and a trust policy that admits this ServiceAccount (the mismatch shown);
- sts: the real AssumeRoleWithWebIdentity with a freshly minted token, its error mapped
  to the check that explains it (\"No OpenIDConnect provider found\" while the provider
  exists: STS not activated in that region for the account);
- clock: this machine, the apiserver (Date, the token's iat) and STS agree;
- sdk: static keys or profiles in the pod, the region, near-miss annotation keys.

Each line is pass, warn, FAIL or skip; every failure is followed by its fix, often an
irsa command. IAM checks without AWS credentials are skipped, with why.
AWS_ENDPOINT_URL_IAM (or AWS_ENDPOINT_URL) points the IAM reads at an emulator, as for
every AWS SDK.

Exit status: 0 nothing failed (warnings allowed), 1 something failed, 2 could not run.";

/// Walk the chain a pod's AWS credentials travel and name the broken link, with its fix.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct DoctorArgs {
    /// The ServiceAccount's namespace.
    #[arg(
        long,
        short = 'n',
        env = "IRSA_NAMESPACE",
        value_name = "NS",
        conflicts_with = "pod",
        requires = "service_account"
    )]
    pub namespace: Option<String>,

    /// The ServiceAccount whose pods should get credentials.
    #[arg(
        long,
        env = "IRSA_SERVICE_ACCOUNT",
        value_name = "SA",
        conflicts_with = "pod",
        requires = "namespace"
    )]
    pub service_account: Option<String>,

    /// A running pod instead: its ServiceAccount is diagnosed, and its own environment judged.
    #[arg(
        long,
        value_name = "NS/NAME",
        required_unless_present = "service_account"
    )]
    pub pod: Option<String>,

    /// The issuer URL the provider is (to be) registered for; by default the apiserver's own
    /// (--service-account-issuer, from its /.well-known/openid-configuration). Compared byte for byte:
    /// trailing slash, case and port count.
    #[arg(long, env = "IRSA_ISSUER_URL", value_name = "URL")]
    pub issuer_url: Option<String>,

    /// STS to call AssumeRoleWithWebIdentity at; default AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else
    /// https://sts.REGION.amazonaws.com.
    #[arg(long, env = "IRSA_STS_ENDPOINT", value_name = "URL")]
    pub sts_endpoint: Option<String>,

    /// PEM file with a private CA the issuer's certificate is trusted with (what a registered thumbprint
    /// makes STS do); the public web PKI is always trusted.
    #[arg(long, env = "IRSA_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Report format.
    #[arg(long, env = "IRSA_OUTPUT", value_enum, default_value_t)]
    pub output: OutputFormat,

    /// AWS credentials, region and role, for the IAM reads.
    #[command(flatten)]
    pub aws: AwsArgs,

    /// The cluster.
    #[command(flatten)]
    pub kube: KubeArgs,
}

impl DoctorArgs {
    fn options(&self) -> Options {
        Options {
            namespace: self.namespace.clone(),
            service_account: self.service_account.clone(),
            pod: self.pod.clone(),
            issuer_url: self.issuer_url.clone(),
            region: self.aws.region.clone(),
            sts_endpoint: self.sts_endpoint.clone(),
            aws: self.aws.clone().into(),
            kubeconfig: self.kube.kubeconfig.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}

/// Runs the doctor, prints the report to `out` (or why it could not run to stderr) and returns the exit
/// code: 0 nothing failed, 1 something failed, 2 could not run.
pub async fn run(args: &DoctorArgs, out: &mut (dyn Write + Send)) -> u8 {
    let (inputs, trust) = match gather::gather(&args.options()).await {
        Ok(gathered) => gathered,
        Err(e) => {
            eprintln!(
                "error: irsa doctor could not run: {}",
                irsa_serve::logging::error_chain(&e)
            );
            return 2;
        }
    };
    let report = diagnose(&inputs, &trust);
    let written = match args.output {
        OutputFormat::Text => out.write_all(report.render_text().as_bytes()),
        OutputFormat::Json => serde_json::to_writer_pretty(&mut *out, &report.to_json())
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out)),
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => report.exit_code(),
        Err(e) => {
            eprintln!("error: cannot write the report: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Command};

    fn cli() -> Command {
        Command::new("irsa").subcommand(DoctorArgs::augment_args(Command::new("doctor")))
    }

    fn parse(argv: &[&str]) -> Result<DoctorArgs, clap::Error> {
        let m = cli().try_get_matches_from(argv)?;
        DoctorArgs::from_arg_matches(m.subcommand_matches("doctor").expect("doctor"))
    }

    use clap::FromArgMatches as _;

    #[test]
    fn flags() {
        let a = parse(&[
            "irsa",
            "doctor",
            "-n",
            "team-a",
            "--service-account",
            "app",
            "--sts-endpoint",
            "http://127.0.0.1:9000",
            "--output",
            "json",
            "--assume-role-arn",
            "arn:aws:iam::1:role/r",
            "--kubeconfig",
            "/k",
            "--region",
            "eu-west-1",
        ])
        .unwrap();
        assert_eq!(
            (a.namespace.as_deref(), a.service_account.as_deref()),
            (Some("team-a"), Some("app"))
        );
        assert_eq!(a.output, OutputFormat::Json);
        let o = a.options();
        assert_eq!(
            o.aws.assume_role_arn.as_deref(),
            Some("arn:aws:iam::1:role/r")
        );
        assert_eq!(o.region.as_deref(), Some("eu-west-1"));
        assert_eq!(o.kubeconfig, Some(PathBuf::from("/k")));
        let a = parse(&["irsa", "doctor", "--pod", "team-a/app-0"]).unwrap();
        assert_eq!(a.pod.as_deref(), Some("team-a/app-0"));
        for bad in [
            &["irsa", "doctor"][..],
            &["irsa", "doctor", "-n", "a"],
            &[
                "irsa",
                "doctor",
                "--pod",
                "a/b",
                "-n",
                "a",
                "--service-account",
                "b",
            ],
            &["irsa", "doctor", "--pod", "a/b", "--output", "yaml"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_explains() {
        let help = cli()
            .find_subcommand_mut("doctor")
            .unwrap()
            .render_long_help()
            .to_string();
        for needle in [
            "--issuer-url",
            "--sts-endpoint",
            "--assume-role-arn",
            "--kubeconfig",
            "trailing slash",
            "Exit status",
            "AWS_ENDPOINT_URL_IAM",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
    }
}
