//! `irsa associate-oidc-provider`: its flags, and the run that prints the report.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use irsa_core::names::DEFAULT_AUDIENCE;

use super::RunArgs;
use crate::associate::AssociateOptions;
use crate::preflight::STS_TIMEOUT;
use crate::thumbprint::ThumbprintSpec;

/// Register the issuer as an IAM OIDC identity provider, or reconcile the one that exists.
///
/// Preflight first: discovery and JWKS are fetched and judged the way STS does, and nothing is
/// created when STS would refuse them. A second run reports no changes.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(mut_arg("dry_run", |a| a.help("Preflight, read and print the plan; change nothing")))]
pub struct AssociateArgs {
    /// The issuer URL, byte-identical to the tokens' iss (the apiserver's
    /// --service-account-issuer), trailing slash and all. https:// only, no query, no fragment.
    #[arg(long, env = "IRSA_ISSUER_URL", value_name = "URL")]
    pub issuer_url: String,

    /// Client ID (audience) the provider accepts; repeatable, comma-separated in the environment.
    #[arg(
        long = "client-id",
        env = "IRSA_CLIENT_ID",
        value_name = "ID",
        value_delimiter = ',',
        default_value = DEFAULT_AUDIENCE
    )]
    pub client_ids: Vec<String>,

    /// Server-certificate thumbprints: `auto` takes the SHA-1 of the last certificate the JWKS host
    /// (and the issuer host, when different) presents; `none` registers none and leaves existing
    /// ones alone (AWS trusts public CAs by itself); or 40 hex digits. Repeatable, at most 5.
    #[arg(
        long = "thumbprint",
        env = "IRSA_THUMBPRINT",
        value_name = "auto|none|HEX",
        value_delimiter = ',',
        default_value = "auto"
    )]
    pub thumbprints: Vec<ThumbprintSpec>,

    /// PEM file with an extra CA to trust the issuer's certificate with (a private CA); the public
    /// web PKI is always trusted.
    #[arg(long, env = "IRSA_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Tag the provider must carry; repeatable. Existing tags are never removed.
    #[arg(
        long = "tag",
        env = "IRSA_TAG",
        value_name = "KEY=VALUE",
        value_delimiter = ',',
        value_parser = parse_tag
    )]
    pub tags: Vec<(String, String)>,

    /// Remove client IDs the provider has but that were not given.
    #[arg(long, env = "IRSA_PRUNE_CLIENT_IDS")]
    pub prune_client_ids: bool,

    /// Dry run, report format, AWS credentials.
    #[command(flatten)]
    pub run: RunArgs,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// Runs `associate-oidc-provider` and prints its report to `out`.
pub async fn associate(args: AssociateArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let opts = AssociateOptions {
        issuer_url: args.issuer_url,
        client_ids: args.client_ids,
        thumbprints: args.thumbprints,
        ca_file: args.ca_file,
        tags: args.tags.into_iter().collect::<BTreeMap<_, _>>(),
        prune_client_ids: args.prune_client_ids,
        dry_run: args.run.dry_run,
        aws: args.run.aws.into(),
        timeout: STS_TIMEOUT,
    };
    let report = crate::associate::associate(&opts).await?;
    super::print(out, args.run.output, &report)
}

#[cfg(test)]
mod tests {
    use super::super::OutputFormat;
    use super::super::testing::{long_help, parse};
    use super::*;

    const NAME: &str = "associate-oidc-provider";

    #[test]
    fn associate_defaults_and_repeats() {
        let a: AssociateArgs = parse(
            NAME,
            [
                "irsa",
                "associate-oidc-provider",
                "--issuer-url",
                "https://x",
            ],
        )
        .unwrap();
        assert_eq!(a.client_ids, ["sts.amazonaws.com"]);
        assert_eq!(a.thumbprints, [ThumbprintSpec::Auto]);
        assert_eq!(a.run.output, OutputFormat::Text);
        assert!(!a.run.dry_run && !a.prune_client_ids);

        let a: AssociateArgs = parse(
            NAME,
            [
                "irsa",
                "associate-oidc-provider",
                "--issuer-url=https://x",
                "--client-id=a",
                "--client-id=b",
                "--thumbprint=none",
                "--tag=team=a=b",
                "--tag",
                "env=prod",
                "--output=json",
                "--dry-run",
                "--profile=p",
                "--region=eu-west-1",
                "--assume-role-arn=arn:aws:iam::1:role/x",
            ],
        )
        .unwrap();
        assert_eq!(a.client_ids, ["a", "b"]);
        assert_eq!(a.thumbprints, [ThumbprintSpec::None]);
        assert_eq!(
            a.tags,
            [("team".into(), "a=b".into()), ("env".into(), "prod".into())]
        );
        assert_eq!(a.run.output, OutputFormat::Json);
        assert!(a.run.dry_run);
        assert_eq!(a.run.aws.profile.as_deref(), Some("p"));
        assert_eq!(a.run.aws.region.as_deref(), Some("eu-west-1"));

        for bad in [
            &[
                "irsa",
                "associate-oidc-provider",
                "--issuer-url=https://x",
                "--tag=novalue",
            ][..],
            &[
                "irsa",
                "associate-oidc-provider",
                "--issuer-url=https://x",
                "--thumbprint=abc",
            ],
            &["irsa", "associate-oidc-provider"],
        ] {
            assert!(parse::<AssociateArgs>(NAME, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_names_the_environment() {
        let help = long_help::<AssociateArgs>(NAME);
        for needle in [
            "--issuer-url",
            "IRSA_ISSUER_URL",
            "IRSA_THUMBPRINT",
            "--ca-file",
            "--prune-client-ids",
            "--assume-role-arn",
            "IRSA_PROFILE",
            "trailing slash",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
    }
}
