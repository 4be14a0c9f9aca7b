//! The migration plan, pure: from what the cluster runs ([`Cluster`]) and what IAM holds ([`RoleFact`]) to,
//! for each role, the web-identity trust statements it needs (one per namespace and ServiceAccount whose
//! workloads use it), and every finding a person must act on. The webhook's own rules
//! ([`irsa_webhook::legacy`]) decide which role a workload gets and whether its namespace permits it, so the
//! plan trusts exactly the ServiceAccounts the webhook will inject.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use irsa_core::IssuerUrl;
use irsa_webhook::legacy::{
    EXTERNAL_ID_ANNOTATION, LegacyConfig, ROLE_ANNOTATION, RestrictionFormat, judge_namespace,
};
use irsa_webhook::views::NamespaceView;
use serde::Serialize;
use serde_json::Value;

use super::inventory::{Cluster, Workload};
use super::trust::{has_statement, statements, with_statements, without_aws_principal};
use crate::plan::Plan;
use crate::trust_policy::TrustPolicy;

/// What the plan is computed with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// kiam's and kube2iam's rules, as the webhook will apply them.
    pub legacy: LegacyConfig,
    /// The issuer the tokens come from.
    pub issuer: IssuerUrl,
    /// Its IAM OIDC provider, in the account irsa talks to.
    pub provider_arn: String,
    /// The audience the statements admit.
    pub audience: String,
    /// `<prefix>/role-arn`, the ServiceAccount annotation that wins over the pod's.
    pub role_arn_annotation: String,
    /// The account irsa talks to: roles elsewhere are reported, not read.
    pub account: String,
    /// With `--prune-node-trust`: the node (or kiam server) roles whose trust is removed.
    pub prune_node_roles: Vec<String>,
}

/// What IAM holds for one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleFact {
    /// The role exists with this (decoded) trust policy.
    Exists(Value),
    /// There is no such role.
    Missing,
}

/// The roles the workloads use, and what else was found, before IAM is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Role ARN -> (namespace, ServiceAccount) -> the workloads that run as it with that role.
    pub uses: BTreeMap<String, BTreeMap<(String, String), Vec<String>>>,
    /// Everything else to report.
    pub findings: Findings,
}

/// What a person must act on, besides the trust statements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Findings {
    /// Workloads whose namespace does not permit their role: the webhook will not inject them.
    pub not_permitted: Vec<NotPermitted>,
    /// Workloads whose role is a name no base ARN resolves.
    pub unresolved: Vec<Unresolved>,
    /// Workloads on the `default` ServiceAccount, with their role.
    pub default_service_account: Vec<RoleOfWorkload>,
    /// Workloads whose ServiceAccount's role differs from their pod annotation's (the ServiceAccount's wins).
    pub conflicts: Vec<Conflict>,
    /// Workloads with `iam.amazonaws.com/external-id`, which web identity cannot send.
    pub external_ids: Vec<String>,
    /// Broken namespace annotations (each once).
    pub namespace_warnings: Vec<String>,
}

/// A workload and the role it would get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleOfWorkload {
    /// `Kind namespace/name`.
    pub workload: String,
    /// The role ARN.
    pub role_arn: String,
}

/// A workload its namespace does not permit its role to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotPermitted {
    /// `Kind namespace/name`.
    pub workload: String,
    /// Its namespace.
    pub namespace: String,
    /// The role ARN.
    pub role_arn: String,
    /// What the namespace has.
    pub why: String,
}

/// A workload whose role is a name with no base ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    /// `Kind namespace/name`.
    pub workload: String,
    /// The annotation's value.
    pub role: String,
}

/// A ServiceAccount role and a pod annotation that disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// `Kind namespace/name`.
    pub workload: String,
    /// The ServiceAccount's role ARN (which the webhook injects).
    pub service_account_role: String,
    /// The pod annotation's value.
    pub pod_role: String,
}

/// The role a workload (or pod) gets from the webhook, and where from.
enum Effective {
    /// Its ServiceAccount's annotation.
    ServiceAccount(String),
    /// Its pod annotation, resolved.
    Annotation(String),
    /// `--default-role`.
    Default(String),
    /// A name that does not resolve.
    Unresolved(String),
    /// No role at all.
    None,
}

fn effective(cluster: &Cluster, settings: &Settings, w: &Workload) -> Effective {
    let sa_role = cluster
        .service_accounts
        .get(&(w.namespace.clone(), w.service_account.clone()))
        .and_then(|a| a.get(&settings.role_arn_annotation))
        .map(|arn| arn.trim())
        .filter(|arn| !arn.is_empty());
    let annotation = w
        .annotations
        .get(ROLE_ANNOTATION)
        .map(|r| r.trim())
        .filter(|r| !r.is_empty());
    match (sa_role, annotation, &settings.legacy.default_role_arn) {
        (Some(arn), _, _) => Effective::ServiceAccount(arn.to_owned()),
        (None, Some(raw), _) => match settings.legacy.resolve(raw) {
            Some(arn) => Effective::Annotation(arn),
            None => Effective::Unresolved(raw.to_owned()),
        },
        (None, None, Some(default)) => Effective::Default(default.clone()),
        (None, None, None) => Effective::None,
    }
}

/// Which role each workload gets and whether its namespace permits it, as the webhook will decide.
pub fn analyse(cluster: &Cluster, settings: &Settings) -> Analysis {
    let mut analysis = Analysis::default();
    let findings = &mut analysis.findings;
    for w in &cluster.workloads {
        let label = w.label();
        if w.annotations
            .get(EXTERNAL_ID_ANNOTATION)
            .is_some_and(|id| !id.trim().is_empty())
        {
            findings.external_ids.push(label.clone());
        }
        let namespace = cluster
            .namespaces
            .get(&w.namespace)
            .and_then(NamespaceView::from_annotations);
        let arn = match effective(cluster, settings, w) {
            Effective::None => continue,
            Effective::ServiceAccount(arn) => {
                if let Some(raw) = w.annotations.get(ROLE_ANNOTATION).map(|r| r.trim())
                    && !raw.is_empty()
                    && settings.legacy.resolve(raw).as_deref() != Some(arn.as_str())
                {
                    findings.conflicts.push(Conflict {
                        workload: label,
                        service_account_role: arn,
                        pod_role: raw.to_owned(),
                    });
                }
                // Already on web identity through its ServiceAccount: `create-role` owns that trust.
                continue;
            }
            Effective::Unresolved(role) => {
                findings.unresolved.push(Unresolved {
                    workload: label,
                    role,
                });
                continue;
            }
            Effective::Annotation(arn) => {
                let mut warnings = Vec::new();
                let judged =
                    judge_namespace(namespace.as_ref(), &arn, &settings.legacy, &mut warnings);
                for warning in warnings {
                    let message = format!("namespace {}: {}", w.namespace, warning.message);
                    if !findings.namespace_warnings.contains(&message) {
                        findings.namespace_warnings.push(message);
                    }
                }
                if let Err(why) = judged {
                    findings.not_permitted.push(NotPermitted {
                        workload: label,
                        namespace: w.namespace.clone(),
                        role_arn: arn,
                        why,
                    });
                    continue;
                }
                arn
            }
            Effective::Default(arn) => {
                // The webhook asks `permitted` (not `allowed-roles`) about the default role.
                if let Some(ns) = &namespace
                    && ns.permits(&arn) != Ok(true)
                {
                    findings.not_permitted.push(NotPermitted {
                        workload: label,
                        namespace: w.namespace.clone(),
                        role_arn: arn,
                        why: format!("iam.amazonaws.com/permitted: {:?}", ns.pattern()),
                    });
                    continue;
                }
                arn
            }
        };
        if w.service_account == "default" {
            findings.default_service_account.push(RoleOfWorkload {
                workload: label.clone(),
                role_arn: arn.clone(),
            });
        }
        analysis
            .uses
            .entry(arn)
            .or_default()
            .entry((w.namespace.clone(), w.service_account.clone()))
            .or_default()
            .push(label);
    }
    analysis
}

/// The migration plan: per role, the statements to add and the node trust to remove; the findings; the
/// webhook flags.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigratePlan {
    /// The OIDC provider the statements name.
    pub provider_arn: String,
    /// One entry per role the workloads use.
    pub roles: Vec<RoleMigration>,
    /// What else was found.
    #[serde(flatten)]
    pub findings: Findings,
    /// The flags `irsa webhook serve` needs for these workloads.
    pub webhook_flags: Vec<String>,
}

/// Where a role is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RoleStatus {
    /// It exists in the account irsa talks to.
    Exists,
    /// It does not exist.
    Missing,
    /// It is in another account, which this run cannot read.
    OtherAccount {
        /// That account.
        account: String,
    },
}

/// One role's part of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleMigration {
    /// The role's ARN.
    pub role_arn: String,
    /// Its name, as IAM's API takes it.
    pub role_name: String,
    /// Where it is.
    pub status: RoleStatus,
    /// The ServiceAccounts it must trust.
    pub service_accounts: Vec<TrustUse>,
    /// Statements `--prune-node-trust` removes (or narrows), as they are now.
    pub node_trust_removed: Vec<Value>,
    /// Why `--prune-node-trust` leaves this role's node trust in place.
    pub prune_blocked: Vec<String>,
    /// The trust policy to write, when it changes.
    pub policy: Option<Value>,
}

/// One ServiceAccount a role must trust.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrustUse {
    /// Namespace.
    pub namespace: String,
    /// ServiceAccount.
    pub service_account: String,
    /// The workloads that run as it with this role.
    pub workloads: Vec<String>,
    /// The statement.
    pub statement: Value,
    /// Whether the role's trust policy has it already.
    pub present: bool,
}

fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Builds the plan from the analysis and what IAM holds (`facts`, for the roles of `settings.account`).
pub fn plan(
    analysis: &Analysis,
    cluster: &Cluster,
    facts: &BTreeMap<String, RoleFact>,
    settings: &Settings,
) -> MigratePlan {
    let roles = analysis
        .uses
        .iter()
        .map(|(arn, uses)| role_migration(arn, uses, analysis, cluster, facts, settings))
        .collect();
    MigratePlan {
        provider_arn: settings.provider_arn.clone(),
        roles,
        findings: analysis.findings.clone(),
        webhook_flags: webhook_flags(analysis, cluster, settings),
    }
}

fn role_migration(
    arn: &str,
    uses: &BTreeMap<(String, String), Vec<String>>,
    analysis: &Analysis,
    cluster: &Cluster,
    facts: &BTreeMap<String, RoleFact>,
    settings: &Settings,
) -> RoleMigration {
    let account = account_of(arn);
    let existing = match facts.get(arn) {
        Some(RoleFact::Exists(doc)) if account == settings.account => Some(doc),
        _ => None,
    };
    let status = if account != settings.account {
        RoleStatus::OtherAccount {
            account: account.to_owned(),
        }
    } else if existing.is_some() {
        RoleStatus::Exists
    } else {
        RoleStatus::Missing
    };
    let service_accounts: Vec<TrustUse> = uses
        .iter()
        .map(|((namespace, service_account), workloads)| {
            let policy = TrustPolicy::new(
                &settings.issuer,
                &settings.provider_arn,
                namespace,
                service_account,
                &settings.audience,
            );
            let statement = statements(&policy.to_value()).pop().unwrap_or_default();
            TrustUse {
                namespace: namespace.clone(),
                service_account: service_account.clone(),
                workloads: workloads.clone(),
                present: existing.is_some_and(|doc| has_statement(doc, &statement)),
                statement,
            }
        })
        .collect();
    let mut migration = RoleMigration {
        role_arn: arn.to_owned(),
        role_name: role_name(arn).to_owned(),
        status,
        service_accounts,
        node_trust_removed: Vec::new(),
        prune_blocked: Vec::new(),
        policy: None,
    };
    let Some(existing) = existing else {
        return migration;
    };
    let missing: Vec<Value> = migration
        .service_accounts
        .iter()
        .filter(|u| !u.present)
        .map(|u| u.statement.clone())
        .collect();
    let mut doc = with_statements(existing, &missing);
    if !settings.prune_node_roles.is_empty() {
        migration.prune_blocked = prune_blockers(arn, &missing, analysis, cluster, settings);
        if migration.prune_blocked.is_empty() {
            for node in &settings.prune_node_roles {
                let (pruned, removed) = without_aws_principal(&doc, node);
                doc = pruned;
                migration.node_trust_removed.extend(removed);
            }
        }
    }
    if !missing.is_empty() || !migration.node_trust_removed.is_empty() {
        migration.policy = Some(doc);
    }
    migration
}

/// Why the node trust of `arn` must stay: a workload that still needs it, or that cannot be told apart.
fn prune_blockers(
    arn: &str,
    missing: &[Value],
    analysis: &Analysis,
    cluster: &Cluster,
    settings: &Settings,
) -> Vec<String> {
    let mut blockers = Vec::new();
    if !missing.is_empty() {
        blockers.push(format!(
            "{} ServiceAccount(s) are not trusted yet: run irsa migrate --apply first",
            missing.len()
        ));
    }
    for np in analysis
        .findings
        .not_permitted
        .iter()
        .filter(|np| np.role_arn == arn)
    {
        blockers.push(format!(
            "{} would get no credentials: its namespace does not permit the role",
            np.workload
        ));
    }
    for unresolved in &analysis.findings.unresolved {
        blockers.push(format!(
            "{} names role {:?}, which no base ARN resolves: it may be this one",
            unresolved.workload, unresolved.role
        ));
    }
    for pod in &cluster.pods {
        let role = match effective(cluster, settings, pod) {
            Effective::ServiceAccount(role)
            | Effective::Annotation(role)
            | Effective::Default(role) => role,
            Effective::Unresolved(_) | Effective::None => continue,
        };
        if role == arn && !pod.web_identity {
            blockers.push(format!(
                "{} still runs without web identity: recreate it (e.g. kubectl rollout restart) once the \
                 webhook runs with the flags below",
                pod.label()
            ));
        }
    }
    blockers
}

fn webhook_flags(analysis: &Analysis, cluster: &Cluster, settings: &Settings) -> Vec<String> {
    let legacy = &settings.legacy;
    let any_legacy = !analysis.uses.is_empty()
        || !analysis.findings.not_permitted.is_empty()
        || !analysis.findings.unresolved.is_empty();
    if !any_legacy {
        return Vec::new();
    }
    let mut flags = vec!["--legacy-role-annotations".to_owned()];
    let names = cluster.workloads.iter().any(|w| {
        w.annotations
            .get(ROLE_ANNOTATION)
            .is_some_and(|r| !r.trim().is_empty() && !r.trim().to_lowercase().starts_with("arn:"))
    });
    if let Some(base) = legacy.base_role_arn.as_deref().filter(|_| names) {
        flags.push(format!("--base-role-arn={base}"));
    }
    if let Some(default) = &legacy.default_role_arn {
        flags.push(format!("--default-role={default}"));
    }
    if legacy.restriction_format == RestrictionFormat::Regexp {
        flags.push("--namespace-restriction-format=regexp".to_owned());
    }
    if legacy.unrestricted_namespaces {
        flags.push("--legacy-unrestricted-namespaces".to_owned());
    }
    flags
}

impl Plan for MigratePlan {
    fn has_changes(&self) -> bool {
        self.roles.iter().any(|r| r.policy.is_some())
    }

    fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "OIDC provider {}", self.provider_arn);
        for role in &self.roles {
            render_role(&mut out, role);
        }
        let f = &self.findings;
        section(
            &mut out,
            "not permitted by their namespace (the webhook will not inject them; no trust is planned)",
            f.not_permitted.iter().map(|np| {
                format!(
                    "{}: role {} ({}); to permit it, annotate namespace {} with iam.amazonaws.com/permitted \
                     or iam.amazonaws.com/allowed-roles",
                    np.workload, np.role_arn, np.why, np.namespace
                )
            }),
        );
        section(
            &mut out,
            "role names no base ARN resolves (give --base-role-arn, here and to the webhook)",
            f.unresolved
                .iter()
                .map(|u| format!("{}: {:?}", u.workload, u.role)),
        );
        section(
            &mut out,
            "on the default ServiceAccount (give each its own ServiceAccount: every pod of the namespace \
             that runs as default may then assume the role)",
            f.default_service_account
                .iter()
                .map(|d| format!("{}: role {}", d.workload, d.role_arn)),
        );
        section(
            &mut out,
            "the ServiceAccount's role wins over the pod annotation",
            f.conflicts.iter().map(|c| {
                format!(
                    "{}: ServiceAccount role {}, pod annotation {:?}",
                    c.workload, c.service_account_role, c.pod_role
                )
            }),
        );
        section(
            &mut out,
            "iam.amazonaws.com/external-id is not carried over (web identity sends none; the trust statement \
             naming the ServiceAccount replaces it)",
            f.external_ids.iter().cloned(),
        );
        section(
            &mut out,
            "namespace annotations",
            f.namespace_warnings.iter().cloned(),
        );
        if !self.webhook_flags.is_empty() {
            let _ = writeln!(
                out,
                "webhook flags (irsa webhook serve): {}",
                self.webhook_flags.join(" ")
            );
        }
        if !self.has_changes() {
            let _ = writeln!(out, "no changes");
        }
        out
    }
}

fn render_role(out: &mut String, role: &RoleMigration) {
    let _ = write!(out, "IAM role {} ({})", role.role_name, role.role_arn);
    let workloads = || {
        role.service_accounts
            .iter()
            .flat_map(|u| u.workloads.iter().cloned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &role.status {
        RoleStatus::Missing => {
            let _ = writeln!(
                out,
                ": does not exist; create it (irsa create-role) or fix the annotation of {}",
                workloads()
            );
            return;
        }
        // Another STS's role (MinIO's `arn:minio:iam:::role/...`): no IAM account to plan in.
        RoleStatus::OtherAccount { account } if account.is_empty() => {
            let _ = writeln!(
                out,
                ": not a role of an AWS account; nothing to plan (for {})",
                workloads()
            );
            return;
        }
        RoleStatus::OtherAccount { account } => {
            let _ = writeln!(
                out,
                ": in account {account}; run irsa migrate again with --assume-role-arn into that account \
                 (for {})",
                workloads()
            );
            return;
        }
        RoleStatus::Exists => {
            let _ = writeln!(out);
        }
    }
    for u in &role.service_accounts {
        let who = format!(
            "system:serviceaccount:{}:{} <- {}",
            u.namespace,
            u.service_account,
            u.workloads.join(", ")
        );
        if u.present {
            let _ = writeln!(out, "  = trusts {who}");
        } else {
            let _ = writeln!(out, "  + trust {who}");
            let _ = writeln!(out, "    + {}", u.statement);
        }
    }
    for removed in &role.node_trust_removed {
        let _ = writeln!(out, "  - node trust {removed}");
    }
    for blocker in &role.prune_blocked {
        let _ = writeln!(out, "  ! node trust kept: {blocker}");
    }
}

fn section(out: &mut String, title: &str, lines: impl Iterator<Item = String>) {
    let mut lines = lines.peekable();
    if lines.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACCOUNT: &str = "111122223333";
    const BASE: &str = "arn:aws:iam::111122223333:role/";

    fn settings() -> Settings {
        let issuer = IssuerUrl::parse("https://oidc.example.com", false).unwrap();
        Settings {
            legacy: LegacyConfig {
                base_role_arn: Some(BASE.to_owned()),
                default_role_arn: None,
                restriction_format: RestrictionFormat::Glob,
                unrestricted_namespaces: false,
            },
            provider_arn: issuer.provider_arn(irsa_core::Partition::Aws, ACCOUNT),
            issuer,
            audience: "sts.amazonaws.com".to_owned(),
            role_arn_annotation: "eks.amazonaws.com/role-arn".to_owned(),
            account: ACCOUNT.to_owned(),
            prune_node_roles: Vec::new(),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn workload(
        kind: &'static str,
        ns: &str,
        name: &str,
        sa: &str,
        ann: &[(&str, &str)],
    ) -> Workload {
        Workload {
            kind,
            namespace: ns.to_owned(),
            name: name.to_owned(),
            service_account: sa.to_owned(),
            annotations: map(ann),
            web_identity: false,
        }
    }

    /// kube2iam in team-a (allowed-roles, names), kiam in team-b (permitted, ARNs), a forbidden one in
    /// team-c, a default-account one, an unresolved-looking one resolved by the base, a conflict.
    fn cluster() -> Cluster {
        let role = ROLE_ANNOTATION;
        Cluster {
            workloads: vec![
                workload(
                    "Deployment",
                    "team-a",
                    "web",
                    "uploader",
                    &[(role, "uploader")],
                ),
                workload(
                    "CronJob",
                    "team-a",
                    "nightly",
                    "uploader",
                    &[(role, "uploader")],
                ),
                workload(
                    "Pod",
                    "team-b",
                    "report",
                    "default",
                    &[
                        (role, "arn:aws:iam::111122223333:role/reports"),
                        (EXTERNAL_ID_ANNOTATION, "x"),
                    ],
                ),
                workload("Deployment", "team-c", "api", "api", &[(role, "uploader")]),
                workload(
                    "Deployment",
                    "team-a",
                    "both",
                    "annotated",
                    &[(role, "other")],
                ),
                workload("Deployment", "team-a", "plain", "plain", &[]),
                workload(
                    "Job",
                    "team-b",
                    "foreign",
                    "batch",
                    &[(role, "arn:aws:iam::999999999999:role/x")],
                ),
                workload("Deployment", "team-a", "ghost", "ghost", &[(role, "ghost")]),
            ],
            pods: vec![],
            namespaces: BTreeMap::from([
                (
                    "team-a".to_owned(),
                    map(&[(
                        "iam.amazonaws.com/allowed-roles",
                        r#"["uploader", "ghost"]"#,
                    )]),
                ),
                (
                    "team-b".to_owned(),
                    map(&[("iam.amazonaws.com/permitted", ".*")]),
                ),
                ("team-c".to_owned(), map(&[])),
            ]),
            service_accounts: BTreeMap::from([(
                ("team-a".to_owned(), "annotated".to_owned()),
                map(&[(
                    "eks.amazonaws.com/role-arn",
                    "arn:aws:iam::111122223333:role/annotated",
                )]),
            )]),
        }
    }

    fn node_statement() -> Value {
        json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/nodes"},
               "Action": "sts:AssumeRole"})
    }

    fn facts() -> BTreeMap<String, RoleFact> {
        let node_only = json!({"Version": "2012-10-17", "Statement": [node_statement()]});
        BTreeMap::from([
            (
                format!("{BASE}uploader"),
                RoleFact::Exists(node_only.clone()),
            ),
            (format!("{BASE}reports"), RoleFact::Exists(node_only)),
            (format!("{BASE}ghost"), RoleFact::Missing),
        ])
    }

    #[test]
    fn the_analysis_follows_the_webhook_rules() {
        let a = analyse(&cluster(), &settings());
        let uses: Vec<_> = a.uses.keys().cloned().collect();
        assert_eq!(
            uses,
            [
                "arn:aws:iam::111122223333:role/ghost",
                "arn:aws:iam::111122223333:role/reports",
                "arn:aws:iam::111122223333:role/uploader",
                "arn:aws:iam::999999999999:role/x",
            ]
        );
        assert_eq!(
            a.uses[&format!("{BASE}uploader")][&("team-a".to_owned(), "uploader".to_owned())],
            ["Deployment team-a/web", "CronJob team-a/nightly"]
        );
        let f = &a.findings;
        assert_eq!(f.not_permitted.len(), 1);
        assert_eq!(f.not_permitted[0].workload, "Deployment team-c/api");
        assert_eq!(
            f.default_service_account,
            [RoleOfWorkload {
                workload: "Pod team-b/report".into(),
                role_arn: format!("{BASE}reports")
            }]
        );
        assert_eq!(f.external_ids, ["Pod team-b/report"]);
        assert_eq!(f.conflicts.len(), 1);
        assert_eq!(f.conflicts[0].pod_role, "other");
        assert!(f.unresolved.is_empty());

        // Without a base, names are reported, not guessed.
        let mut s = settings();
        s.legacy.base_role_arn = None;
        let a = analyse(&cluster(), &s);
        assert_eq!(
            a.findings.unresolved.len(),
            4,
            "{:?}",
            a.findings.unresolved
        );
    }

    #[test]
    fn the_plan_adds_exactly_the_missing_statements() {
        let cluster = cluster();
        let s = settings();
        let a = analyse(&cluster, &s);
        let p = plan(&a, &cluster, &facts(), &s);
        let uploader = p.roles.iter().find(|r| r.role_name == "uploader").unwrap();
        assert_eq!(uploader.status, RoleStatus::Exists);
        let policy = uploader.policy.as_ref().expect("a change");
        let list = statements(policy);
        assert_eq!(list.len(), 2, "{policy}");
        assert_eq!(list[0], node_statement(), "existing statements are kept");
        assert_eq!(
            list[1]["Condition"]["StringEquals"]["oidc.example.com:sub"],
            "system:serviceaccount:team-a:uploader"
        );
        assert_eq!(
            list[1]["Principal"]["Federated"],
            "arn:aws:iam::111122223333:oidc-provider/oidc.example.com"
        );
        let ghost = p.roles.iter().find(|r| r.role_name == "ghost").unwrap();
        assert_eq!(
            (&ghost.status, &ghost.policy),
            (&RoleStatus::Missing, &None)
        );
        let foreign = p.roles.iter().find(|r| r.role_name == "x").unwrap();
        assert_eq!(
            foreign.status,
            RoleStatus::OtherAccount {
                account: "999999999999".into()
            }
        );
        assert!(p.has_changes());
        assert_eq!(
            p.webhook_flags,
            [
                "--legacy-role-annotations",
                "--base-role-arn=arn:aws:iam::111122223333:role/"
            ]
        );
        let text = p.render_text();
        for needle in [
            "IAM role uploader (arn:aws:iam::111122223333:role/uploader)\n  + trust \
             system:serviceaccount:team-a:uploader <- Deployment team-a/web, CronJob team-a/nightly\n",
            "IAM role ghost (arn:aws:iam::111122223333:role/ghost): does not exist",
            "in account 999999999999; run irsa migrate again with --assume-role-arn",
            "not permitted by their namespace",
            "Deployment team-c/api: role arn:aws:iam::111122223333:role/uploader (it has neither",
            "on the default ServiceAccount",
            "Pod team-b/report: role arn:aws:iam::111122223333:role/reports",
            "external-id is not carried over",
            "webhook flags (irsa webhook serve): --legacy-role-annotations --base-role-arn=",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        let json = p.to_json();
        assert_eq!(json["changes"], true);
        assert_eq!(json["roles"][0]["status"]["state"], "missing");
        assert_eq!(json["not_permitted"][0]["namespace"], "team-c");
    }

    #[test]
    fn a_second_plan_after_applying_changes_nothing() {
        let cluster = cluster();
        let s = settings();
        let a = analyse(&cluster, &s);
        let first = plan(&a, &cluster, &facts(), &s);
        let applied: BTreeMap<String, RoleFact> = facts()
            .into_iter()
            .map(|(arn, fact)| {
                let written = first
                    .roles
                    .iter()
                    .find(|r| r.role_arn == arn)
                    .and_then(|r| r.policy.clone());
                (arn, written.map_or(fact, RoleFact::Exists))
            })
            .collect();
        let second = plan(&a, &cluster, &applied, &s);
        assert!(!second.has_changes(), "{}", second.render_text());
        assert!(
            second
                .render_text()
                .contains("  = trusts system:serviceaccount:team-a:uploader")
        );
    }

    #[test]
    fn node_trust_is_pruned_only_when_nothing_still_needs_it() {
        let mut cluster = cluster();
        let mut s = settings();
        s.prune_node_roles = vec!["arn:aws:iam::111122223333:role/nodes".into()];
        let a = analyse(&cluster, &s);
        // Statements missing: blocked.
        let p = plan(&a, &cluster, &facts(), &s);
        let uploader = p.roles.iter().find(|r| r.role_name == "uploader").unwrap();
        assert!(uploader.node_trust_removed.is_empty());
        assert!(uploader.prune_blocked[0].contains("run irsa migrate --apply first"));
        // team-c's api is also refused the role by its namespace.
        assert!(
            uploader
                .prune_blocked
                .iter()
                .any(|b| b.contains("Deployment team-c/api"))
        );

        // Trusted, permitted, and every pod on web identity: pruned.
        cluster.workloads.retain(|w| w.namespace != "team-c");
        let a = analyse(&cluster, &s);
        let trusted: BTreeMap<String, RoleFact> = plan(&a, &cluster, &facts(), &settings())
            .roles
            .into_iter()
            .filter_map(|r| Some((r.role_arn, RoleFact::Exists(r.policy?))))
            .collect();
        let mut pod = workload(
            "Pod",
            "team-a",
            "web-1",
            "uploader",
            &[(ROLE_ANNOTATION, "uploader")],
        );
        cluster.pods = vec![pod.clone()];
        let p = plan(&a, &cluster, &trusted, &s);
        let uploader = p.roles.iter().find(|r| r.role_name == "uploader").unwrap();
        assert_eq!(
            uploader.prune_blocked.len(),
            1,
            "{:?}",
            uploader.prune_blocked
        );
        assert!(
            uploader.prune_blocked[0]
                .starts_with("Pod team-a/web-1 still runs without web identity")
        );
        pod.web_identity = true;
        cluster.pods = vec![pod];
        let p = plan(&a, &cluster, &trusted, &s);
        let uploader = p.roles.iter().find(|r| r.role_name == "uploader").unwrap();
        assert!(uploader.prune_blocked.is_empty());
        assert_eq!(uploader.node_trust_removed, [node_statement()]);
        let policy = uploader.policy.as_ref().unwrap();
        assert_eq!(statements(policy).len(), 1);
        assert_eq!(
            statements(policy)[0]["Action"],
            "sts:AssumeRoleWithWebIdentity"
        );
        assert!(p.render_text().contains("  - node trust {"));
    }
}
