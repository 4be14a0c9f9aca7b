//! The command-line edge: clap arguments for `irsa associate-oidc-provider` and `irsa create-role`,
//! and the functions that run them and print the report. The only module that speaks `anyhow`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use crate::associate::AssociateOptions;
use crate::aws::AwsOptions;
use crate::create_role::CreateRoleOptions;
use crate::preflight::STS_TIMEOUT;
use crate::thumbprint::ThumbprintSpec;

/// How the report is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object for programs.
    Json,
}

/// Where AWS credentials come from, beyond the standard chain (environment, profile, web identity,
/// container, IMDS). `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_IAM` and `AWS_ENDPOINT_URL_STS` redirect
/// the calls (to an emulator, for instance).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct AwsArgs {
    /// AWS region for signing and STS; IAM itself is global. Default: the standard chain, else
    /// us-east-1.
    #[arg(long, env = "IRSA_REGION", value_name = "REGION")]
    pub region: Option<String>,

    /// Named profile from the AWS shared config and credentials files.
    #[arg(long, env = "IRSA_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,

    /// Assume this role (sts:AssumeRole) before calling IAM, for instance to act in another
    /// account.
    #[arg(long, env = "IRSA_ASSUME_ROLE_ARN", value_name = "ARN")]
    pub assume_role_arn: Option<String>,
}

impl From<AwsArgs> for AwsOptions {
    fn from(a: AwsArgs) -> AwsOptions {
        AwsOptions {
            region: a.region,
            profile: a.profile,
            assume_role_arn: a.assume_role_arn,
        }
    }
}

/// Register the issuer as an IAM OIDC identity provider, or reconcile the one that exists.
///
/// Preflight first: discovery and JWKS are fetched and judged the way STS does, and nothing is
/// created when STS would refuse them. A second run reports no changes.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
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
        default_value = crate::trust_policy::DEFAULT_AUDIENCE
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

    /// Preflight, read and print the plan; change nothing.
    #[arg(long, env = "IRSA_DRY_RUN")]
    pub dry_run: bool,

    /// Report format.
    #[arg(long, env = "IRSA_OUTPUT", value_enum, default_value_t)]
    pub output: OutputFormat,

    /// AWS credentials, region and role.
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Create (or reconcile the trust policy of) an IAM role only one service account can assume.
///
/// Attaches the given managed policies and, with --annotate-service-account, creates or annotates
/// the ServiceAccount with eks.amazonaws.com/role-arn.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CreateRoleArgs {
    /// The issuer URL, as registered with associate-oidc-provider.
    #[arg(long, env = "IRSA_ISSUER_URL", value_name = "URL")]
    pub issuer_url: String,

    /// The service account's namespace.
    #[arg(long, env = "IRSA_NAMESPACE", value_name = "NS")]
    pub namespace: String,

    /// The service account's name.
    #[arg(long, env = "IRSA_SERVICE_ACCOUNT", value_name = "NAME")]
    pub service_account: String,

    /// The IAM role's name.
    #[arg(long, env = "IRSA_ROLE_NAME", value_name = "NAME")]
    pub role_name: String,

    /// Managed policy to attach; repeatable. Policies attached otherwise are left alone.
    #[arg(
        long = "attach-policy-arn",
        env = "IRSA_ATTACH_POLICY_ARN",
        value_name = "ARN",
        value_delimiter = ','
    )]
    pub attach_policy_arns: Vec<String>,

    /// The token audience the trust policy admits (a client ID of the provider).
    #[arg(
        long,
        env = "IRSA_AUDIENCE",
        value_name = "AUD",
        default_value = crate::trust_policy::DEFAULT_AUDIENCE
    )]
    pub audience: String,

    /// Create the ServiceAccount, or merge-patch it, with eks.amazonaws.com/role-arn = the role.
    #[arg(long, env = "IRSA_ANNOTATE_SERVICE_ACCOUNT")]
    pub annotate_service_account: bool,

    /// Kubeconfig file; default: KUBECONFIG, ~/.kube/config, or the in-cluster service account.
    #[arg(long, env = "IRSA_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Read and print the plan; change nothing.
    #[arg(long, env = "IRSA_DRY_RUN")]
    pub dry_run: bool,

    /// Report format.
    #[arg(long, env = "IRSA_OUTPUT", value_enum, default_value_t)]
    pub output: OutputFormat,

    /// AWS credentials, region and role.
    #[command(flatten)]
    pub aws: AwsArgs,
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
        dry_run: args.dry_run,
        aws: args.aws.into(),
        timeout: STS_TIMEOUT,
    };
    let report = crate::associate::associate(&opts).await?;
    match args.output {
        OutputFormat::Text => out.write_all(report.render_text().as_bytes())?,
        OutputFormat::Json => print_json(out, &report.to_json())?,
    }
    Ok(())
}

/// Runs `create-role` and prints its report to `out`.
pub async fn create_role(args: CreateRoleArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let opts = CreateRoleOptions {
        issuer_url: args.issuer_url,
        namespace: args.namespace,
        service_account: args.service_account,
        role_name: args.role_name,
        attach_policy_arns: args.attach_policy_arns,
        audience: args.audience,
        annotate_service_account: args.annotate_service_account,
        kubeconfig: args.kubeconfig,
        dry_run: args.dry_run,
        aws: args.aws.into(),
    };
    let report = crate::create_role::create_role(&opts).await?;
    match args.output {
        OutputFormat::Text => out.write_all(report.render_text().as_bytes())?,
        OutputFormat::Json => print_json(out, &report.to_json())?,
    }
    Ok(())
}

fn print_json(out: &mut (dyn Write + Send), v: &serde_json::Value) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    enum Cmd {
        AssociateOidcProvider(AssociateArgs),
        CreateRole(CreateRoleArgs),
    }

    #[test]
    fn associate_defaults_and_repeats() {
        let Cmd::AssociateOidcProvider(a) = Cmd::try_parse_from([
            "irsa",
            "associate-oidc-provider",
            "--issuer-url",
            "https://x",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.client_ids, ["sts.amazonaws.com"]);
        assert_eq!(a.thumbprints, [ThumbprintSpec::Auto]);
        assert_eq!(a.output, OutputFormat::Text);
        assert!(!a.dry_run && !a.prune_client_ids);

        let Cmd::AssociateOidcProvider(a) = Cmd::try_parse_from([
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
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.client_ids, ["a", "b"]);
        assert_eq!(a.thumbprints, [ThumbprintSpec::None]);
        assert_eq!(
            a.tags,
            [("team".into(), "a=b".into()), ("env".into(), "prod".into())]
        );
        assert_eq!(a.output, OutputFormat::Json);
        assert!(a.dry_run);
        assert_eq!(a.aws.profile.as_deref(), Some("p"));
        assert_eq!(a.aws.region.as_deref(), Some("eu-west-1"));

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
            assert!(Cmd::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_names_the_environment() {
        use clap::CommandFactory;
        let mut cmd = Cmd::command();
        let help = cmd
            .find_subcommand_mut("associate-oidc-provider")
            .unwrap()
            .render_long_help()
            .to_string();
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
        let help = cmd
            .find_subcommand_mut("create-role")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(help.contains("IRSA_ANNOTATE_SERVICE_ACCOUNT"), "{help}");
    }

    #[test]
    fn create_role_args() {
        let Cmd::CreateRole(c) = Cmd::try_parse_from([
            "irsa",
            "create-role",
            "--issuer-url=https://x",
            "--namespace=ns",
            "--service-account=sa",
            "--role-name=r",
            "--attach-policy-arn=arn:aws:iam::aws:policy/A",
            "--attach-policy-arn=arn:aws:iam::aws:policy/B",
            "--annotate-service-account",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.audience, "sts.amazonaws.com");
        assert_eq!(c.attach_policy_arns.len(), 2);
        assert!(c.annotate_service_account && !c.dry_run);
    }
}
