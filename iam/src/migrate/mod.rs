//! `irsa migrate`: from kiam or kube2iam to web identity, without editing workloads first.
//!
//! It reads what runs ([`cluster`], [`inventory`]), decides with the webhook's own rules which role each
//! workload gets and whether its namespace permits it ([`plan::analyse`]), reads those roles' trust policies,
//! and plans ([`plan::plan`]) the one web-identity statement per (namespace, ServiceAccount, role) each role
//! lacks. Read-only by default; `--apply` appends exactly those statements ([`trust`]: every other statement
//! is kept), `--prune-node-trust` later removes the node role's trust once every pod that uses the role runs
//! on web identity.

pub mod cluster;
pub mod inventory;
pub mod plan;
pub mod trust;

use std::collections::BTreeMap;
use std::path::PathBuf;

use irsa_core::IssuerUrl;
use irsa_core::issuer_url::UrlError;
use irsa_core::names::InvalidAnnotationPrefix;
use irsa_webhook::config::{ConfigError, InjectionConfig};
use irsa_webhook::legacy::{LegacyArgs, RestrictionFormat};
use serde_json::Value;

use crate::associate::read_provider;
use crate::aws::{Aws, AwsError, AwsOptions, classify};
use crate::plan::report::{self, Outcome, Report, url_warnings};
use crate::trust_policy::{TrustPolicyError, decode_policy_document};
use plan::{MigratePlan, RoleFact, Settings};

/// What `irsa migrate` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateOptions {
    /// The issuer URL, as registered with `associate-oidc-provider`.
    pub issuer_url: String,
    /// The audience the statements admit.
    pub audience: String,
    /// The webhook's `--annotation-prefix` (its `<prefix>/role-arn` on a ServiceAccount wins).
    pub annotation_prefix: String,
    /// kube2iam's `--base-role-arn`; by default the account irsa talks to.
    pub base_role_arn: Option<String>,
    /// kube2iam's `--default-role`.
    pub default_role: Option<String>,
    /// How `allowed-roles` entries match.
    pub namespace_restriction_format: RestrictionFormat,
    /// Namespaces without a restriction permit every role (`--legacy-unrestricted-namespaces`).
    pub unrestricted_namespaces: bool,
    /// Add the planned statements.
    pub apply: bool,
    /// Remove the node roles' trust where nothing needs it any more.
    pub prune_node_trust: bool,
    /// The node (or kiam server) roles whose trust `prune_node_trust` removes.
    pub node_role_arns: Vec<String>,
    /// A kubeconfig file (otherwise `KUBECONFIG`, `~/.kube/config`, or in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// Plan and print, change nothing (with `apply`: the policy diff).
    pub dry_run: bool,
    /// Credentials and region.
    pub aws: AwsOptions,
}

/// Why `irsa migrate` stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// An option is malformed.
    #[error("{0}")]
    Input(String),
    /// The issuer URL is unusable.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// `--annotation-prefix` is not one the webhook accepts.
    #[error(transparent)]
    AnnotationPrefix(#[from] InvalidAnnotationPrefix),
    /// `--base-role-arn` or `--default-role` is unusable (the webhook's own rule).
    #[error(transparent)]
    Legacy(#[from] ConfigError),
    /// No usable Kubernetes configuration.
    #[error("cannot configure the Kubernetes client: {0}")]
    KubeConfig(String),
    /// Listing objects failed.
    #[error("cannot list {what}: {source}")]
    Kube {
        /// What was listed.
        what: &'static str,
        /// The client's error.
        source: Box<kube::Error>,
    },
    /// A role's trust policy is unreadable.
    #[error(transparent)]
    TrustPolicy(#[from] TrustPolicyError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The statements would name a provider that does not exist.
    #[error(
        "the OIDC provider {0} does not exist; register the issuer first: irsa associate-oidc-provider"
    )]
    ProviderMissing(String),
}

/// What `irsa migrate` found and did.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrateReport {
    /// The plan (the one applied, with `--apply`).
    pub plan: MigratePlan,
    /// Warnings, dry run, and whether anything was changed.
    pub outcome: Outcome,
}

impl MigrateReport {
    /// Roles whose node trust `--prune-node-trust` had to keep.
    pub fn prune_blocked(&self) -> Vec<&str> {
        self.plan
            .roles
            .iter()
            .filter(|r| !r.prune_blocked.is_empty())
            .map(|r| r.role_arn.as_str())
            .collect()
    }
}

impl Report for MigrateReport {
    fn render_text(&self) -> String {
        report::render_text(&self.outcome, "", &self.plan)
    }

    fn to_json(&self) -> Value {
        report::to_json(&self.outcome, "migration", &self.plan, [])
    }
}

/// Runs `irsa migrate`.
pub async fn migrate(opts: &MigrateOptions) -> Result<MigrateReport, MigrateError> {
    let url = IssuerUrl::parse(&opts.issuer_url, false)?;
    let role_arn_annotation = crate::service_account::role_arn_annotation(&opts.annotation_prefix)?;
    if opts.audience.trim().is_empty() {
        return Err(MigrateError::Input(
            "the audience must not be empty".to_owned(),
        ));
    }
    if opts.prune_node_trust && opts.node_role_arns.is_empty() {
        return Err(MigrateError::Input(
            "--prune-node-trust needs --node-role-arn: the node (or kiam server) role whose trust goes"
                .to_owned(),
        ));
    }
    let mut warnings = url_warnings(&url);

    // The cluster first: a broken kubeconfig is found before any AWS call.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = irsa_serve::kube_client::client(opts.kubeconfig.as_deref())
        .await
        .map_err(|e| MigrateError::KubeConfig(e.to_string()))?;
    let cluster = cluster::read(&client).await?;

    let aws = Aws::connect(&opts.aws).await?;
    let default_is_arn = opts
        .default_role
        .as_deref()
        .is_some_and(|r| r.trim().to_lowercase().starts_with("arn:"));
    let base_role_arn = match &opts.base_role_arn {
        Some(base) => Some(base.clone()),
        // The webhook derives its base from an ARN --default-role; otherwise the account irsa talks to is
        // where the roles being migrated live (a run per account, with --assume-role-arn).
        None if default_is_arn => None,
        None => Some(format!("arn:{}:iam::{}:role/", aws.partition, aws.account)),
    };
    let legacy = LegacyArgs {
        legacy_role_annotations: true,
        base_role_arn,
        default_role: opts.default_role.clone(),
        namespace_restriction_format: opts.namespace_restriction_format,
        legacy_unrestricted_namespaces: opts.unrestricted_namespaces,
    }
    .into_legacy(&InjectionConfig::default().role_arn_pattern)?;
    let provider_arn = url.provider_arn(aws.partition, &aws.account);
    let writes = (opts.apply || opts.prune_node_trust) && !opts.dry_run;
    match read_provider(&aws.iam, &provider_arn).await {
        Ok(Some(provider)) if !provider.client_ids.contains(&opts.audience) => {
            warnings.push(format!(
                "{provider_arn} does not list client ID {:?}: STS will refuse the tokens; add it with irsa \
                 associate-oidc-provider --client-id {}",
                opts.audience, opts.audience
            ))
        }
        Ok(Some(_)) => {}
        Ok(None) if writes => return Err(MigrateError::ProviderMissing(provider_arn)),
        Ok(None) => warnings.push(format!(
            "the OIDC provider {provider_arn} does not exist yet; run irsa associate-oidc-provider first"
        )),
        Err(e) if e.is_access_denied() => {
            warnings.push(format!("cannot check that the OIDC provider exists: {e}"))
        }
        Err(e) => return Err(e.into()),
    }
    let settings = Settings {
        legacy,
        issuer: url,
        provider_arn,
        audience: opts.audience.clone(),
        role_arn_annotation,
        account: aws.account.clone(),
        prune_node_roles: match opts.prune_node_trust {
            true => opts.node_role_arns.clone(),
            false => Vec::new(),
        },
    };

    let analysis = plan::analyse(&cluster, &settings);
    let mut facts = BTreeMap::new();
    for arn in analysis.uses.keys() {
        if arn.split(':').nth(4) == Some(aws.account.as_str()) {
            facts.insert(arn.clone(), read_role(&aws, arn).await?);
        }
    }
    let plan = plan::plan(&analysis, &cluster, &facts, &settings);

    let mut applied = false;
    if writes {
        for role in &plan.roles {
            let Some(policy) = &role.policy else { continue };
            // `--prune-node-trust` alone writes only the roles it prunes (their statements are all in place).
            if !opts.apply && role.node_trust_removed.is_empty() {
                continue;
            }
            aws.iam
                .update_assume_role_policy()
                .role_name(&role.role_name)
                .policy_document(policy.to_string())
                .send()
                .await
                .map_err(|e| classify("iam:UpdateAssumeRolePolicy", Some(&role.role_arn), e))?;
            applied = true;
        }
    }
    Ok(MigrateReport {
        outcome: Outcome {
            warnings,
            dry_run: opts.dry_run || !(opts.apply || opts.prune_node_trust),
            applied,
        },
        plan,
    })
}

/// The role's trust policy, or its absence.
async fn read_role(aws: &Aws, arn: &str) -> Result<RoleFact, MigrateError> {
    let name = arn.rsplit('/').next().unwrap_or(arn);
    match aws.iam.get_role().role_name(name).send().await {
        Ok(out) => {
            let doc = out
                .role()
                .and_then(|r| r.assume_role_policy_document())
                .unwrap_or("{}");
            Ok(RoleFact::Exists(decode_policy_document(doc)?))
        }
        Err(e) => match classify("iam:GetRole", Some(arn), e) {
            e if e.is_not_found() => Ok(RoleFact::Missing),
            e => Err(e.into()),
        },
    }
}
