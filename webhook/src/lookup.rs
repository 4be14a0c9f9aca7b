//! Answers "what is this pod's ServiceAccount / Namespace?" from the [`Index`], and on a miss with a direct GET.
//!
//! A miss means the watch is behind: the ServiceAccount admission plugin ran before this webhook, so the
//! account exists. The reference webhook admits such a pod unmutated; here the GET is made at once,
//! coalesced per key (a burst of pods of one new Deployment makes one request), bounded by a timeout, and
//! rate-limited so that a watch outage cannot turn into an apiserver stampede. Its result is kept in the index
//! until the watch delivers the object.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;

use crate::cache::{AccountEntry, Index, NamespaceEntry};
use crate::metrics::{LookupKind, Metrics};
use crate::views::{NamespaceView, ServiceAccountView};

/// Why a lookup that missed the index could not be completed; the variant's name in kebab-case is its
/// metric label.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
#[non_exhaustive]
pub enum LookupError {
    /// The direct GET did not answer within the lookup timeout.
    #[error("the apiserver did not answer within {0:?}")]
    Timeout(Duration),
    /// Too many direct GETs in a short time; the watch is probably down.
    #[error("too many cache misses: direct lookups are rate-limited")]
    RateLimited,
    /// The apiserver answered with an error.
    #[strum(serialize = "error")]
    #[error("the apiserver refused the lookup: {0}")]
    Api(String),
}

impl LookupError {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        self.into()
    }
}

/// Limits of the direct lookups.
#[derive(Clone, Copy, Debug)]
pub struct LookupLimits {
    /// How long one GET may take.
    pub timeout: Duration,
    /// Sustained GETs per second.
    pub rate: f64,
    /// GETs allowed in a burst above the rate.
    pub burst: f64,
}

impl Default for LookupLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1),
            rate: 20.0,
            burst: 50.0,
        }
    }
}

/// The admission path's view of ServiceAccounts and Namespaces.
pub struct Resolver {
    index: Arc<Index>,
    client: kube::Client,
    annotation_prefix: String,
    limits: LookupLimits,
    bucket: Mutex<TokenBucket>,
    accounts_in_flight: Coalescer<AccountEntry>,
    namespaces_in_flight: Coalescer<NamespaceEntry>,
    metrics: Metrics,
}

impl Resolver {
    /// A resolver reading `index` and falling back to `client`.
    pub fn new(
        index: Arc<Index>,
        client: kube::Client,
        annotation_prefix: String,
        limits: LookupLimits,
        metrics: Metrics,
    ) -> Self {
        Self {
            index,
            client,
            annotation_prefix,
            bucket: Mutex::new(TokenBucket::new(limits.rate, limits.burst)),
            limits,
            accounts_in_flight: Coalescer::default(),
            namespaces_in_flight: Coalescer::default(),
            metrics,
        }
    }

    /// The index this resolver reads.
    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// The ServiceAccount `namespace/name`.
    pub async fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<AccountEntry, LookupError> {
        if let Some(entry) = self.index.service_account(namespace, name) {
            return Ok(entry);
        }
        self.metrics.cache_miss(LookupKind::ServiceAccount);
        let key = format!("{namespace}/{name}");
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let result = self
            .accounts_in_flight
            .run(key, || {
                let annotations = self.get_annotations(api, name);
                let prefix = self.annotation_prefix.clone();
                async move {
                    Ok(annotations.await?.map(|annotations| {
                        AccountEntry::from_view(ServiceAccountView::from_annotations(
                            &prefix,
                            &annotations,
                        ))
                    }))
                }
            })
            .await;
        self.record_get(LookupKind::ServiceAccount, &result);
        match result? {
            Some(entry) => {
                self.index
                    .fill_service_account(namespace, name, entry.clone());
                Ok(entry)
            }
            // The ServiceAccount plugin admits no pod whose account is absent; if it raced with a delete,
            // there is nothing to inject. Not cached: the watch will tell.
            None => Ok(AccountEntry::Unannotated),
        }
    }

    /// The Namespace `name`'s role restriction.
    pub async fn namespace(&self, name: &str) -> Result<NamespaceEntry, LookupError> {
        if let Some(entry) = self.index.namespace(name) {
            return Ok(entry);
        }
        self.metrics.cache_miss(LookupKind::Namespace);
        let api: Api<Namespace> = Api::all(self.client.clone());
        let result = self
            .namespaces_in_flight
            .run(name.to_owned(), || {
                let annotations = self.get_annotations(api, name);
                async move {
                    Ok(annotations.await?.map(|annotations| {
                        NamespaceView::from_annotations(&annotations).map(Arc::new)
                    }))
                }
            })
            .await;
        self.record_get(LookupKind::Namespace, &result);
        match result? {
            Some(entry) => {
                self.index.fill_namespace(name, entry.clone());
                Ok(entry)
            }
            None => Ok(None),
        }
    }

    /// GETs one object's annotations (metadata only), within the rate limit and the timeout; `None` when the
    /// object does not exist. The token is taken now, the request is made when the future is polled.
    fn get_annotations<K>(
        &self,
        api: Api<K>,
        name: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, String>>, LookupError>> + Send + 'static
    where
        K: kube::Resource
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let permit = self.take_token();
        let timeout = self.limits.timeout;
        let name = name.to_owned();
        async move {
            permit?;
            let meta = tokio::time::timeout(timeout, api.get_metadata_opt(&name))
                .await
                .map_err(|_| LookupError::Timeout(timeout))?
                .map_err(|err| LookupError::Api(err.to_string()))?;
            Ok(meta.map(|meta| meta.metadata.annotations.unwrap_or_default()))
        }
    }

    fn take_token(&self) -> Result<(), LookupError> {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if bucket.take(Instant::now()) {
            Ok(())
        } else {
            Err(LookupError::RateLimited)
        }
    }

    fn record_get<T>(&self, kind: LookupKind, result: &Result<Option<T>, LookupError>) {
        let result = result.as_ref().map(Option::is_some);
        self.metrics.fallback_get(kind, result);
    }
}

type SharedLookup<V> = Shared<BoxFuture<'static, Result<Option<V>, LookupError>>>;

/// Runs at most one lookup per key at a time; concurrent callers for the same key share its result.
struct Coalescer<V: Clone> {
    in_flight: Mutex<HashMap<String, SharedLookup<V>>>,
}

impl<V: Clone> Default for Coalescer<V> {
    fn default() -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone + Send + Sync + 'static> Coalescer<V> {
    async fn run<F, Fut>(&self, key: String, start: F) -> Result<Option<V>, LookupError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, LookupError>> + Send + 'static,
    {
        let lookup = {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            in_flight
                .entry(key.clone())
                .or_insert_with(|| start().boxed().shared())
                .clone()
        };
        let result = lookup.clone().await;
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Only the lookup this caller joined is removed; a newer one for the same key stays.
        if in_flight
            .get(&key)
            .is_some_and(|current| current.ptr_eq(&lookup))
        {
            in_flight.remove(&key);
        }
        result
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_labels() {
        let labels = [
            (LookupError::Timeout(Duration::from_secs(1)), "timeout"),
            (LookupError::RateLimited, "rate-limited"),
            (LookupError::Api("etcd".into()), "error"),
        ];
        for (err, label) in labels {
            assert_eq!(err.as_str(), label);
        }
    }

    #[test]
    fn token_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3.0);
        bucket.last = start;
        assert!((0..3).all(|_| bucket.take(start)), "the burst");
        assert!(!bucket.take(start), "empty after the burst");
        assert!(
            bucket.take(start + Duration::from_millis(500)),
            "one token per 500 ms at rate 2"
        );
        assert!(!bucket.take(start + Duration::from_millis(500)));
        assert!(bucket.take(start + Duration::from_secs(60)), "refilled");
    }
}
