//! The plan of `associate-oidc-provider`: the OIDC provider it wants against the one IAM holds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::{Plan, dedup, list};

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
    /// Reconcile an existing provider.
    Update(ProviderUpdate),
}

/// How an existing provider is reconciled; every field empty means nothing to do.
///
/// A struct of its own so that what counts as a change ([`ProviderUpdate::has_changes`]) is said once,
/// for the plan and for the calls that apply it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProviderUpdate {
    /// `AddClientIDToOpenIDConnectProvider`, one call each.
    pub add_client_ids: Vec<String>,
    /// `RemoveClientIDFromOpenIDConnectProvider`, one call each (only with pruning).
    pub remove_client_ids: Vec<String>,
    /// Client IDs present but not wanted, left alone because pruning is off.
    pub kept_client_ids: Vec<String>,
    /// `UpdateOpenIDConnectProviderThumbprint` with this list.
    pub set_thumbprints: Option<Vec<String>>,
    /// `TagOpenIDConnectProvider` with these (new keys or new values).
    pub add_tags: BTreeMap<String, String>,
}

impl ProviderUpdate {
    /// Whether applying the update would call IAM at all (kept client IDs are only reported).
    pub fn has_changes(&self) -> bool {
        !self.add_client_ids.is_empty()
            || !self.remove_client_ids.is_empty()
            || self.set_thumbprints.is_some()
            || !self.add_tags.is_empty()
    }
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
                ProviderChange::Update(ProviderUpdate {
                    add_client_ids,
                    remove_client_ids,
                    kept_client_ids,
                    set_thumbprints,
                    add_tags,
                })
            }
        };
        ProviderPlan {
            arn: desired.arn.clone(),
            url: desired.url.clone(),
            existing,
            change,
        }
    }
}

impl Plan for ProviderPlan {
    /// Whether applying the plan would call IAM at all.
    fn has_changes(&self) -> bool {
        match &self.change {
            ProviderChange::Create { .. } => true,
            ProviderChange::Update(update) => update.has_changes(),
        }
    }

    /// The plan for people: what exists, then one line per change, or "no changes".
    fn render_text(&self) -> String {
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
            ProviderChange::Update(update) => {
                for id in &update.add_client_ids {
                    let _ = writeln!(out, "  + add client ID {id}");
                }
                for id in &update.remove_client_ids {
                    let _ = writeln!(out, "  - remove client ID {id}");
                }
                if let (Some(want), Some(have)) = (&update.set_thumbprints, &self.existing) {
                    let _ = writeln!(
                        out,
                        "  ~ thumbprints {} -> {}",
                        list(&have.thumbprints),
                        list(want)
                    );
                }
                for (k, v) in &update.add_tags {
                    let _ = writeln!(out, "  + tag {k}={v}");
                }
                for id in &update.kept_client_ids {
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

/// `k=v, ...`, or `(none)`.
fn tags(t: &BTreeMap<String, String>) -> String {
    list(
        &t.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
    )
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
}
