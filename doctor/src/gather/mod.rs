//! The I/O around the checks: everything [`Inputs`] holds, gathered from the cluster, the issuer as STS
//! reaches it, IAM and STS. Nothing here judges; a failed call is recorded for the checks to explain.

pub mod aws;
pub mod kube;
pub mod web;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use irsa_core::IssuerUrl;
use irsa_iam::aws::AwsOptions;
use irsa_iam::preflight::STS_TIMEOUT;
use irsa_iam::trust::Trust;
use rustls_pki_types::UnixTime;
use serde_json::Value;

use crate::checks::cluster::{self, ServiceAccountView};
use crate::checks::webhook;
use crate::diagnose::{Inputs, probe_pod};

/// What to diagnose, and how to reach everything.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The ServiceAccount's namespace (with `pod`: the pod's).
    pub namespace: Option<String>,
    /// The ServiceAccount (with `pod`: taken from it).
    pub service_account: Option<String>,
    /// `NAMESPACE/NAME` of a running pod.
    pub pod: Option<String>,
    /// `--issuer-url`.
    pub issuer_url: Option<String>,
    /// `--region`: STS's region (and signing for IAM).
    pub region: Option<String>,
    /// `--sts-endpoint`.
    pub sts_endpoint: Option<String>,
    /// Credentials for IAM.
    pub aws: AwsOptions,
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--ca-file`: a private CA the issuer's certificate is trusted with (as a thumbprint makes STS do).
    pub ca_file: Option<PathBuf>,
}

/// Why the doctor could not run at all (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CannotRun {
    /// The options do not name a ServiceAccount.
    #[error("{0}")]
    Usage(String),
    /// No Kubernetes client.
    #[error(transparent)]
    Kube(#[from] irsa_serve::kube_client::KubeClientError),
    /// `--pod` could not be read.
    #[error("cannot read pod {pod}: {reason}")]
    Pod {
        /// `NAMESPACE/NAME`.
        pod: String,
        /// Why.
        reason: String,
    },
    /// `--ca-file` is unusable.
    #[error(transparent)]
    Trust(#[from] irsa_iam::trust::TrustError),
}

fn epoch_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or_default()
}

/// Gathers every input; returns them with the trust STS would use.
pub async fn gather(opts: &Options) -> Result<(Inputs, Trust), CannotRun> {
    let trust = Trust::load(opts.ca_file.as_deref())?;
    let client = irsa_serve::kube_client::client(opts.kubeconfig.as_deref()).await?;

    let mut running_pod = None;
    let (namespace, service_account) = match (&opts.pod, &opts.namespace, &opts.service_account) {
        (Some(pod), _, _) => {
            let (ns, name) = pod
                .split_once('/')
                .ok_or_else(|| CannotRun::Usage(format!("--pod {pod:?} is not NAMESPACE/NAME")))?;
            let value = kube::pod(&client, ns, name)
                .await
                .map_err(|reason| CannotRun::Pod {
                    pod: pod.clone(),
                    reason,
                })?;
            let sa = value
                .pointer("/spec/serviceAccountName")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_owned();
            running_pod = Some(value);
            (ns.to_owned(), sa)
        }
        (None, Some(ns), Some(sa)) => (ns.clone(), sa.clone()),
        _ => {
            return Err(CannotRun::Usage(
                "name the ServiceAccount (--namespace NS --service-account SA) or a pod (--pod NS/NAME)".to_owned(),
            ));
        }
    };
    let mut inputs = Inputs::new(&namespace, &service_account, UnixTime::now());
    inputs.pod = running_pod;
    inputs.given_issuer = opts.issuer_url.clone();
    inputs.sts_endpoint = opts.sts_endpoint.clone();

    // The cluster.
    let ((discovery, apiserver_date), annotations, labels, webhooks, apiserver_pod) = tokio::join!(
        kube::apiserver_discovery(&client),
        kube::service_account(&client, &namespace, &service_account),
        kube::namespace_labels(&client, &namespace),
        kube::webhooks(&client),
        kube::apiserver_pod(&client),
    );
    inputs.apiserver_pod = apiserver_pod;
    let (_, issuer) = cluster::issuer(&discovery, opts.issuer_url.as_deref());
    inputs.apiserver_discovery = discovery;
    inputs.clock.apiserver = apiserver_date;
    inputs.namespace_labels = labels;
    let view = match &annotations {
        Ok(Some(a)) => Some(ServiceAccountView::of(a.clone())),
        _ => None,
    };
    let exists = view.is_some();
    inputs.service_account_annotations = annotations;
    if let Ok(configs) = &webhooks {
        for url in webhook::pod_webhooks(configs, &inputs.namespace_labels)
            .into_iter()
            .filter_map(|w| w.url)
        {
            if let Some(chain) = web::chain_of(&url, Duration::from_secs(5)).await {
                inputs.webhook_chains.insert(url, chain);
            }
        }
    }
    inputs.webhooks = webhooks;
    if exists {
        let audience = view
            .as_ref()
            .map(|v| v.audience.clone())
            .unwrap_or_default();
        let probe = probe_pod(&service_account);
        let (token, pod) = tokio::join!(
            kube::token(&client, &namespace, &service_account, &audience),
            kube::dry_run_pod(&client, &namespace, &probe),
        );
        inputs.clock.local = epoch_seconds(SystemTime::now());
        inputs.token = Some(token);
        inputs.dry_run_pod = Some(pod);
    } else {
        inputs.clock.local = epoch_seconds(SystemTime::now());
    }
    inputs.clock.token_iat = inputs.claims().and_then(Result::ok).and_then(|c| c.iat);

    // The issuer, as STS reaches it.
    let issuer_url = issuer
        .as_deref()
        .and_then(|i| IssuerUrl::parse(i, false).ok());
    let role_arn = view.as_ref().and_then(|v| v.role_arn.clone());
    if let Some(url) = &issuer_url {
        let discovery_url = url.discovery_url();
        match web::sts_like_client(&trust, &discovery_url) {
            Err(e) => inputs.discovery = Some(Err(e)),
            Ok(client) => {
                let (document, chain) = tokio::join!(
                    web::fetch(&client, &discovery_url),
                    web::chain_of(&discovery_url, STS_TIMEOUT),
                );
                let jwks_uri = document
                    .as_ref()
                    .ok()
                    .and_then(|d| serde_json::from_slice::<Value>(&d.body).ok())
                    .and_then(|v| v.get("jwks_uri").and_then(Value::as_str).map(str::to_owned));
                inputs.discovery = Some(document);
                inputs.discovery_chain = chain;
                if let Some(jwks_uri) = jwks_uri {
                    let (jwks, chain) = tokio::join!(
                        web::fetch(&client, &jwks_uri),
                        web::chain_of(&jwks_uri, STS_TIMEOUT),
                    );
                    inputs.jwks = Some(jwks);
                    inputs.jwks_chain = chain;
                }
            }
        }
        // IAM.
        let mut aws = opts.aws.clone();
        aws.region = aws.region.or_else(|| opts.region.clone());
        inputs.aws = aws::iam(&aws, url, role_arn.as_deref()).await;
    }

    // The real call, and STS's clock.
    if let (Some(Ok(token)), Some(role)) = (&inputs.token, &role_arn) {
        let region = opts
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = aws::sts_endpoint(opts.sts_endpoint.as_deref(), &region);
        let (outcome, date) = tokio::join!(
            aws::assume_role(&region, &endpoint, role, token),
            aws::sts_date(&endpoint),
        );
        inputs.sts = Some(outcome);
        inputs.sts_called = Some(endpoint);
        inputs.clock.sts = date;
    }
    Ok((inputs, trust))
}
