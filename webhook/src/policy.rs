//! The admission policy: whether a pod the webhook cannot give credentials to is admitted or denied.
//!
//! `--on-lookup-failure` and `--on-forbidden-role` are both an [`OnFailure`], and both are applied here and
//! nowhere else, on what the lookups and [`mutate`](crate::mutate::mutate) report explicitly.

use json_patch::Patch;

use crate::lookup::LookupError;
use crate::mutate::Mutation;
use crate::review::Decision;

/// What to do with a pod the webhook cannot give credentials to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnFailure {
    /// Admit the pod without credentials, with a warning the client sees (and a metric).
    #[default]
    Admit,
    /// Refuse the pod; its client (a ReplicaSet controller, say) retries.
    Deny,
}

/// The policy flags of `irsa webhook serve`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// `--on-lookup-failure`: the pod's ServiceAccount or Namespace cannot be looked up.
    pub on_lookup_failure: OnFailure,
    /// `--on-forbidden-role`: the namespace's `iam.amazonaws.com/permitted` does not allow the role.
    pub on_forbidden_role: OnFailure,
}

impl Policy {
    /// The answer for a mutation: its patch and warnings, or, when the namespace forbids the role and
    /// `--on-forbidden-role=deny`, a denial whose message is the reason (any other warning stays a warning).
    pub fn mutation(&self, mutation: Mutation) -> Decision {
        let Mutation {
            patch,
            warnings,
            forbidden,
            ..
        } = mutation;
        let warnings = warnings.into_iter().map(|warning| warning.message);
        match (forbidden, self.on_forbidden_role) {
            (Some(reason), OnFailure::Deny) => Decision::Deny {
                message: reason.message,
                warnings: warnings.collect(),
            },
            // Admitted without credentials: the reason is the first thing the client sees.
            (forbidden, _) => Decision::Allow {
                patch,
                warnings: forbidden
                    .map(|reason| reason.message)
                    .into_iter()
                    .chain(warnings)
                    .collect(),
            },
        }
    }

    /// The answer when the pod's `what` (`ServiceAccount ns/name`, `Namespace ns`) could not be looked up.
    pub fn lookup_failed(&self, what: &str, err: &LookupError) -> Decision {
        match self.on_lookup_failure {
            OnFailure::Admit => Decision::Allow {
                patch: Patch(Vec::new()),
                warnings: vec![format!(
                    "irsa: could not look up {what} ({err}); the pod was admitted WITHOUT AWS web-identity \
                     credentials"
                )],
            },
            OnFailure::Deny => Decision::Deny {
                message: format!(
                    "irsa: could not look up {what} ({err}); retry, or check the irsa webhook's logs"
                ),
                warnings: Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::InjectionConfig,
        mutate::{Outcome, mutate},
        review::response,
        views::{NamespaceView, ServiceAccountView},
        warning::{Warning, WarningReason},
    };
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    fn decode_response(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn deny_forbidden() -> Policy {
        Policy {
            on_forbidden_role: OnFailure::Deny,
            ..Policy::default()
        }
    }

    #[test]
    fn forbidden_is_denied_only_when_asked() {
        let mutation = Mutation {
            patch: Patch(vec![]),
            warnings: vec![],
            outcome: Outcome::Forbidden,
            forbidden: Some(Warning::new(
                WarningReason::ForbiddenRole,
                "role not permitted",
            )),
        };
        let admitted = Policy::default().mutation(mutation.clone());
        assert_eq!(
            admitted,
            Decision::Allow {
                patch: Patch(vec![]),
                warnings: vec!["role not permitted".into()]
            }
        );
        let denied = deny_forbidden().mutation(mutation);
        let out = decode_response(&response("u3", &denied));
        assert_eq!(
            out["response"],
            json!({"uid": "u3", "allowed": false,
                   "status": {"status": "Failure", "code": 403, "reason": "Forbidden", "message": "role not permitted"}})
        );
    }

    /// The denial comes from the reason `mutate` reports, not from where its warning sits in the list.
    #[test]
    fn the_forbidden_reason_is_the_message_and_other_warnings_stay_warnings() {
        let mutation = Mutation {
            patch: Patch(vec![]),
            warnings: vec![Warning::new(WarningReason::UnknownContainer, "other")],
            outcome: Outcome::Forbidden,
            forbidden: Some(Warning::new(
                WarningReason::InvalidNamespaceRegex,
                "bad regex",
            )),
        };
        assert_eq!(
            deny_forbidden().mutation(mutation.clone()),
            Decision::Deny {
                message: "bad regex".into(),
                warnings: vec!["other".into()]
            }
        );
        assert_eq!(
            Policy::default().mutation(mutation),
            Decision::Allow {
                patch: Patch(vec![]),
                warnings: vec!["bad regex".into(), "other".into()]
            }
        );
    }

    #[test]
    fn deny_forbidden_leaves_other_outcomes_admitted() {
        let pod = json!({"spec": {"containers": [{"name": "app"}]}});
        let sa = ServiceAccountView::new("arn:aws:iam::123456789012:role/app");
        let mutation = mutate(&pod, Some(&sa), None, &InjectionConfig::default());
        assert_eq!(mutation.outcome, Outcome::Mutated);
        let patch = mutation.patch.clone();
        assert_eq!(
            deny_forbidden().mutation(mutation),
            Decision::Allow {
                patch,
                warnings: vec![]
            }
        );
    }

    #[test]
    fn a_namespace_that_forbids_the_role_is_reported_explicitly() {
        let pod = json!({"spec": {"containers": [{"name": "app"}]}});
        let sa = ServiceAccountView::new("arn:aws:iam::123456789012:role/app");
        let annotations = BTreeMap::from([(
            "iam.amazonaws.com/permitted".to_owned(),
            "arn:aws:iam::123456789012:role/other".to_owned(),
        )]);
        let ns = NamespaceView::from_annotations(&annotations).unwrap();
        let mutation = mutate(&pod, Some(&sa), Some(&ns), &InjectionConfig::default());
        assert_eq!(mutation.outcome, Outcome::Forbidden);
        assert!(mutation.warnings.is_empty());
        let reason = mutation.forbidden.clone().expect("the reason");
        assert_eq!(reason.reason, WarningReason::ForbiddenRole);
        let Decision::Deny { message, warnings } = deny_forbidden().mutation(mutation) else {
            panic!("not denied");
        };
        assert_eq!((message, warnings), (reason.message, vec![]));
    }

    /// A role a pod's `container-role-arns` asks for and the namespace forbids: admitted with the
    /// ServiceAccount's role for that container (the reason first among the warnings), or denied in the
    /// strict mode, like the ServiceAccount's own role.
    #[test]
    fn a_forbidden_container_role_follows_the_same_policy() {
        let pod = json!({
            "metadata": {"annotations": {"irsa-rs.github.io/container-role-arns":
                r#"{"uploader": "arn:aws:iam::123456789012:role/other"}"#}},
            "spec": {"containers": [{"name": "app"}, {"name": "uploader"}]}});
        let sa = ServiceAccountView::new("arn:aws:iam::123456789012:role/app");
        let ns = NamespaceView::compile("arn:aws:iam::123456789012:role/app");
        let mutation = mutate(&pod, Some(&sa), Some(&ns), &InjectionConfig::default());
        assert_eq!(mutation.outcome, Outcome::Mutated);
        let reason = mutation.forbidden.clone().expect("the reason");
        assert_eq!(reason.reason, WarningReason::ForbiddenRole);
        let Decision::Allow { patch, warnings } = Policy::default().mutation(mutation.clone())
        else {
            panic!("not admitted");
        };
        assert_eq!(patch, mutation.patch);
        assert_eq!(warnings, std::slice::from_ref(&reason.message));
        assert_eq!(
            deny_forbidden().mutation(mutation),
            Decision::Deny {
                message: reason.message,
                warnings: vec![]
            }
        );
    }

    /// A kiam/kube2iam pod role its namespace does not permit is denied in the strict mode, like the
    /// ServiceAccount's; admitted, it gets nothing, with the reason naming the annotations that would permit it.
    #[test]
    fn a_forbidden_legacy_pod_role_follows_the_same_policy() {
        let pod = json!({
            "metadata": {"annotations": {"iam.amazonaws.com/role": "arn:aws:iam::123456789012:role/app"}},
            "spec": {"containers": [{"name": "app"}]}});
        let cfg = InjectionConfig {
            legacy: Some(crate::legacy::LegacyConfig {
                base_role_arn: None,
                default_role_arn: None,
                restriction_format: crate::legacy::RestrictionFormat::Glob,
                unrestricted_namespaces: false,
            }),
            ..InjectionConfig::default()
        };
        let mutation = mutate(&pod, None, None, &cfg);
        assert_eq!(mutation.outcome, Outcome::Forbidden);
        let reason = mutation.forbidden.clone().expect("the reason");
        assert!(
            reason.message.contains("iam.amazonaws.com/allowed-roles"),
            "{}",
            reason.message
        );
        let Decision::Deny { message, .. } = deny_forbidden().mutation(mutation.clone()) else {
            panic!("not denied");
        };
        assert_eq!(message, reason.message);
        let Decision::Allow { patch, warnings } = Policy::default().mutation(mutation) else {
            panic!("not admitted");
        };
        assert!(patch.is_empty());
        assert_eq!(warnings, [reason.message]);
    }

    #[test]
    fn lookup_failures_admit_with_a_warning_or_deny() {
        let err = LookupError::RateLimited;
        let Decision::Allow { patch, warnings } =
            Policy::default().lookup_failed("ServiceAccount team/app", &err)
        else {
            panic!("not admitted");
        };
        assert!(patch.is_empty());
        assert_eq!(
            warnings,
            [
                "irsa: could not look up ServiceAccount team/app (too many cache misses: direct lookups are \
                 rate-limited); the pod was admitted WITHOUT AWS web-identity credentials"
            ]
        );
        let deny = Policy {
            on_lookup_failure: OnFailure::Deny,
            ..Policy::default()
        };
        assert_eq!(
            deny.lookup_failed("Namespace team", &err),
            Decision::Deny {
                message: "irsa: could not look up Namespace team (too many cache misses: direct lookups are \
                          rate-limited); retry, or check the irsa webhook's logs"
                    .into(),
                warnings: vec![]
            }
        );
    }

    /// The flag values and default of both flags: `admit` (the default) and `deny`.
    #[test]
    fn flag_values() {
        use clap::ValueEnum as _;
        let names: Vec<_> = OnFailure::value_variants()
            .iter()
            .map(|v| v.to_possible_value().unwrap().get_name().to_owned())
            .collect();
        assert_eq!(names, ["admit", "deny"]);
        assert_eq!(OnFailure::default(), OnFailure::Admit);
    }
}
