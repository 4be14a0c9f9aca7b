//! The plan of `create-role`: the role's trust policy, its managed policies and, with
//! `--annotate-service-account`, the ServiceAccount's role annotation.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::Plan;

/// The change to a role's trust policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustChange {
    /// The role does not exist: `CreateRole` with the policy.
    CreateRole,
    /// The role's trust policy differs: `UpdateAssumeRolePolicy` replaces it.
    Replace {
        /// The policy the role has now (decoded).
        existing: Value,
    },
    /// The role already has exactly this trust policy.
    None,
}

/// The change to the ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ServiceAccountChange {
    /// The ServiceAccount does not exist: create it with the annotation.
    Create,
    /// Merge-patch the annotation (it is missing or names another role).
    Annotate {
        /// The annotation's current value.
        previous: Option<String>,
    },
    /// The annotation already names the role.
    None,
}

/// The ServiceAccount part of a role plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceAccountPlan {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The annotation key: `<--annotation-prefix>/role-arn`.
    pub annotation: String,
    /// The value it must have.
    pub value: String,
    /// What to do.
    pub change: ServiceAccountChange,
}

/// The plan for `create-role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolePlan {
    /// Role name.
    pub role_name: String,
    /// Role ARN (predicted when the role does not exist yet).
    pub role_arn: String,
    /// The subject the trust policy admits.
    pub subject: String,
    /// The audience the trust policy admits.
    pub audience: String,
    /// The exact trust policy document.
    pub trust_policy: Value,
    /// What happens to the trust policy.
    pub trust_change: TrustChange,
    /// `AttachRolePolicy` for each of these.
    pub attach_policy_arns: Vec<String>,
    /// Policies asked for that are attached already.
    pub attached_already: Vec<String>,
    /// The ServiceAccount, with `--annotate-service-account`.
    pub service_account: Option<ServiceAccountPlan>,
}

impl Plan for RolePlan {
    fn has_changes(&self) -> bool {
        self.trust_change != TrustChange::None
            || !self.attach_policy_arns.is_empty()
            || self
                .service_account
                .as_ref()
                .is_some_and(|sa| sa.change != ServiceAccountChange::None)
    }

    fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "IAM role {} ({})", self.role_name, self.role_arn);
        let who = format!("{} with audience {}", self.subject, self.audience);
        match &self.trust_change {
            TrustChange::CreateRole => {
                let _ = writeln!(out, "  + create, assumable only by {who}");
            }
            TrustChange::Replace { .. } => {
                let _ = writeln!(
                    out,
                    "  ~ trust policy differs: replace it with one for {who} only"
                );
            }
            TrustChange::None => {
                let _ = writeln!(out, "  exists, assumable only by {who}");
            }
        }
        for arn in &self.attached_already {
            let _ = writeln!(out, "  = policy {arn} attached");
        }
        for arn in &self.attach_policy_arns {
            let _ = writeln!(out, "  + attach policy {arn}");
        }
        if let Some(sa) = &self.service_account {
            let _ = writeln!(out, "ServiceAccount {}/{}", sa.namespace, sa.name);
            match &sa.change {
                ServiceAccountChange::Create => {
                    let _ = writeln!(out, "  + create with {}={}", sa.annotation, sa.value);
                }
                ServiceAccountChange::Annotate { previous: None } => {
                    let _ = writeln!(out, "  + annotate {}={}", sa.annotation, sa.value);
                }
                ServiceAccountChange::Annotate {
                    previous: Some(old),
                } => {
                    let _ = writeln!(out, "  ~ annotate {}: {old} -> {}", sa.annotation, sa.value);
                }
                ServiceAccountChange::None => {
                    let _ = writeln!(out, "  = {}={}", sa.annotation, sa.value);
                }
            }
        }
        if !self.has_changes() {
            let _ = writeln!(out, "no changes");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn role_plan() -> RolePlan {
        RolePlan {
            role_name: "uploader".into(),
            role_arn: "arn:aws:iam::111122223333:role/uploader".into(),
            subject: "system:serviceaccount:team-a:uploader".into(),
            audience: "sts.amazonaws.com".into(),
            trust_policy: json!({}),
            trust_change: TrustChange::None,
            attach_policy_arns: vec![],
            attached_already: s(&["arn:aws:iam::aws:policy/ReadOnlyAccess"]),
            service_account: Some(ServiceAccountPlan {
                namespace: "team-a".into(),
                name: "uploader".into(),
                annotation: "eks.amazonaws.com/role-arn".into(),
                value: "arn:aws:iam::111122223333:role/uploader".into(),
                change: ServiceAccountChange::None,
            }),
        }
    }

    #[test]
    fn role_plan_rendering() {
        let p = role_plan();
        assert!(!p.has_changes());
        assert!(p.render_text().ends_with("no changes\n"));
        let mut p = role_plan();
        p.trust_change = TrustChange::CreateRole;
        p.attach_policy_arns = s(&["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]);
        p.service_account.as_mut().unwrap().change = ServiceAccountChange::Annotate {
            previous: Some("arn:aws:iam::111122223333:role/old".into()),
        };
        let text = p.render_text();
        assert!(
            text.contains("  + create, assumable only by system:serviceaccount:team-a:uploader")
        );
        assert!(text.contains("  + attach policy arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"));
        assert!(text.contains(
            "  ~ annotate eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/old -> "
        ));
        let v = p.to_json();
        assert_eq!(v["trust_change"], json!("create_role"));
        assert_eq!(v["service_account"]["change"]["action"], json!("annotate"));
        assert_eq!(v["changes"], json!(true));
    }
}
