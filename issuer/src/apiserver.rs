//! `--from-apiserver`: republish the apiserver's own JWKS, cleaned, for clusters whose apiserver is not
//! reachable from the internet.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use crate::documents::Publisher;
use crate::jwks::{self, JwksError};
use crate::keys::LoadedKeys;
use crate::reload::{Source, poll_every};

/// Where kube-apiserver serves its JWKS.
pub const JWKS_PATH: &str = "/openid/v1/jwks";
/// Where kube-apiserver serves its discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Why reading from the apiserver failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiserverError {
    /// The kubeconfig could not be read or used.
    #[error(transparent)]
    Client(#[from] irsa_serve::kube_client::KubeClientError),
    /// The apiserver refused: usually RBAC.
    #[error(
        "GET {path} was forbidden: bind the ClusterRole system:service-account-issuer-discovery to this identity ({message})"
    )]
    Forbidden {
        /// The path requested.
        path: &'static str,
        /// The apiserver's message.
        message: String,
    },
    /// The request failed.
    #[error("GET {path}: {source}")]
    Request {
        /// The path requested.
        path: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The JWKS could not be read.
    #[error("the apiserver's JWKS: {0}")]
    Jwks(#[from] JwksError),
    /// None of the apiserver's keys is one STS accepts: publishing that would break every token.
    #[error("no key of the apiserver's JWKS is usable by STS ({0})")]
    NoUsableKey(String),
    /// The apiserver's discovery document has no `issuer`.
    #[error("the apiserver's discovery document has no \"issuer\"")]
    NoIssuer,
}

/// A client from `kubeconfig`, or else the in-cluster configuration or the default kubeconfig.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, ApiserverError> {
    Ok(irsa_serve::kube_client::client(kubeconfig).await?)
}

async fn get(client: &kube::Client, path: &'static str) -> Result<String, ApiserverError> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .expect("a static path is a valid URI");
    client
        .request_text(request)
        .await
        .map_err(|source| match source {
            kube::Error::Api(status) if status.is_forbidden() => ApiserverError::Forbidden {
                path,
                message: status.message.clone(),
            },
            source => ApiserverError::Request { path, source },
        })
}

/// The apiserver's keys, cleaned per the JWKS hygiene rules (what was dropped is in the warnings); an error
/// when none is left, so the last good set stays published.
pub async fn fetch_keys(client: &kube::Client) -> Result<LoadedKeys, ApiserverError> {
    let body = get(client, JWKS_PATH).await?;
    let cleaned = jwks::clean(body.as_bytes())?;
    if cleaned.keys.is_empty() {
        let why = cleaned
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ApiserverError::NoUsableKey(if why.is_empty() {
            "it is empty".into()
        } else {
            why
        }));
    }
    Ok(cleaned)
}

/// The `issuer` of the apiserver's discovery document (the `iss` of its tokens).
pub async fn fetch_issuer(client: &kube::Client) -> Result<String, ApiserverError> {
    let body = get(client, DISCOVERY_PATH).await?;
    let doc: serde_json::Value = serde_json::from_str(&body).map_err(JwksError::from)?;
    doc.get("issuer")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or(ApiserverError::NoIssuer)
}

/// Fetches and publishes the apiserver's keys every `interval` until `shutdown` completes; `on_published`
/// runs after each successful publication (readiness). Errors keep the last good documents.
pub async fn run(
    client: kube::Client,
    interval: Duration,
    publisher: Publisher,
    on_published: impl Fn() + Send,
    shutdown: impl Future<Output = ()>,
) {
    let source = Source {
        label: "apiserver",
        doing: "refreshing the apiserver's JWKS",
    };
    // Every fetch is published (and so marks the server ready), changed or not.
    let poll = || async { fetch_keys(&client).await.map(Some) };
    poll_every(interval, &publisher, source, poll, on_published, shutdown).await;
}
