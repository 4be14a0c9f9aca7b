//! The two documents, rendered once per key change and swapped atomically for the request path.

use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::HeaderValue;
use sha2::{Digest, Sha256};

use crate::keys::PublicKey;
use crate::metrics::Metrics;
use crate::paths::Paths;
use crate::{Warning, discovery, jwks};

/// Both documents with their strong ETags, ready to send.
#[derive(Debug, Clone)]
pub struct Documents {
    /// The discovery document.
    pub discovery: Bytes,
    /// The JWKS.
    pub jwks: Bytes,
    /// Strong ETag of the discovery document (quoted).
    pub discovery_etag: HeaderValue,
    /// Strong ETag of the JWKS (quoted).
    pub jwks_etag: HeaderValue,
    /// The keys in the JWKS.
    pub keys: Vec<PublicKey>,
}

impl Documents {
    /// Renders both documents for `keys` (at most 100 RSA and 100 EC keys are kept; the rest are warned
    /// about).
    pub fn render(paths: &Paths, keys: &[PublicKey]) -> (Documents, Vec<Warning>) {
        let rendered = jwks::render(keys);
        let discovery = discovery::render(
            paths.issuer.as_str(),
            &paths.jwks_uri,
            &rendered.algorithms(),
        );
        let docs = Documents {
            discovery_etag: etag(&discovery),
            jwks_etag: etag(&rendered.json),
            discovery: Bytes::from(discovery),
            jwks: Bytes::from(rendered.json),
            keys: rendered.keys,
        };
        (docs, rendered.warnings)
    }
}

/// A strong ETag: a content hash, so every replica and every restart agree on it.
fn etag(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let tag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..18]));
    HeaderValue::from_str(&tag).expect("base64url is a valid header value")
}

/// The documents currently served: none until the first keys are loaded.
#[derive(Debug, Default)]
pub struct DocumentStore {
    current: RwLock<Option<Arc<Documents>>>,
}

impl DocumentStore {
    /// An empty store.
    pub fn new() -> DocumentStore {
        DocumentStore::default()
    }

    /// The current documents (a reference count increment; the lock is held for no more than that).
    pub fn get(&self) -> Option<Arc<Documents>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the documents; returns false (and keeps the old ones) when nothing changed.
    pub fn set(&self, docs: Documents) -> bool {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current
            .as_ref()
            .is_some_and(|c| c.discovery == docs.discovery && c.jwks == docs.jwks)
        {
            return false;
        }
        *current = Some(Arc::new(docs));
        true
    }
}

/// Renders keys into the store, logging what was left out and keeping the metrics.
#[derive(Debug, Clone)]
pub struct Publisher {
    paths: Arc<Paths>,
    store: Arc<DocumentStore>,
    metrics: Metrics,
}

impl Publisher {
    /// A publisher for `paths` into `store`.
    pub fn new(paths: Arc<Paths>, store: Arc<DocumentStore>, metrics: Metrics) -> Publisher {
        Publisher {
            paths,
            store,
            metrics,
        }
    }

    /// The store it publishes into.
    pub fn store(&self) -> &Arc<DocumentStore> {
        &self.store
    }

    /// The metrics it updates.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Renders and swaps in `keys`. When the documents change, `warnings` (from loading) are logged with the
    /// renderer's own; an unchanged refresh logs nothing. Returns whether the published documents changed.
    pub fn publish(&self, keys: &[PublicKey], warnings: &[Warning]) -> bool {
        let (docs, render_warnings) = Documents::render(&self.paths, keys);
        let n = docs.keys.len();
        let kids = docs
            .keys
            .iter()
            .map(PublicKey::kid)
            .collect::<Vec<_>>()
            .join(",");
        if !self.store.set(docs) {
            return false;
        }
        for w in warnings.iter().chain(&render_warnings) {
            tracing::warn!("{w}");
        }
        if n == 0 {
            tracing::warn!(
                "the JWKS is empty: STS will refuse every token until a key is published"
            );
        }
        self.metrics.set_keys_published(n);
        self.metrics.reloaded();
        tracing::info!(keys = n, kids = %kids, "published");
        true
    }
}
