//! `create-role`: an IAM role only one service account can assume and its policies; with
//! `--annotate-service-account`, the ServiceAccount's role annotation too ([`crate::service_account`]).
//! The counterpart of `eksctl create iamserviceaccount`, without CloudFormation.

use std::path::PathBuf;

use irsa_core::IssuerUrl;
use irsa_core::arn::role_arn;
use irsa_core::issuer_url::UrlError;
use irsa_core::names::{
    DEFAULT_ANNOTATION_PREFIX, DEFAULT_AUDIENCE, InvalidAnnotationPrefix, is_dns_label,
    is_dns_subdomain,
};
use serde_json::Value;

use crate::associate::read_provider;
use crate::aws::{Aws, AwsError, AwsOptions, classify};
use crate::plan::report::{self, Outcome, Report, url_warnings};
use crate::plan::{Plan, RolePlan, TrustChange, dedup};
use crate::service_account::{self, ServiceAccountError};
use crate::trust_policy::{TrustPolicy, TrustPolicyError, decode_policy_document};

/// What `create-role` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRoleOptions {
    /// The issuer URL, exactly the tokens' `iss`.
    pub issuer_url: String,
    /// The service account's namespace.
    pub namespace: String,
    /// The service account's name.
    pub service_account: String,
    /// The role's name.
    pub role_name: String,
    /// Managed policies to attach.
    pub attach_policy_arns: Vec<String>,
    /// The audience the trust policy admits.
    pub audience: String,
    /// Create or annotate the ServiceAccount.
    pub annotate_service_account: bool,
    /// The annotation prefix (`<prefix>/role-arn`), the webhook's `--annotation-prefix`.
    pub annotation_prefix: String,
    /// A kubeconfig file (otherwise `KUBECONFIG`, `~/.kube/config`, or in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// Read and plan, change nothing.
    pub dry_run: bool,
    /// Credentials and region.
    pub aws: AwsOptions,
}

impl CreateRoleOptions {
    /// Options with every default.
    pub fn new(
        issuer_url: impl Into<String>,
        namespace: impl Into<String>,
        service_account: impl Into<String>,
        role_name: impl Into<String>,
    ) -> CreateRoleOptions {
        CreateRoleOptions {
            issuer_url: issuer_url.into(),
            namespace: namespace.into(),
            service_account: service_account.into(),
            role_name: role_name.into(),
            attach_policy_arns: Vec::new(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            annotate_service_account: false,
            annotation_prefix: DEFAULT_ANNOTATION_PREFIX.to_owned(),
            kubeconfig: None,
            dry_run: false,
            aws: AwsOptions::default(),
        }
    }
}

/// Why `create-role` stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateRoleError {
    /// An option is malformed.
    #[error("{0}")]
    Input(String),
    /// The issuer URL is unusable.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// `--annotation-prefix` is not one Kubernetes (and so the webhook) accepts.
    #[error(transparent)]
    AnnotationPrefix(#[from] InvalidAnnotationPrefix),
    /// The issuer is not registered in IAM.
    #[error(
        "the OIDC provider {arn} does not exist; register the issuer first: irsa associate-oidc-provider --issuer-url {issuer}"
    )]
    ProviderMissing {
        /// The provider ARN the trust policy would name.
        arn: String,
        /// The issuer URL.
        issuer: String,
    },
    /// The role's current trust policy is unreadable.
    #[error(transparent)]
    TrustPolicy(#[from] TrustPolicyError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The ServiceAccount could not be read or written.
    #[error(transparent)]
    ServiceAccount(#[from] ServiceAccountError),
}

/// What `create-role` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRoleReport {
    /// The plan (after a race, the one that was applied).
    pub plan: RolePlan,
    /// Warnings, dry run, and whether anything was changed.
    pub outcome: Outcome,
}

impl Report for CreateRoleReport {
    fn render_text(&self) -> String {
        report::render_text(&self.outcome, "", &self.plan)
    }

    fn to_json(&self) -> Value {
        report::to_json(&self.outcome, "role", &self.plan, [])
    }
}

/// Runs `create-role`.
pub async fn create_role(opts: &CreateRoleOptions) -> Result<CreateRoleReport, CreateRoleError> {
    let url = IssuerUrl::parse(&opts.issuer_url, false)?;
    check_inputs(opts)?;
    // Checked even without --annotate-service-account: the prefix is shared with the webhook, and a
    // bad one is better reported now than on the run that annotates.
    let annotation = service_account::role_arn_annotation(&opts.annotation_prefix)?;
    let mut warnings = url_warnings(&url);

    // The cluster first: a broken kubeconfig must not leave a half-done role behind.
    let service_accounts = match opts.annotate_service_account {
        true => Some(service_account::api(opts.kubeconfig.as_deref(), &opts.namespace).await?),
        false => None,
    };

    let aws = Aws::connect(&opts.aws).await?;
    let provider_arn = url.provider_arn(aws.partition, &aws.account);
    match read_provider(&aws.iam, &provider_arn).await {
        Ok(Some(provider)) => {
            if !provider.client_ids.contains(&opts.audience) {
                warnings.push(format!(
                    "{provider_arn} does not list client ID {:?}: STS will refuse its tokens; add it with irsa associate-oidc-provider --client-id {}",
                    opts.audience, opts.audience
                ));
            }
        }
        Ok(None) if opts.dry_run => warnings.push(format!(
            "the OIDC provider {provider_arn} does not exist yet; run irsa associate-oidc-provider first"
        )),
        Ok(None) => {
            return Err(CreateRoleError::ProviderMissing {
                arn: provider_arn,
                issuer: url.as_str().to_owned(),
            });
        }
        Err(e) if e.is_access_denied() => {
            warnings.push(format!("cannot check that the OIDC provider exists: {e}"))
        }
        Err(e) => return Err(e.into()),
    }

    let policy = TrustPolicy::new(
        &url,
        &provider_arn,
        &opts.namespace,
        &opts.service_account,
        &opts.audience,
    );
    let mut plan = plan_role(&aws, opts, &policy).await?;
    if let Some(api) = &service_accounts {
        plan.service_account = Some(
            service_account::plan(
                api,
                &opts.namespace,
                &opts.service_account,
                &annotation,
                &plan.role_arn,
            )
            .await?,
        );
    }

    let mut applied = false;
    if !opts.dry_run && plan.has_changes() {
        if plan.trust_change == TrustChange::CreateRole {
            match create(&aws, opts, &policy).await {
                Ok(arn) => {
                    if let Some(sa) = plan.service_account.as_mut() {
                        sa.value.clone_from(&arn);
                    }
                    plan.role_arn = arn;
                }
                Err(e) if e.is_already_exists() => {
                    warnings.push(format!(
                        "role {} was created concurrently by someone else; reconciling with it",
                        opts.role_name
                    ));
                    let service_account = plan.service_account.take();
                    plan = plan_role(&aws, opts, &policy).await?;
                    plan.service_account = service_account;
                    update_trust(&aws, opts, &policy, &plan).await?;
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            update_trust(&aws, opts, &policy, &plan).await?;
        }
        for arn in &plan.attach_policy_arns {
            aws.iam
                .attach_role_policy()
                .role_name(&opts.role_name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| classify("iam:AttachRolePolicy", Some(&plan.role_arn), e))?;
        }
        if let (Some(api), Some(sa)) = (&service_accounts, &plan.service_account) {
            service_account::apply(api, sa).await?;
        }
        applied = true;
    }
    Ok(CreateRoleReport {
        plan,
        outcome: Outcome {
            warnings,
            dry_run: opts.dry_run,
            applied,
        },
    })
}

fn check_inputs(opts: &CreateRoleOptions) -> Result<(), CreateRoleError> {
    let bad = |what: String| Err(CreateRoleError::Input(what));
    if !is_dns_label(&opts.namespace) {
        return bad(format!(
            "namespace {:?} is not a valid Kubernetes namespace name (lower-case DNS label, at most 63 characters)",
            opts.namespace
        ));
    }
    if !is_dns_subdomain(&opts.service_account) {
        return bad(format!(
            "service account {:?} is not a valid Kubernetes name (lower-case DNS subdomain)",
            opts.service_account
        ));
    }
    let role_ok = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if opts.role_name.is_empty()
        || opts.role_name.len() > 64
        || !opts.role_name.chars().all(role_ok)
    {
        return bad(format!(
            "role name {:?} must be 1 to 64 characters of letters, digits and +=,.@_-",
            opts.role_name
        ));
    }
    if let Some(arn) = opts
        .attach_policy_arns
        .iter()
        .find(|a| !a.starts_with("arn:") || !a.contains(":policy/"))
    {
        return bad(format!(
            "{arn:?} is not a managed policy ARN (arn:aws:iam::<account or aws>:policy/NAME)"
        ));
    }
    if opts.audience.is_empty() {
        return bad("the audience must not be empty".to_owned());
    }
    Ok(())
}

/// Reads the role and its attached policies and plans the IAM side.
async fn plan_role(
    aws: &Aws,
    opts: &CreateRoleOptions,
    policy: &TrustPolicy,
) -> Result<RolePlan, CreateRoleError> {
    let role = match aws.iam.get_role().role_name(&opts.role_name).send().await {
        Ok(out) => out.role,
        Err(e) => match classify("iam:GetRole", Some(&opts.role_name), e) {
            e if e.is_not_found() => None,
            e => return Err(e.into()),
        },
    };
    let wanted = dedup(&opts.attach_policy_arns);
    let (role_arn, trust_change, attached) = match role {
        None => (
            role_arn(aws.partition, &aws.account, &opts.role_name),
            TrustChange::CreateRole,
            Vec::new(),
        ),
        Some(role) => {
            let existing = role.assume_role_policy_document().unwrap_or("{}");
            let change = if policy.is_satisfied_by(existing)? {
                TrustChange::None
            } else {
                TrustChange::Replace {
                    existing: decode_policy_document(existing)?,
                }
            };
            let attached = if wanted.is_empty() {
                Vec::new()
            } else {
                attached_policies(aws, &opts.role_name, role.arn()).await?
            };
            (role.arn().to_owned(), change, attached)
        }
    };
    let (attached_already, attach_policy_arns): (Vec<String>, Vec<String>) =
        wanted.into_iter().partition(|arn| attached.contains(arn));
    // A mistyped policy ARN must stop the run before the role is created, not after.
    for arn in &attach_policy_arns {
        match aws.iam.get_policy().policy_arn(arn).send().await {
            Ok(_) => {}
            Err(e) => match classify("iam:GetPolicy", Some(arn), e) {
                e if e.is_access_denied() => {}
                e if e.is_not_found() => {
                    return Err(CreateRoleError::Input(format!(
                        "policy {arn} does not exist (check the account and the name; AWS-managed policies are arn:{}:iam::aws:policy/NAME)",
                        aws.partition
                    )));
                }
                e => return Err(e.into()),
            },
        }
    }
    Ok(RolePlan {
        role_name: opts.role_name.clone(),
        role_arn,
        subject: policy.subject().to_owned(),
        audience: policy.audience().to_owned(),
        trust_policy: policy.to_value(),
        trust_change,
        attach_policy_arns,
        attached_already,
        service_account: None,
    })
}

async fn attached_policies(
    aws: &Aws,
    role_name: &str,
    role_arn: &str,
) -> Result<Vec<String>, AwsError> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = aws
            .iam
            .list_attached_role_policies()
            .role_name(role_name)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| classify("iam:ListAttachedRolePolicies", Some(role_arn), e))?;
        out.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_owned)),
        );
        match page.marker() {
            Some(m) if page.is_truncated() => marker = Some(m.to_owned()),
            _ => return Ok(out),
        }
    }
}

async fn create(
    aws: &Aws,
    opts: &CreateRoleOptions,
    policy: &TrustPolicy,
) -> Result<String, AwsError> {
    let out = aws
        .iam
        .create_role()
        .role_name(&opts.role_name)
        .assume_role_policy_document(policy.to_json())
        .description(format!(
            "Assumable only by {} (irsa create-role)",
            policy.subject()
        ))
        .send()
        .await
        .map_err(|e| classify("iam:CreateRole", Some(&opts.role_name), e))?;
    Ok(out.role().map(|r| r.arn().to_owned()).unwrap_or_default())
}

async fn update_trust(
    aws: &Aws,
    opts: &CreateRoleOptions,
    policy: &TrustPolicy,
    plan: &RolePlan,
) -> Result<(), AwsError> {
    if let TrustChange::Replace { .. } = plan.trust_change {
        aws.iam
            .update_assume_role_policy()
            .role_name(&opts.role_name)
            .policy_document(policy.to_json())
            .send()
            .await
            .map_err(|e| classify("iam:UpdateAssumeRolePolicy", Some(&plan.role_arn), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> CreateRoleOptions {
        CreateRoleOptions::new(
            "https://oidc.example.com",
            "team-a",
            "uploader",
            "team-a-uploader",
        )
    }

    #[test]
    fn inputs() {
        assert!(check_inputs(&opts()).is_ok());
        let mut o = opts();
        o.namespace = "Team_A".into();
        assert!(
            check_inputs(&o)
                .unwrap_err()
                .to_string()
                .contains("namespace")
        );
        let mut o = opts();
        o.service_account = "a..b".into();
        assert!(check_inputs(&o).is_err());
        let mut o = opts();
        o.role_name = "x".repeat(65);
        assert!(check_inputs(&o).is_err());
        let mut o = opts();
        o.attach_policy_arns = vec!["ReadOnlyAccess".into()];
        assert!(
            check_inputs(&o)
                .unwrap_err()
                .to_string()
                .contains("policy ARN")
        );
        let mut o = opts();
        o.attach_policy_arns = vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()];
        assert!(check_inputs(&o).is_ok());
    }
}
