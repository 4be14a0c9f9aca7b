//! `irsa migrate`: its flags, and the run that prints the plan.

use std::io::Write;

use irsa_core::names::{DEFAULT_ANNOTATION_PREFIX, DEFAULT_AUDIENCE};
use irsa_serve::args::KubeArgs;
use irsa_webhook::legacy::RestrictionFormat;

use super::RunArgs;
use crate::migrate::MigrateOptions;

/// Plan (and with --apply, make) the move from kiam or kube2iam to web identity.
///
/// Reads Pods and the pod templates of Deployments, StatefulSets, DaemonSets, Jobs, CronJobs and unowned
/// ReplicaSets, and the namespaces' iam.amazonaws.com/permitted and iam.amazonaws.com/allowed-roles; decides
/// with the webhook's own rules which role each workload gets; prints, for each role, the trust statement
/// each (namespace, ServiceAccount) needs, and what to fix: roles their namespace does not permit, roles
/// that do not exist, workloads on the default ServiceAccount, the webhook flags to set. Read-only unless
/// --apply or --prune-node-trust.
#[derive(Debug, Clone, clap::Args)]
#[command(mut_arg("dry_run", |a| a.help(
    "With --apply or --prune-node-trust: read, and print the plan with the policy diff; change nothing",
)))]
pub struct MigrateArgs {
    /// The issuer URL, as registered with associate-oidc-provider.
    #[arg(long, env = "IRSA_ISSUER_URL", value_name = "URL")]
    pub issuer_url: String,

    /// The token audience the statements admit (the webhook's --token-audience).
    #[arg(long, env = "IRSA_AUDIENCE", value_name = "AUD", default_value = DEFAULT_AUDIENCE)]
    pub audience: String,

    /// The webhook's --annotation-prefix: a ServiceAccount's <prefix>/role-arn wins over the pod's
    /// iam.amazonaws.com/role.
    #[arg(
        long,
        env = "IRSA_ANNOTATION_PREFIX",
        value_name = "PREFIX",
        default_value = DEFAULT_ANNOTATION_PREFIX
    )]
    pub annotation_prefix: String,

    /// What a role name in iam.amazonaws.com/role is appended to (kube2iam's flag). Default: the base of an
    /// ARN --default-role, else arn:<partition>:iam::<account>:role/ of the account irsa talks to.
    #[arg(long, env = "IRSA_BASE_ROLE_ARN", value_name = "ARN")]
    pub base_role_arn: Option<String>,

    /// kube2iam's --default-role, if it had one: the role of pods without an annotation.
    #[arg(long, env = "IRSA_DEFAULT_ROLE", value_name = "ROLE")]
    pub default_role: Option<String>,

    /// How iam.amazonaws.com/allowed-roles entries match (kube2iam's flag): glob or regexp.
    #[arg(
        long,
        env = "IRSA_NAMESPACE_RESTRICTION_FORMAT",
        value_enum,
        default_value_t = RestrictionFormat::Glob,
        value_name = "FORMAT"
    )]
    pub namespace_restriction_format: RestrictionFormat,

    /// Plan for a webhook run with --legacy-unrestricted-namespaces: a namespace without either annotation
    /// permits every role (see that flag's risk).
    #[arg(long, env = "IRSA_LEGACY_UNRESTRICTED_NAMESPACES")]
    pub legacy_unrestricted_namespaces: bool,

    /// Add the planned statements to the roles' trust policies (idempotent; every other statement is kept).
    #[arg(long, env = "IRSA_APPLY")]
    pub apply: bool,

    /// Remove the --node-role-arn roles from the trust policies of the roles in use, for each role only
    /// when every pod using it already runs on web identity and nothing else still needs the node agent.
    #[arg(long, env = "IRSA_PRUNE_NODE_TRUST", requires = "node_role_arns")]
    pub prune_node_trust: bool,

    /// The node (kube2iam) or kiam server role the roles trusted; repeatable.
    #[arg(
        long = "node-role-arn",
        env = "IRSA_NODE_ROLE_ARN",
        value_name = "ARN",
        value_delimiter = ','
    )]
    pub node_role_arns: Vec<String>,

    /// The Kubernetes client's configuration.
    #[command(flatten)]
    pub kube: KubeArgs,

    /// Dry run, report format, AWS credentials.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Runs `irsa migrate` and prints its report to `out`; fails after printing when `--prune-node-trust` had to
/// keep some node trust.
pub async fn migrate(args: MigrateArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let opts = MigrateOptions {
        issuer_url: args.issuer_url,
        audience: args.audience,
        annotation_prefix: args.annotation_prefix,
        base_role_arn: args.base_role_arn,
        default_role: args.default_role,
        namespace_restriction_format: args.namespace_restriction_format,
        unrestricted_namespaces: args.legacy_unrestricted_namespaces,
        apply: args.apply,
        prune_node_trust: args.prune_node_trust,
        node_role_arns: args.node_role_arns,
        kubeconfig: args.kube.kubeconfig,
        dry_run: args.run.dry_run,
        aws: args.run.aws.into(),
    };
    let report = crate::migrate::migrate(&opts).await?;
    super::print(out, args.run.output, &report)?;
    let blocked = report.prune_blocked();
    if !blocked.is_empty() {
        anyhow::bail!(
            "--prune-node-trust kept the node trust of {} (see the lines marked '!')",
            blocked.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{long_help, parse};
    use super::*;

    #[test]
    fn migrate_args() {
        let m: MigrateArgs =
            parse("migrate", ["irsa", "migrate", "--issuer-url=https://x"]).unwrap();
        assert!(!m.apply && !m.prune_node_trust && !m.run.dry_run);
        assert_eq!(m.namespace_restriction_format, RestrictionFormat::Glob);
        assert_eq!(m.audience, "sts.amazonaws.com");
        let m: MigrateArgs = parse(
            "migrate",
            [
                "irsa",
                "migrate",
                "--issuer-url=https://x",
                "--apply",
                "--dry-run",
                "--base-role-arn=arn:aws:iam::1:role/",
                "--namespace-restriction-format=regexp",
                "--prune-node-trust",
                "--node-role-arn=arn:aws:iam::1:role/nodes,arn:aws:iam::1:role/kiam",
                "--assume-role-arn=arn:aws:iam::2:role/admin",
            ],
        )
        .unwrap();
        assert!(m.apply && m.run.dry_run && m.prune_node_trust);
        assert_eq!(m.node_role_arns.len(), 2);
        assert_eq!(
            m.run.aws.assume_role_arn.as_deref(),
            Some("arn:aws:iam::2:role/admin")
        );
        // Pruning needs to know whose trust goes.
        assert!(
            parse::<MigrateArgs>(
                "migrate",
                [
                    "irsa",
                    "migrate",
                    "--issuer-url=https://x",
                    "--prune-node-trust"
                ]
            )
            .is_err()
        );
    }

    #[test]
    fn help_names_the_flags_and_the_environment() {
        let help = long_help::<MigrateArgs>("migrate");
        for needle in [
            "--apply",
            "IRSA_PRUNE_NODE_TRUST",
            "--node-role-arn <ARN>",
            "--assume-role-arn <ARN>",
            "--output <OUTPUT>",
            "policy diff",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
    }
}
