//! `irsa create-role`: its flags, and the run that prints the report.

use std::io::Write;

use irsa_core::names::{DEFAULT_ANNOTATION_PREFIX, DEFAULT_AUDIENCE};
use irsa_serve::args::KubeArgs;

use super::RunArgs;
use crate::create_role::CreateRoleOptions;

/// Create (or reconcile the trust policy of) an IAM role only one service account can assume.
///
/// Attaches the given managed policies and, with --annotate-service-account, creates or annotates
/// the ServiceAccount with <--annotation-prefix>/role-arn.
#[derive(Debug, Clone, clap::Args)]
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
        default_value = DEFAULT_AUDIENCE
    )]
    pub audience: String,

    /// Create the ServiceAccount, or merge-patch it, with <--annotation-prefix>/role-arn = the role.
    #[arg(long, env = "IRSA_ANNOTATE_SERVICE_ACCOUNT")]
    pub annotate_service_account: bool,

    /// Prefix of the role annotation written on the ServiceAccount (`<prefix>/role-arn`): the
    /// webhook's --annotation-prefix, and the same environment variable.
    #[arg(
        long,
        env = "IRSA_ANNOTATION_PREFIX",
        value_name = "PREFIX",
        default_value = DEFAULT_ANNOTATION_PREFIX
    )]
    pub annotation_prefix: String,

    /// The Kubernetes client's configuration, with --annotate-service-account.
    #[command(flatten)]
    pub kube: KubeArgs,

    /// Dry run, report format, AWS credentials.
    #[command(flatten)]
    pub run: RunArgs,
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
        annotation_prefix: args.annotation_prefix,
        kubeconfig: args.kube.kubeconfig,
        dry_run: args.run.dry_run,
        aws: args.run.aws.into(),
    };
    let report = crate::create_role::create_role(&opts).await?;
    super::print(out, args.run.output, &report)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{long_help, parse};
    use super::*;

    const REQUIRED: [&str; 6] = [
        "irsa",
        "create-role",
        "--issuer-url=https://x",
        "--namespace=ns",
        "--service-account=sa",
        "--role-name=r",
    ];

    fn parse_with(extra: &[&str]) -> CreateRoleArgs {
        parse("create-role", REQUIRED.iter().chain(extra)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn create_role_args() {
        let c = parse_with(&[
            "--attach-policy-arn=arn:aws:iam::aws:policy/A",
            "--attach-policy-arn=arn:aws:iam::aws:policy/B",
            "--annotate-service-account",
        ]);
        assert_eq!(c.audience, "sts.amazonaws.com");
        assert_eq!(c.attach_policy_arns.len(), 2);
        assert!(c.annotate_service_account && !c.run.dry_run);
        assert_eq!(c.annotation_prefix, "eks.amazonaws.com");
        assert_eq!(c.kube.kubeconfig, None);

        let c = parse_with(&["--annotation-prefix=irsa.example.com", "--kubeconfig=/k"]);
        assert_eq!(c.annotation_prefix, "irsa.example.com");
        assert_eq!(c.kube.kubeconfig, Some("/k".into()));
    }

    #[test]
    fn help_names_the_environment() {
        let help = long_help::<CreateRoleArgs>("create-role");
        for needle in [
            "IRSA_ANNOTATE_SERVICE_ACCOUNT",
            "--annotation-prefix <PREFIX>",
            "IRSA_ANNOTATION_PREFIX",
            "[default: eks.amazonaws.com]",
            "--kubeconfig <FILE>",
            "IRSA_KUBECONFIG",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
    }
}
