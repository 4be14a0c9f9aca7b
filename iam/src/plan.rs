//! What to change, as pure data: desired state against what IAM (and the cluster) hold, and how to
//! say it in text and JSON. No I/O here; `associate` and `create_role` read, plan, print, apply.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// The provider `associate-oidc-provider` wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredProvider {
    /// The issuer URL (`https://...`).
    pub url: String,
    /// The provider's ARN.
    pub arn: String,
    /// Client IDs (audiences), in the order given.
    pub client_ids: Vec<String>,
    /// Thumbprints to set; `None` leaves them alone (and creates without any).
    pub thumbprints: Option<Vec<String>>,
    /// Tags that must be present with these values.
    pub tags: BTreeMap<String, String>,
}

/// A provider as `GetOpenIDConnectProvider` returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExistingProvider {
    /// Client IDs.
    pub client_ids: Vec<String>,
    /// Thumbprints.
    pub thumbprints: Vec<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// The change to one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ProviderChange {
    /// `CreateOpenIDConnectProvider`.
    Create {
        /// Client IDs.
        client_ids: Vec<String>,
        /// Thumbprints (may be empty).
        thumbprints: Vec<String>,
        /// Tags.
        tags: BTreeMap<String, String>,
    },
    /// Reconcile an existing provider; every field empty means nothing to do.
    Update {
        /// `AddClientIDToOpenIDConnectProvider`, one call each.
        add_client_ids: Vec<String>,
        /// `RemoveClientIDFromOpenIDConnectProvider`, one call each (only with pruning).
        remove_client_ids: Vec<String>,
        /// Client IDs present but not wanted, left alone because pruning is off.
        kept_client_ids: Vec<String>,
        /// `UpdateOpenIDConnectProviderThumbprint` with this list.
        set_thumbprints: Option<Vec<String>>,
        /// `TagOpenIDConnectProvider` with these (new keys or new values).
        add_tags: BTreeMap<String, String>,
    },
}

/// The plan for one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderPlan {
    /// The provider's ARN.
    pub arn: String,
    /// The issuer URL.
    pub url: String,
    /// What IAM holds now, if anything.
    pub existing: Option<ExistingProvider>,
    /// What to change.
    pub change: ProviderChange,
}

impl ProviderPlan {
    /// Compares `desired` with `existing`; extra client IDs are removed only with `prune_client_ids`.
    pub fn new(
        desired: &DesiredProvider,
        existing: Option<ExistingProvider>,
        prune_client_ids: bool,
    ) -> ProviderPlan {
        let change = match &existing {
            None => ProviderChange::Create {
                client_ids: dedup(&desired.client_ids),
                thumbprints: desired.thumbprints.clone().unwrap_or_default(),
                tags: desired.tags.clone(),
            },
            Some(have) => {
                let add_client_ids = dedup(&desired.client_ids)
                    .into_iter()
                    .filter(|id| !have.client_ids.contains(id))
                    .collect();
                let extra: Vec<String> = have
                    .client_ids
                    .iter()
                    .filter(|id| !desired.client_ids.contains(id))
                    .cloned()
                    .collect();
                let (remove_client_ids, kept_client_ids) = if prune_client_ids {
                    (extra, Vec::new())
                } else {
                    (Vec::new(), extra)
                };
                let set_thumbprints = desired
                    .thumbprints
                    .as_ref()
                    .filter(|want| !same_thumbprints(want, &have.thumbprints))
                    .cloned();
                let add_tags = desired
                    .tags
                    .iter()
                    .filter(|(k, v)| have.tags.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                ProviderChange::Update {
                    add_client_ids,
                    remove_client_ids,
                    kept_client_ids,
                    set_thumbprints,
                    add_tags,
                }
            }
        };
        ProviderPlan {
            arn: desired.arn.clone(),
            url: desired.url.clone(),
            existing,
            change,
        }
    }

    /// Whether applying the plan would call IAM at all.
    pub fn has_changes(&self) -> bool {
        match &self.change {
            ProviderChange::Create { .. } => true,
            ProviderChange::Update {
                add_client_ids,
                remove_client_ids,
                set_thumbprints,
                add_tags,
                ..
            } => {
                !add_client_ids.is_empty()
                    || !remove_client_ids.is_empty()
                    || set_thumbprints.is_some()
                    || !add_tags.is_empty()
            }
        }
    }

    /// The plan for people: what exists, then one line per change, or "no changes".
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "OIDC provider {}", self.arn);
        match &self.existing {
            None => {
                let _ = writeln!(out, "  exists: no");
            }
            Some(have) => {
                let _ = writeln!(
                    out,
                    "  exists: client IDs {}; thumbprints {}; tags {}",
                    list(&have.client_ids),
                    list(&have.thumbprints),
                    tags(&have.tags)
                );
            }
        }
        match &self.change {
            ProviderChange::Create {
                client_ids,
                thumbprints,
                tags: t,
            } => {
                let _ = writeln!(
                    out,
                    "  + create {} with client IDs {}; thumbprints {}; tags {}",
                    self.url,
                    list(client_ids),
                    list(thumbprints),
                    tags(t)
                );
            }
            ProviderChange::Update {
                add_client_ids,
                remove_client_ids,
                kept_client_ids,
                set_thumbprints,
                add_tags,
            } => {
                for id in add_client_ids {
                    let _ = writeln!(out, "  + add client ID {id}");
                }
                for id in remove_client_ids {
                    let _ = writeln!(out, "  - remove client ID {id}");
                }
                if let (Some(want), Some(have)) = (set_thumbprints, &self.existing) {
                    let _ = writeln!(
                        out,
                        "  ~ thumbprints {} -> {}",
                        list(&have.thumbprints),
                        list(want)
                    );
                }
                for (k, v) in add_tags {
                    let _ = writeln!(out, "  + tag {k}={v}");
                }
                for id in kept_client_ids {
                    let _ = writeln!(
                        out,
                        "  = client ID {id} kept (not asked for; --prune-client-ids removes it)"
                    );
                }
                if !self.has_changes() {
                    let _ = writeln!(out, "  no changes");
                }
            }
        }
        out
    }

    /// The plan for programs.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["changes"] = self.has_changes().into();
        v
    }
}

/// Whether two thumbprint lists hold the same fingerprints (IAM keeps no meaningful order or case).
fn same_thumbprints(a: &[String], b: &[String]) -> bool {
    let norm = |l: &[String]| {
        let mut l: Vec<String> = l.iter().map(|t| t.to_ascii_lowercase()).collect();
        l.sort();
        l.dedup();
        l
    };
    norm(a) == norm(b)
}

fn dedup(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

fn tags(t: &BTreeMap<String, String>) -> String {
    if t.is_empty() {
        "(none)".to_owned()
    } else {
        t.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

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
    /// The annotation key.
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

impl RolePlan {
    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        self.trust_change != TrustChange::None
            || !self.attach_policy_arns.is_empty()
            || self
                .service_account
                .as_ref()
                .is_some_and(|sa| sa.change != ServiceAccountChange::None)
    }

    /// The plan for people.
    pub fn render_text(&self) -> String {
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

    /// The plan for programs.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["changes"] = self.has_changes().into();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:iam::111122223333:oidc-provider/oidc.example.com";
    const T1: &str = "1111111111111111111111111111111111111111";
    const T2: &str = "2222222222222222222222222222222222222222";

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn desired() -> DesiredProvider {
        DesiredProvider {
            url: "https://oidc.example.com".into(),
            arn: ARN.into(),
            client_ids: s(&["sts.amazonaws.com"]),
            thumbprints: Some(s(&[T1])),
            tags: BTreeMap::from([("cluster".to_owned(), "one".to_owned())]),
        }
    }

    fn existing() -> ExistingProvider {
        ExistingProvider {
            client_ids: s(&["sts.amazonaws.com"]),
            thumbprints: s(&[T1]),
            tags: BTreeMap::from([("cluster".to_owned(), "one".to_owned())]),
        }
    }

    #[test]
    fn create_when_absent() {
        let p = ProviderPlan::new(&desired(), None, false);
        assert!(p.has_changes());
        assert_eq!(
            p.render_text(),
            format!(
                "OIDC provider {ARN}\n  exists: no\n  + create https://oidc.example.com with client IDs sts.amazonaws.com; thumbprints {T1}; tags cluster=one\n"
            )
        );
        assert_eq!(
            p.to_json(),
            json!({"arn": ARN, "url": "https://oidc.example.com", "existing": null, "changes": true,
                   "change": {"action": "create", "client_ids": ["sts.amazonaws.com"],
                              "thumbprints": [T1], "tags": {"cluster": "one"}}})
        );
    }

    #[test]
    fn nothing_to_do() {
        let p = ProviderPlan::new(&desired(), Some(existing()), false);
        assert!(!p.has_changes());
        assert!(
            p.render_text().ends_with("  no changes\n"),
            "{}",
            p.render_text()
        );
        assert_eq!(p.to_json()["changes"], json!(false));
        // Case and order of thumbprints do not count.
        let mut have = existing();
        have.thumbprints = vec![T1.to_uppercase()];
        assert!(!ProviderPlan::new(&desired(), Some(have), false).has_changes());
    }

    #[test]
    fn add_client_id() {
        let mut want = desired();
        want.client_ids.push("minio".into());
        let p = ProviderPlan::new(&want, Some(existing()), false);
        assert!(p.has_changes());
        assert!(p.render_text().contains("  + add client ID minio\n"));
        assert_eq!(p.to_json()["change"]["add_client_ids"], json!(["minio"]));
    }

    #[test]
    fn extra_client_id_is_kept_unless_pruned() {
        let mut have = existing();
        have.client_ids.push("old".into());
        let kept = ProviderPlan::new(&desired(), Some(have.clone()), false);
        assert!(!kept.has_changes());
        assert!(kept.render_text().contains("client ID old kept"));
        assert_eq!(kept.to_json()["change"]["kept_client_ids"], json!(["old"]));

        let pruned = ProviderPlan::new(&desired(), Some(have), true);
        assert!(pruned.has_changes());
        assert!(pruned.render_text().contains("  - remove client ID old\n"));
        assert_eq!(
            pruned.to_json()["change"]["remove_client_ids"],
            json!(["old"])
        );
    }

    #[test]
    fn thumbprint_change() {
        let mut want = desired();
        want.thumbprints = Some(s(&[T2]));
        let p = ProviderPlan::new(&want, Some(existing()), false);
        assert!(
            p.render_text()
                .contains(&format!("  ~ thumbprints {T1} -> {T2}\n"))
        );
        assert_eq!(p.to_json()["change"]["set_thumbprints"], json!([T2]));
        // `none` leaves them alone.
        want.thumbprints = None;
        assert!(!ProviderPlan::new(&want, Some(existing()), false).has_changes());
    }

    #[test]
    fn add_and_change_tags() {
        let mut want = desired();
        want.tags.insert("cluster".into(), "two".into());
        want.tags.insert("owner".into(), "platform".into());
        let mut have = existing();
        have.tags.insert("unrelated".into(), "stays".into());
        let p = ProviderPlan::new(&want, Some(have), false);
        let text = p.render_text();
        assert!(
            text.contains("  + tag cluster=two\n  + tag owner=platform\n"),
            "{text}"
        );
        assert!(!text.contains("+ tag unrelated"), "{text}");
        assert_eq!(
            p.to_json()["change"]["add_tags"],
            json!({"cluster": "two", "owner": "platform"})
        );
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
