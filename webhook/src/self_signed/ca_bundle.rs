//! The `caBundle` of the MutatingWebhookConfiguration: what it should be, and the patch that makes it so.

use std::time::SystemTime;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::Api;
use kube::api::{Patch, PatchParams};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::SelfSignedError;
use super::material::first_certificate;
use super::{ATTEMPTS, FIELD_MANAGER, RETRY_DELAY};

/// The JSON patch that sets `caBundle` on every webhook whose bundle is not [`merged_bundle`] of its own, each
/// guarded by a `test` of the webhook's name (the list may have been edited since it was read). Empty when all
/// are current.
pub fn ca_bundle_patch(
    configuration: &MutatingWebhookConfiguration,
    ca_pem: &str,
    now: SystemTime,
) -> serde_json::Value {
    let mut ops = Vec::new();
    for (i, webhook) in configuration.webhooks.iter().flatten().enumerate() {
        let existing = webhook.client_config.ca_bundle.as_ref();
        let bundle = ByteString(
            merged_bundle(existing.map_or(&[][..], |b| &b.0[..]), ca_pem, now).into_bytes(),
        );
        if existing == Some(&bundle) {
            continue;
        }
        let encoded = serde_json::to_value(&bundle).unwrap_or_default();
        ops.push(serde_json::json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": webhook.name}));
        ops.push(serde_json::json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": encoded}));
    }
    serde_json::Value::Array(ops)
}

/// The `caBundle` to set: `ca_pem` (the CA of the Secret), then the first other CA of the `existing` bundle
/// that is still valid at `now`. When a replica makes a new CA (the Secret was deleted, or the CA neared its
/// end), the other replica serves a certificate of the previous CA until its next check adopts the new one;
/// keeping the previous CA trusted meanwhile leaves no moment in which the apiserver cannot verify it. One
/// previous CA at most, and none once expired, so the bundle does not grow.
pub fn merged_bundle(existing: &[u8], ca_pem: &str, now: SystemTime) -> String {
    let current = first_certificate(ca_pem);
    let previous = CertificateDer::pem_slice_iter(existing)
        .filter_map(Result::ok)
        .find(|der| {
            Some(der) != current.as_ref()
                && irsa_serve::certificate::fields(der).is_some_and(|fields| fields.not_after > now)
        });
    let mut bundle = ca_pem.to_string();
    if let Some(der) = previous {
        if !bundle.ends_with('\n') {
            bundle.push('\n');
        }
        bundle.push_str(&certificate_pem(&der));
    }
    bundle
}

/// A DER certificate as PEM, 64 characters a line.
fn certificate_pem(der: &[u8]) -> String {
    let base64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

pub(super) async fn patch_ca_bundle(
    configurations: &Api<MutatingWebhookConfiguration>,
    name: &str,
    ca_pem: &str,
) -> Result<(), SelfSignedError> {
    let kube_err = |action: &str, source| SelfSignedError::Kube {
        action: format!("{action} MutatingWebhookConfiguration {name}"),
        source,
    };
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    for attempt in 1..=ATTEMPTS {
        let last = attempt == ATTEMPTS;
        // Pods may start before `kubectl apply` has created the configuration: wait a little for it.
        let Some(configuration) = configurations
            .get_opt(name)
            .await
            .map_err(|source| kube_err("get", source))?
        else {
            if last {
                return Err(SelfSignedError::WebhookConfigurationNotFound(
                    name.to_string(),
                ));
            }
            tracing::info!(
                configuration = name,
                "self-signed: waiting for the MutatingWebhookConfiguration"
            );
            tokio::time::sleep(RETRY_DELAY).await;
            continue;
        };
        let ops = ca_bundle_patch(&configuration, ca_pem, SystemTime::now());
        if ops.as_array().is_none_or(Vec::is_empty) {
            if configuration.webhooks.as_ref().is_none_or(Vec::is_empty) {
                tracing::warn!(
                    configuration = name,
                    "self-signed: the MutatingWebhookConfiguration has no webhooks"
                );
            }
            return Ok(());
        }
        let patch: json_patch::Patch =
            serde_json::from_value(ops).expect("the operations built above are valid JSON patch");
        match configurations
            .patch(name, &params, &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => {
                tracing::info!(configuration = name, "self-signed: caBundle patched");
                return Ok(());
            }
            // A failed `test` (the list changed), a conflict, a deletion: read again.
            Err(kube::Error::Api(status))
                if !last
                    && (status.is_conflict()
                        || status.is_invalid()
                        || status.is_not_found()
                        || status.code == 400
                        || status.code >= 500) =>
            {
                tracing::debug!(%status.message, "self-signed: caBundle patch refused; retrying");
                tokio::time::sleep(RETRY_DELAY).await;
            }
            Err(source) => return Err(kube_err("patch", source)),
        }
    }
    Err(SelfSignedError::WebhookConfigurationNotFound(
        name.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::self_signed::new_material;
    use crate::self_signed::test_support::*;

    #[test]
    fn the_patch_sets_only_stale_bundles_guarded_by_name() {
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let configuration: MutatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "irsa"},
            "webhooks": [
                {"name": "a.irsa.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                 "clientConfig": {"service": {"name": "irsa-webhook", "namespace": "irsa-system"}}},
                {"name": "b.irsa.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                 "clientConfig": {"caBundle": ByteString(ca.as_bytes().to_vec())}}
            ]
        }))
        .unwrap();
        let patch = ca_bundle_patch(&configuration, ca, now());
        let encoded = serde_json::to_value(ByteString(ca.as_bytes().to_vec())).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([
                {"op": "test", "path": "/webhooks/0/name", "value": "a.irsa.dev"},
                {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": encoded}
            ])
        );
        serde_json::from_value::<json_patch::Patch>(patch).unwrap();
        assert_eq!(
            ca_bundle_patch(&configuration, "other", now()),
            serde_json::json!([
                {"op": "test", "path": "/webhooks/0/name", "value": "a.irsa.dev"},
                {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": serde_json::to_value(ByteString(b"other".to_vec())).unwrap()},
                {"op": "test", "path": "/webhooks/1/name", "value": "b.irsa.dev"},
                {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": serde_json::to_value(ByteString(b"other".to_vec())).unwrap()}
            ])
        );
    }

    #[test]
    fn the_bundle_keeps_one_previous_ca_while_it_is_valid() {
        let ders = |pem: &str| -> Vec<Vec<u8>> {
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .map(|der| der.unwrap().to_vec())
                .collect()
        };
        let [first, second, third] = [(); 3].map(|()| new_material(&sans(), now()).unwrap().ca_crt);

        // A fresh configuration, and the steady state: the CA alone.
        assert_eq!(merged_bundle(b"", &first, now()), first);
        assert_eq!(merged_bundle(first.as_bytes(), &first, now()), first);

        // A new CA: the previous one stays trusted after it, until the other replica has adopted the new one.
        let both = merged_bundle(first.as_bytes(), &second, now());
        assert_eq!(ders(&both), [ders(&second), ders(&first)].concat());
        // That is the steady state from then on: no patch at every check.
        assert_eq!(merged_bundle(both.as_bytes(), &second, now()), both);

        // One previous CA at most: the bundle does not grow with each new CA.
        let next = merged_bundle(both.as_bytes(), &third, now());
        assert_eq!(ders(&next), [ders(&third), ders(&second)].concat());

        // A previous CA that has expired is dropped (this one ended a year ago).
        let expired = new_material(&sans(), now() - 11 * 365 * DAY)
            .unwrap()
            .ca_crt;
        assert_eq!(merged_bundle(expired.as_bytes(), &first, now()), first);
    }
}
