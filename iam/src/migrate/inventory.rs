//! What `irsa migrate` reads from the cluster, reduced to what the plan needs: for each workload (a pod
//! template, or a pod nobody owns) its kind, place, ServiceAccount and annotations; for each running pod
//! whether it already has web-identity credentials; the namespaces' restriction annotations; the
//! ServiceAccounts' role annotations. Pure conversions of the typed objects; [`super::cluster`] lists them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use irsa_core::names::env;

/// A pod template (or an unowned pod): what runs, as whom, with which legacy annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`, `Job`, `CronJob` or `Pod`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The ServiceAccount its pods run as (`default` when the template names none).
    pub service_account: String,
    /// The pod template's annotations (the pod's own, for a pod).
    #[serde(skip)]
    pub annotations: BTreeMap<String, String>,
    /// Pods only: whether a container already has `AWS_WEB_IDENTITY_TOKEN_FILE` (the webhook injected it).
    #[serde(skip)]
    pub web_identity: bool,
}

impl Workload {
    /// `Deployment team-a/web`, as the report names it.
    pub fn label(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Everything the plan reads from the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    /// Pod templates and the pods no controller owns: what must keep getting credentials.
    pub workloads: Vec<Workload>,
    /// Every pod, owned or not: the running state `--prune-node-trust` checks.
    pub pods: Vec<Workload>,
    /// Namespaces' annotations, by name.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// ServiceAccounts' annotations, by (namespace, name).
    pub service_accounts: BTreeMap<(String, String), BTreeMap<String, String>>,
}

fn owned(meta: &ObjectMeta) -> bool {
    meta.owner_references
        .as_ref()
        .is_some_and(|owners| !owners.is_empty())
}

fn from_template(
    kind: &'static str,
    meta: &ObjectMeta,
    template: Option<&PodTemplateSpec>,
) -> Workload {
    let annotations = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    Workload {
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        service_account: service_account(template.and_then(|t| t.spec.as_ref())),
        annotations,
        web_identity: false,
    }
}

/// `serviceAccountName`, else the deprecated `serviceAccount`, else `default`, as the apiserver resolves it.
fn service_account(spec: Option<&PodSpec>) -> String {
    spec.and_then(|s| {
        s.service_account_name
            .clone()
            .or_else(|| s.service_account.clone())
    })
    .filter(|name| !name.is_empty())
    .unwrap_or_else(|| "default".to_owned())
}

/// A Deployment's pod template.
pub fn deployment(d: &Deployment) -> Workload {
    from_template(
        "Deployment",
        &d.metadata,
        d.spec.as_ref().map(|s| &s.template),
    )
}

/// A StatefulSet's pod template.
pub fn stateful_set(s: &StatefulSet) -> Workload {
    from_template(
        "StatefulSet",
        &s.metadata,
        s.spec.as_ref().map(|s| &s.template),
    )
}

/// A DaemonSet's pod template.
pub fn daemon_set(d: &DaemonSet) -> Workload {
    from_template(
        "DaemonSet",
        &d.metadata,
        d.spec.as_ref().map(|s| &s.template),
    )
}

/// A ReplicaSet's pod template, unless a Deployment owns it (the Deployment is the workload then).
pub fn replica_set(r: &ReplicaSet) -> Option<Workload> {
    (!owned(&r.metadata)).then(|| {
        from_template(
            "ReplicaSet",
            &r.metadata,
            r.spec.as_ref().and_then(|s| s.template.as_ref()),
        )
    })
}

/// A Job's pod template, unless a CronJob owns it (the CronJob is the workload then).
pub fn job(j: &Job) -> Option<Workload> {
    (!owned(&j.metadata))
        .then(|| from_template("Job", &j.metadata, j.spec.as_ref().map(|s| &s.template)))
}

/// A CronJob's pod template.
pub fn cron_job(c: &CronJob) -> Workload {
    let template = c
        .spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .map(|s| &s.template);
    from_template("CronJob", &c.metadata, template)
}

/// A pod as it runs, with whether it already has web-identity credentials; `owned` says whether a
/// controller made it (then its template is the workload).
pub fn pod(p: &Pod) -> (Workload, bool) {
    let spec = p.spec.as_ref();
    let web_identity = spec.is_some_and(|s| {
        s.containers.iter().any(|c| {
            c.env
                .iter()
                .flatten()
                .any(|var| var.name == env::WEB_IDENTITY_TOKEN_FILE)
        })
    });
    let workload = Workload {
        kind: "Pod",
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        service_account: service_account(spec),
        annotations: p.metadata.annotations.clone().unwrap_or_default(),
        web_identity,
    };
    (workload, owned(&p.metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn templates_give_kind_place_account_and_annotations() {
        let d: Deployment = from(json!({
            "metadata": {"name": "web", "namespace": "team-a"},
            "spec": {"selector": {}, "template": {
                "metadata": {"annotations": {"iam.amazonaws.com/role": "uploader"}},
                "spec": {"serviceAccountName": "web", "containers": []}}}}));
        let w = deployment(&d);
        assert_eq!(
            (w.kind, w.label().as_str(), w.service_account.as_str()),
            ("Deployment", "Deployment team-a/web", "web")
        );
        assert_eq!(w.annotations["iam.amazonaws.com/role"], "uploader");
        let c: CronJob = from(json!({
            "metadata": {"name": "nightly", "namespace": "team-b"},
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {
                "spec": {"serviceAccount": "legacy", "containers": []}}}}}}));
        assert_eq!(cron_job(&c).service_account, "legacy");
        let s: StatefulSet = from(json!({"metadata": {"name": "db", "namespace": "x"},
            "spec": {"selector": {}, "serviceName": "db", "template": {"spec": {"containers": []}}}}));
        assert_eq!(stateful_set(&s).service_account, "default");
    }

    #[test]
    fn owned_replica_sets_jobs_and_pods_are_not_workloads() {
        let owner =
            json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u"}]);
        let rs: ReplicaSet = from(
            json!({"metadata": {"name": "web-1", "namespace": "a", "ownerReferences": owner},
            "spec": {"selector": {}}}),
        );
        assert_eq!(replica_set(&rs), None);
        let rs: ReplicaSet = from(json!({"metadata": {"name": "bare", "namespace": "a"},
            "spec": {"selector": {}, "template": {"spec": {"containers": []}}}}));
        assert_eq!(replica_set(&rs).unwrap().kind, "ReplicaSet");
        let job_owned: Job = from(
            json!({"metadata": {"name": "n-1", "namespace": "a", "ownerReferences": owner},
            "spec": {"template": {"spec": {"containers": []}}}}),
        );
        assert_eq!(job(&job_owned), None);
        let p: Pod = from(
            json!({"metadata": {"name": "web-1-x", "namespace": "a", "ownerReferences": owner},
            "spec": {"containers": [{"name": "app", "env": [
                {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::1:role/x"},
                {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/t"}]}]}}),
        );
        let (w, owned) = pod(&p);
        assert!(owned && w.web_identity);
        let p: Pod = from(json!({"metadata": {"name": "bare", "namespace": "a"},
            "spec": {"containers": [{"name": "app"}]}}));
        let (w, owned) = pod(&p);
        assert!(!owned && !w.web_identity);
    }
}
