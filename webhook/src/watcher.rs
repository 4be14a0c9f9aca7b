//! Keeps the [`Index`] current from two metadata-only watches (ServiceAccounts and Namespaces).
//!
//! Metadata watches (`PartialObjectMeta`) transfer and decode only `metadata`, and each object is stripped to
//! its [`AccountEntry`] / [`NamespaceEntry`] before it is stored. A (re-)list is buffered and swapped in whole
//! at `InitDone`, so objects deleted while the watch was down disappear.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use tokio::sync::oneshot;

use crate::cache::{AccountEntry, Index, NamespaceEntry};
use crate::metrics::{Metrics, ReasonLabel};
use crate::views::{NamespaceView, ServiceAccountView};

/// Watches every ServiceAccount into `index`; `synced` fires once the first complete list is applied.
pub async fn watch_service_accounts(
    client: kube::Client,
    index: Arc<Index>,
    annotation_prefix: String,
    metrics: Metrics,
    synced: oneshot::Sender<()>,
) {
    // An `Api` of `PartialObjectMeta` lists and watches metadata only.
    let api: Api<PartialObjectMeta<ServiceAccount>> = Api::all(client);
    let events = watch(api, watcher::Config::default()).default_backoff();
    let strip = move |meta: PartialObjectMeta<ServiceAccount>| {
        let namespace = meta.metadata.namespace.unwrap_or_default();
        let name = meta.metadata.name.unwrap_or_default();
        let annotations = meta.metadata.annotations.unwrap_or_default();
        (
            namespace,
            name,
            AccountEntry::from_view(ServiceAccountView::from_annotations(
                &annotation_prefix,
                &annotations,
            )),
        )
    };
    let sink = ServiceAccountSink {
        index,
        metrics: metrics.clone(),
    };
    apply_events(events, strip, sink, metrics, "serviceaccounts", synced).await;
}

/// Watches every Namespace into `index`; `synced` fires once the first complete list is applied.
pub async fn watch_namespaces(
    client: kube::Client,
    index: Arc<Index>,
    metrics: Metrics,
    synced: oneshot::Sender<()>,
) {
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    let events = watch(api, watcher::Config::default()).default_backoff();
    let strip = |meta: PartialObjectMeta<Namespace>| {
        let name = meta.metadata.name.unwrap_or_default();
        let annotations = meta.metadata.annotations.unwrap_or_default();
        (
            name,
            NamespaceView::from_annotations(&annotations).map(Arc::new),
        )
    };
    apply_events(
        events,
        strip,
        NamespaceSink { index },
        metrics,
        "namespaces",
        synced,
    )
    .await;
}

/// Where stripped watch events go: one of the index's two halves.
pub trait Sink {
    /// What one object is stripped to.
    type Item;
    /// An object was added or changed.
    fn apply(&self, item: Self::Item);
    /// An object was deleted.
    fn delete(&self, item: Self::Item);
    /// A complete list replaces everything.
    fn reset(&self, items: Vec<Self::Item>);
}

struct ServiceAccountSink {
    index: Arc<Index>,
    metrics: Metrics,
}

impl Sink for ServiceAccountSink {
    type Item = (String, String, AccountEntry);
    fn apply(&self, (namespace, name, entry): Self::Item) {
        self.index.apply_service_account(&namespace, &name, entry);
        self.refresh_gauge();
    }
    fn delete(&self, (namespace, name, _): Self::Item) {
        self.index.delete_service_account(&namespace, &name);
        self.refresh_gauge();
    }
    fn reset(&self, items: Vec<Self::Item>) {
        self.index.reset_service_accounts(items);
        self.refresh_gauge();
    }
}

impl ServiceAccountSink {
    fn refresh_gauge(&self) {
        self.metrics
            .cached_service_accounts
            .set(self.index.service_account_count() as i64);
    }
}

struct NamespaceSink {
    index: Arc<Index>,
}

impl Sink for NamespaceSink {
    type Item = (String, NamespaceEntry);
    fn apply(&self, (name, entry): Self::Item) {
        self.index.apply_namespace(&name, entry);
    }
    fn delete(&self, (name, _): Self::Item) {
        self.index.delete_namespace(&name);
    }
    fn reset(&self, items: Vec<Self::Item>) {
        self.index.reset_namespaces(items);
    }
}

/// Applies a watch's events to `sink` until the stream ends (it does not: errors are retried with backoff).
pub async fn apply_events<K, S>(
    events: impl Stream<Item = Result<Event<K>, watcher::Error>>,
    strip: impl Fn(K) -> S::Item,
    sink: S,
    metrics: Metrics,
    what: &'static str,
    synced: oneshot::Sender<()>,
) where
    S: Sink,
{
    let mut synced = Some(synced);
    let mut listing: Vec<S::Item> = Vec::new();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listing.clear(),
            Ok(Event::InitApply(object)) => listing.push(strip(object)),
            Ok(Event::InitDone) => {
                let count = listing.len();
                sink.reset(std::mem::take(&mut listing));
                tracing::info!(what, count, "watch list applied");
                if let Some(synced) = synced.take() {
                    let _ = synced.send(());
                }
            }
            Ok(Event::Apply(object)) => sink.apply(strip(object)),
            Ok(Event::Delete(object)) => sink.delete(strip(object)),
            Err(err) => {
                metrics
                    .watch_errors
                    .get_or_create(&ReasonLabel { reason: what })
                    .inc();
                tracing::warn!(what, %err, "watch failed; retrying with backoff");
            }
        }
    }
}
