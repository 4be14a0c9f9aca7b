//! Reads the cluster for `irsa migrate`: every Pod, the pod templates of Deployments, StatefulSets,
//! DaemonSets, unowned ReplicaSets and Jobs, and CronJobs, every Namespace's and ServiceAccount's
//! annotations. Read-only; the conversions are in [`super::inventory`].

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;

use super::MigrateError;
use super::inventory::{self, Cluster};

async fn list<K>(client: &kube::Client, what: &'static str) -> Result<Vec<K>, MigrateError>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    api.list(&ListParams::default())
        .await
        .map(|list| list.items)
        .map_err(|source| MigrateError::Kube {
            what,
            source: Box::new(source),
        })
}

/// Reads everything the plan needs.
pub async fn read(client: &kube::Client) -> Result<Cluster, MigrateError> {
    let mut cluster = Cluster::default();
    let w = &mut cluster.workloads;
    w.extend(
        list::<Deployment>(client, "Deployments")
            .await?
            .iter()
            .map(inventory::deployment),
    );
    w.extend(
        list::<StatefulSet>(client, "StatefulSets")
            .await?
            .iter()
            .map(inventory::stateful_set),
    );
    w.extend(
        list::<DaemonSet>(client, "DaemonSets")
            .await?
            .iter()
            .map(inventory::daemon_set),
    );
    w.extend(
        list::<ReplicaSet>(client, "ReplicaSets")
            .await?
            .iter()
            .filter_map(inventory::replica_set),
    );
    w.extend(
        list::<Job>(client, "Jobs")
            .await?
            .iter()
            .filter_map(inventory::job),
    );
    w.extend(
        list::<CronJob>(client, "CronJobs")
            .await?
            .iter()
            .map(inventory::cron_job),
    );
    for pod in list::<Pod>(client, "Pods").await? {
        let (workload, owned) = inventory::pod(&pod);
        if !owned {
            cluster.workloads.push(workload.clone());
        }
        cluster.pods.push(workload);
    }

    // Metadata only: annotations are all the plan reads of these.
    let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
    let namespaces = namespaces
        .list_metadata(&ListParams::default())
        .await
        .map_err(|source| MigrateError::Kube {
            what: "Namespaces",
            source: Box::new(source),
        })?;
    for ns in namespaces.items {
        let meta = ns.metadata;
        cluster.namespaces.insert(
            meta.name.unwrap_or_default(),
            meta.annotations.unwrap_or_default(),
        );
    }
    let accounts: Api<PartialObjectMeta<ServiceAccount>> = Api::all(client.clone());
    let accounts = accounts
        .list_metadata(&ListParams::default())
        .await
        .map_err(|source| MigrateError::Kube {
            what: "ServiceAccounts",
            source: Box::new(source),
        })?;
    for sa in accounts.items {
        let meta = sa.metadata;
        let annotations: BTreeMap<String, String> = meta.annotations.unwrap_or_default();
        cluster.service_accounts.insert(
            (
                meta.namespace.unwrap_or_default(),
                meta.name.unwrap_or_default(),
            ),
            annotations,
        );
    }
    Ok(cluster)
}
