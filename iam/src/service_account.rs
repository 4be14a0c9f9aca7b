//! The ServiceAccount side of `create-role --annotate-service-account`: the `<prefix>/role-arn`
//! annotation the webhook reads, planned and then written (a new ServiceAccount, or a merge patch).
//!
//! The key is built from `--annotation-prefix` with the webhook's own rule
//! ([`irsa_core::names::annotation_key`]): a webhook run with another prefix must find the role.

use std::path::Path;

use irsa_core::names::{InvalidAnnotationPrefix, annotation, annotation_key, annotation_prefix};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::plan::{ServiceAccountChange, ServiceAccountPlan};

/// Why the ServiceAccount could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceAccountError {
    /// No usable Kubernetes configuration.
    #[error("cannot configure the Kubernetes client: {0}")]
    KubeConfig(String),
    /// A Kubernetes call failed.
    #[error("{action} ServiceAccount {namespace}/{name}: {source}")]
    Kube {
        /// What was attempted.
        action: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The client's error.
        source: Box<kube::Error>,
    },
}

/// The role annotation's key under `prefix` (`<prefix>/role-arn`), once the prefix is validated as
/// the webhook validates its `--annotation-prefix`.
pub fn role_arn_annotation(prefix: &str) -> Result<String, InvalidAnnotationPrefix> {
    Ok(annotation_key(
        annotation_prefix(prefix)?,
        annotation::ROLE_ARN,
    ))
}

/// What to do to `existing` (or to its absence) so that `annotation` names `role_arn`.
pub fn change(
    existing: Option<&ServiceAccount>,
    annotation: &str,
    role_arn: &str,
) -> ServiceAccountChange {
    let Some(sa) = existing else {
        return ServiceAccountChange::Create;
    };
    let current = sa
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotation))
        .cloned();
    if current.as_deref() == Some(role_arn) {
        ServiceAccountChange::None
    } else {
        ServiceAccountChange::Annotate { previous: current }
    }
}

/// The merge patch that sets the plan's annotation and touches nothing else.
pub fn merge_patch(plan: &ServiceAccountPlan) -> Value {
    json!({"metadata": {"annotations": {plan.annotation.as_str(): plan.value}}})
}

/// The ServiceAccount to create when there is none: just its name and the annotation.
pub fn new_service_account(plan: &ServiceAccountPlan) -> ServiceAccount {
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some(plan.name.clone()),
            namespace: Some(plan.namespace.clone()),
            annotations: Some([(plan.annotation.clone(), plan.value.clone())].into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The ServiceAccounts of `namespace`, through a client from `kubeconfig` (or the inferred
/// configuration).
pub async fn api(
    kubeconfig: Option<&Path>,
    namespace: &str,
) -> Result<Api<ServiceAccount>, ServiceAccountError> {
    // kube builds rustls configs with the process default provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = irsa_serve::kube_client::client(kubeconfig)
        .await
        .map_err(|e| ServiceAccountError::KubeConfig(e.to_string()))?;
    Ok(Api::namespaced(client, namespace))
}

/// Reads the ServiceAccount and plans its `annotation` = `role_arn`.
pub async fn plan(
    api: &Api<ServiceAccount>,
    namespace: &str,
    name: &str,
    annotation: &str,
    role_arn: &str,
) -> Result<ServiceAccountPlan, ServiceAccountError> {
    let existing = api
        .get_opt(name)
        .await
        .map_err(|source| ServiceAccountError::Kube {
            action: "read",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source: Box::new(source),
        })?;
    Ok(ServiceAccountPlan {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        annotation: annotation.to_owned(),
        value: role_arn.to_owned(),
        change: change(existing.as_ref(), annotation, role_arn),
    })
}

/// Creates or merge-patches the ServiceAccount as planned.
pub async fn apply(
    api: &Api<ServiceAccount>,
    plan: &ServiceAccountPlan,
) -> Result<(), ServiceAccountError> {
    let kube_error = |action, source| ServiceAccountError::Kube {
        action,
        namespace: plan.namespace.clone(),
        name: plan.name.clone(),
        source: Box::new(source),
    };
    let patch = || async {
        api.patch(
            &plan.name,
            &PatchParams::default(),
            &Patch::Merge(&merge_patch(plan)),
        )
        .await
        .map(drop)
        .map_err(|e| kube_error("annotate", e))
    };
    match plan.change {
        ServiceAccountChange::None => Ok(()),
        ServiceAccountChange::Annotate { .. } => patch().await,
        ServiceAccountChange::Create => {
            match api
                .create(&PostParams::default(), &new_service_account(plan))
                .await
            {
                Ok(_) => Ok(()),
                // Created meanwhile by someone else: annotate theirs.
                Err(kube::Error::Api(status)) if status.code == 409 => patch().await,
                Err(e) => Err(kube_error("create", e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::111122223333:role/uploader";

    fn plan_for(prefix: &str, change: ServiceAccountChange) -> ServiceAccountPlan {
        ServiceAccountPlan {
            namespace: "team-a".into(),
            name: "uploader".into(),
            annotation: role_arn_annotation(prefix).unwrap(),
            value: ROLE.into(),
            change,
        }
    }

    fn annotated(key: &str, value: &str) -> ServiceAccount {
        ServiceAccount {
            metadata: ObjectMeta {
                annotations: Some([(key.to_owned(), value.to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The defect: the annotation was `eks.amazonaws.com/role-arn` whatever the webhook read.
    #[test]
    fn the_annotation_follows_the_prefix() {
        assert_eq!(
            role_arn_annotation("eks.amazonaws.com").unwrap(),
            "eks.amazonaws.com/role-arn"
        );
        assert_eq!(
            role_arn_annotation(" irsa.example.com ").unwrap(),
            "irsa.example.com/role-arn"
        );
        let plan = plan_for("irsa.example.com", ServiceAccountChange::Create);
        assert_eq!(
            merge_patch(&plan),
            json!({"metadata": {"annotations": {"irsa.example.com/role-arn": ROLE}}})
        );
        let created = new_service_account(&plan);
        assert_eq!(
            created.metadata.annotations,
            Some([("irsa.example.com/role-arn".to_owned(), ROLE.to_owned())].into())
        );
        assert_eq!(created.metadata.name.as_deref(), Some("uploader"));
        assert_eq!(created.metadata.namespace.as_deref(), Some("team-a"));
    }

    #[test]
    fn the_change_reads_the_prefixed_key_only() {
        let key = "irsa.example.com/role-arn";
        assert_eq!(change(None, key, ROLE), ServiceAccountChange::Create);
        assert_eq!(
            change(Some(&annotated(key, ROLE)), key, ROLE),
            ServiceAccountChange::None
        );
        // The EKS key naming the role does not count when the webhook reads another prefix.
        assert_eq!(
            change(
                Some(&annotated("eks.amazonaws.com/role-arn", ROLE)),
                key,
                ROLE
            ),
            ServiceAccountChange::Annotate { previous: None }
        );
        assert_eq!(
            change(Some(&annotated(key, "arn:aws:iam::1:role/old")), key, ROLE),
            ServiceAccountChange::Annotate {
                previous: Some("arn:aws:iam::1:role/old".into())
            }
        );
    }

    #[test]
    fn bad_prefixes_are_refused_like_the_webhook_does() {
        for bad in ["", "  ", "eks.amazonaws.com/", "a/b", "Upper.io"] {
            let err = role_arn_annotation(bad).unwrap_err().to_string();
            assert!(err.contains("--annotation-prefix"), "{bad:?}: {err}");
        }
    }
}
