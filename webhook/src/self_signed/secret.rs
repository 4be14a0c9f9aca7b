//! The Secret that keeps the CA and the serving certificate, shared by the replicas.

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;

use super::material::{Material, new_material, next_material};
use super::{ATTEMPTS, SelfSignedError};

/// Makes the Secret hold good material: creates it, keeps it, or replaces its contents (by resourceVersion, so
/// concurrent replicas settle on one winner); returns what it holds then.
pub(super) async fn ensure_secret(
    secrets: &Api<Secret>,
    namespace: &str,
    name: &str,
    sans: &[String],
) -> Result<Material, SelfSignedError> {
    let kube_err = |action: &str| {
        let action = format!("{action} Secret {namespace}/{name}");
        move |source| SelfSignedError::Kube { action, source }
    };
    for _ in 0..ATTEMPTS {
        let existing = secrets.get_opt(name).await.map_err(kube_err("get"))?;
        let now = SystemTime::now();
        match existing {
            None => {
                let material = new_material(sans, now)?;
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.to_string()),
                        namespace: Some(namespace.to_string()),
                        labels: Some(BTreeMap::from([
                            ("app.kubernetes.io/name".to_string(), "irsa".to_string()),
                            (
                                "app.kubernetes.io/component".to_string(),
                                "webhook".to_string(),
                            ),
                            (
                                "app.kubernetes.io/managed-by".to_string(),
                                "irsa-webhook".to_string(),
                            ),
                        ])),
                        ..ObjectMeta::default()
                    },
                    type_: Some("kubernetes.io/tls".to_string()),
                    data: Some(material.secret_data()),
                    ..Secret::default()
                };
                match secrets.create(&PostParams::default(), &secret).await {
                    Ok(_) => {
                        tracing::info!(secret = %format!("{namespace}/{name}"), "self-signed: created a CA and serving certificate");
                        return Ok(material);
                    }
                    // Another replica created it first: re-read and use its material.
                    Err(kube::Error::Api(status))
                        if status.is_already_exists() || status.is_conflict() =>
                    {
                        tracing::debug!(
                            "self-signed: lost the race to create the Secret; re-reading"
                        );
                    }
                    Err(source) => return Err(kube_err("create")(source)),
                }
            }
            Some(mut secret) => {
                let current = Material::from_secret(&secret);
                let Some((next, verdict)) = next_material(&current, sans, now)? else {
                    // Debug: the periodic check lands here every interval.
                    tracing::debug!(secret = %format!("{namespace}/{name}"), "self-signed: the certificate in the Secret is good; reusing it");
                    return Ok(current);
                };
                // The metadata (resourceVersion included) is kept: a concurrent update makes this one fail.
                secret.data = Some(next.secret_data());
                match secrets.replace(name, &PostParams::default(), &secret).await {
                    Ok(_) => {
                        tracing::info!(secret = %format!("{namespace}/{name}"), ?verdict, "self-signed: renewed the certificate");
                        return Ok(next);
                    }
                    Err(kube::Error::Api(status)) if status.is_conflict() => {
                        tracing::debug!("self-signed: the Secret changed meanwhile; re-reading");
                    }
                    Err(source) => return Err(kube_err("update")(source)),
                }
            }
        }
    }
    Err(SelfSignedError::Contended(format!("{namespace}/{name}")))
}
