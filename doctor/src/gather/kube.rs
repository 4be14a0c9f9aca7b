//! What the cluster says: the apiserver's discovery document and Date, the ServiceAccount, the namespace,
//! a TokenRequest, the MutatingWebhookConfigurations, a server-side dry-run pod, the `--pod`.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};
use serde_json::Value;

use crate::checks::Gathered;
use crate::checks::issuers::APISERVER_POD_SELECTOR;

/// Token lifetime asked for: the shortest the apiserver grants.
const TOKEN_SECONDS: i64 = 600;

fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => irsa_serve::logging::error_chain(other),
    }
}

/// `GET /.well-known/openid-configuration` on the apiserver: the body, and its Date header (seconds).
pub async fn apiserver_discovery(client: &kube::Client) -> (Gathered<Vec<u8>>, Option<i64>) {
    let request = match http::Request::get("/.well-known/openid-configuration")
        .body(kube::client::Body::empty())
    {
        Ok(r) => r,
        Err(e) => return (Err(e.to_string()), None),
    };
    let response = match client.send(request).await {
        Ok(r) => r,
        Err(e) => return (Err(message(&e)), None),
    };
    let date = response
        .headers()
        .get(http::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    let status = response.status();
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| message(&e));
    match body {
        Ok(b) if status.is_success() => (Ok(b.to_vec()), date),
        Ok(b) => (
            Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&b).trim()
            )),
            date,
        ),
        Err(e) => (Err(e), date),
    }
}

/// kube-apiserver's static pod in kube-system (the first labelled [`APISERVER_POD_SELECTOR`]); `None` when
/// there is none.
pub async fn apiserver_pod(client: &kube::Client) -> Gathered<Option<Value>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let list = api
        .list(
            &ListParams::default()
                .labels(APISERVER_POD_SELECTOR)
                .limit(1),
        )
        .await
        .map_err(|e| message(&e))?;
    list.items
        .first()
        .map(|p| serde_json::to_value(p).map_err(|e| e.to_string()))
        .transpose()
}

/// The ServiceAccount's annotations; `None` when it does not exist.
pub async fn service_account(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Gathered<Option<BTreeMap<String, String>>> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name)
        .await
        .map(|sa| sa.map(|sa| sa.metadata.annotations.unwrap_or_default()))
        .map_err(|e| message(&e))
}

/// The namespace's labels (empty when it cannot be read: the selector check then judges no labels).
pub async fn namespace_labels(client: &kube::Client, namespace: &str) -> BTreeMap<String, String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut labels = api
        .get_opt(namespace)
        .await
        .ok()
        .flatten()
        .and_then(|n| n.metadata.labels)
        .unwrap_or_default();
    // The apiserver sets it on every namespace since 1.21; namespaceSelectors rely on it.
    labels
        .entry("kubernetes.io/metadata.name".to_owned())
        .or_insert_with(|| namespace.to_owned());
    labels
}

/// A TokenRequest for the ServiceAccount with `audience`, as the kubelet makes for the projected volume.
pub async fn token(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    audience: &str,
) -> Gathered<String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience.to_owned()],
            expiration_seconds: Some(TOKEN_SECONDS),
            bound_object_ref: None,
        },
        ..TokenRequest::default()
    };
    api.create_token_request(name, &PostParams::default(), &request)
        .await
        .map_err(|e| message(&e))
        .and_then(|r| {
            r.status
                .map(|s| s.token)
                .ok_or_else(|| "the TokenRequest came back without a token".to_owned())
        })
}

/// Every MutatingWebhookConfiguration, as JSON.
pub async fn webhooks(client: &kube::Client) -> Gathered<Vec<Value>> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| message(&e))?;
    list.items
        .iter()
        .map(|c| serde_json::to_value(c).map_err(|e| e.to_string()))
        .collect()
}

/// A server-side dry-run create of `pod` in `namespace`: what the admission chain makes of it.
pub async fn dry_run_pod(client: &kube::Client, namespace: &str, pod: &Value) -> Gathered<Value> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod: Pod = serde_json::from_value(pod.clone()).map_err(|e| e.to_string())?;
    let params = PostParams {
        dry_run: true,
        field_manager: Some("irsa-doctor".to_owned()),
    };
    let created = api.create(&params, &pod).await.map_err(|e| message(&e))?;
    serde_json::to_value(created).map_err(|e| e.to_string())
}

/// The pod `namespace/name` as it runs.
pub async fn pod(client: &kube::Client, namespace: &str, name: &str) -> Gathered<Value> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = api.get(name).await.map_err(|e| message(&e))?;
    serde_json::to_value(pod).map_err(|e| e.to_string())
}
