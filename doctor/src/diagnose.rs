//! Every check over one set of recorded [`Inputs`], in the order a credential travels: pure, so a whole
//! run can be replayed from what was gathered.

use std::collections::BTreeMap;

use irsa_core::IssuerUrl;
use irsa_iam::plan::ExistingProvider;
use irsa_iam::trust::Trust;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::{Value, json};

use crate::checks::clock::{self, Readings};
use crate::checks::sts::{self, StsError};
use crate::checks::{Fetched, Gathered, cluster, discovery, iam, issuers, sdk, tls, webhook};
use crate::finding::{CheckId, Finding, Report};
use crate::token::{self, Claims};

/// What the IAM side looked like, or why it could not be read.
#[derive(Debug, Clone, Default)]
pub enum AwsInputs {
    /// No AWS credentials (or they did not work): the IAM checks are skipped with this reason.
    Unavailable(String),
    /// Not gathered (an earlier link was missing).
    #[default]
    NotRead,
    /// Read from IAM.
    Read {
        /// The provider ARN for the issuer in the caller's account.
        provider_arn: String,
        /// `GetOpenIDConnectProvider`.
        provider: Gathered<Option<ExistingProvider>>,
        /// `ListOpenIDConnectProviders`: every provider ARN, for near misses.
        listed: Gathered<Vec<String>>,
        /// `GetRole`: the trust policy, `None` when the role does not exist; absent when the role ARN is not
        /// an IAM one (an emulator's).
        role: Option<Gathered<Option<String>>>,
    },
}

/// Everything the checks judge, as gathered.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The ServiceAccount's namespace.
    pub namespace: String,
    /// The ServiceAccount's name.
    pub service_account: String,
    /// `--issuer-url`.
    pub given_issuer: Option<String>,
    /// The apiserver's `/.well-known/openid-configuration`.
    pub apiserver_discovery: Gathered<Vec<u8>>,
    /// kube-apiserver's pod in kube-system, for its flags (`None`: there is none, as on managed clusters).
    pub apiserver_pod: Gathered<Option<Value>>,
    /// The ServiceAccount's annotations (`None`: no such ServiceAccount).
    pub service_account_annotations: Gathered<Option<BTreeMap<String, String>>>,
    /// The namespace's labels.
    pub namespace_labels: BTreeMap<String, String>,
    /// The token minted by TokenRequest.
    pub token: Option<Gathered<String>>,
    /// MutatingWebhookConfigurations, as JSON.
    pub webhooks: Gathered<Vec<Value>>,
    /// The chains the pod webhooks serve, by URL (URL webhooks only).
    pub webhook_chains: BTreeMap<String, Gathered<Vec<CertificateDer<'static>>>>,
    /// The server-side dry-run created pod.
    pub dry_run_pod: Option<Gathered<Value>>,
    /// The pod of `--pod`, as it runs.
    pub pod: Option<Value>,
    /// The discovery document, fetched as STS does.
    pub discovery: Option<Gathered<Fetched>>,
    /// The chain the issuer host presents.
    pub discovery_chain: Option<Gathered<Vec<CertificateDer<'static>>>>,
    /// The JWKS, fetched as STS does.
    pub jwks: Option<Gathered<Fetched>>,
    /// The chain the JWKS host presents.
    pub jwks_chain: Option<Gathered<Vec<CertificateDer<'static>>>>,
    /// IAM.
    pub aws: AwsInputs,
    /// AssumeRoleWithWebIdentity: the assumed role's ARN, or STS's error.
    pub sts: Option<Result<String, StsError>>,
    /// `--sts-endpoint`.
    pub sts_endpoint: Option<String>,
    /// The STS endpoint the real call went to.
    pub sts_called: Option<String>,
    /// Clock readings.
    pub clock: Readings,
    /// Now, for certificate validity.
    pub now: UnixTime,
}

impl Inputs {
    /// Inputs where nothing was gathered yet, for `namespace/service_account` at `now`.
    pub fn new(namespace: &str, service_account: &str, now: UnixTime) -> Inputs {
        Inputs {
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            given_issuer: None,
            apiserver_discovery: Err(NOT_GATHERED.to_owned()),
            apiserver_pod: Err(NOT_GATHERED.to_owned()),
            service_account_annotations: Err(NOT_GATHERED.to_owned()),
            namespace_labels: BTreeMap::new(),
            token: None,
            webhooks: Err(NOT_GATHERED.to_owned()),
            webhook_chains: BTreeMap::new(),
            dry_run_pod: None,
            pod: None,
            discovery: None,
            discovery_chain: None,
            jwks: None,
            jwks_chain: None,
            aws: AwsInputs::NotRead,
            sts: None,
            sts_endpoint: None,
            sts_called: None,
            clock: Readings::default(),
            now,
        }
    }

    /// The claims of the minted token, if there is one.
    pub fn claims(&self) -> Option<Gathered<Claims>> {
        self.token.as_ref().map(|t| {
            t.clone()
                .and_then(|t| token::decode(&t).map_err(|e| e.to_string()))
        })
    }
}

const NOT_GATHERED: &str = "not gathered";

/// The pod the SDK checks look at: the one of `--pod`, else the one a dry-run create gave.
fn sdk_pod(inputs: &Inputs) -> Option<(Value, String)> {
    if let Some(pod) = &inputs.pod {
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        return Some((pod.clone(), format!("pod {}/{name}", inputs.namespace)));
    }
    match &inputs.dry_run_pod {
        Some(Ok(p)) => Some((p.clone(), "a new pod of the ServiceAccount".to_owned())),
        _ => None,
    }
}

/// Runs every check over `inputs`; `trust` is what STS trusts (plus `--ca-file`).
pub fn diagnose(inputs: &Inputs, trust: &Trust) -> Report {
    let mut out = Vec::new();
    let (ns, sa) = (inputs.namespace.as_str(), inputs.service_account.as_str());
    let skip = |out: &mut Vec<Finding>, ids: &[CheckId], why: &str| {
        out.extend(ids.iter().map(|id| Finding::skipped(*id, why)));
    };

    // 1. Cluster.
    let (f, issuer) = cluster::issuer(&inputs.apiserver_discovery, inputs.given_issuer.as_deref());
    out.push(f);
    let (f, view) = cluster::service_account(&inputs.service_account_annotations, ns, sa);
    out.push(f);
    let audience = view.as_ref().map_or_else(
        || irsa_core::names::DEFAULT_AUDIENCE.to_owned(),
        |v| v.audience.clone(),
    );
    let claims = inputs.claims();
    match &claims {
        Some(c) => out.push(cluster::token_request(
            c,
            issuer.as_deref(),
            &audience,
            ns,
            sa,
        )),
        None => skip(&mut out, &[CheckId::TokenRequest], "no token was requested"),
    }
    let claims = claims.and_then(Result::ok);
    out.push(webhook::webhook(
        &inputs.webhooks,
        ns,
        &inputs.namespace_labels,
        &inputs.webhook_chains,
        inputs.now,
    ));
    let role_arn = view.as_ref().and_then(|v| v.role_arn.clone());
    match (&inputs.dry_run_pod, &role_arn) {
        (Some(pod), Some(arn)) => out.push(cluster::injection(pod, arn, ns, sa)),
        _ => skip(
            &mut out,
            &[CheckId::Injection],
            "the ServiceAccount names no role",
        ),
    }

    // 2. Discovery and JWKS.
    let issuer_url = issuer.as_deref().map(|i| IssuerUrl::parse(i, false));
    let issuer_url = match issuer_url {
        Some(Ok(u)) => Some(u),
        Some(Err(e)) => {
            skip(
                &mut out,
                &[CheckId::DiscoveryFetch],
                &format!("the issuer URL is unusable: {e}"),
            );
            None
        }
        None => {
            skip(
                &mut out,
                &[CheckId::DiscoveryFetch],
                "the issuer is unknown (see cluster.issuer)",
            );
            None
        }
    };
    let verifier = trust.verifier().map_err(|e| e.to_string());
    let judge_chain = |chain: Option<&Gathered<Vec<CertificateDer<'static>>>>, host: &str| match (
        chain, &verifier,
    ) {
        (Some(Ok(chain)), Ok(v)) => Some(tls::verify(v.as_ref(), chain, host, inputs.now)),
        _ => None,
    };
    let mut jwks_summary = None;
    let mut jwks_host = None;
    if let (Some(url), Some(fetched)) = (&issuer_url, &inputs.discovery) {
        let verdict = judge_chain(inputs.discovery_chain.as_ref(), url.host());
        let (f, document) = discovery::discovery_fetch(url.as_str(), fetched, verdict.as_ref());
        out.push(f);
        let disc = document.and_then(|d| {
            let (f, disc) = discovery::discovery_issuer(
                url.as_str(),
                &d,
                claims.as_ref().and_then(|c| c.iss.as_deref()),
            );
            out.push(f);
            disc
        });
        if let (Some(disc), Some(jwks)) = (&disc, &inputs.jwks) {
            jwks_host = Some(disc.jwks_host.clone());
            let verdict = judge_chain(inputs.jwks_chain.as_ref(), &disc.jwks_host);
            let (f, summary) = discovery::jwks_keys(url.as_str(), jwks, verdict.as_ref());
            out.push(f);
            jwks_summary = summary;
        }
    } else if issuer_url.is_some() {
        skip(
            &mut out,
            &[CheckId::DiscoveryFetch],
            "discovery was not fetched",
        );
    }
    match (&jwks_summary, &issuer_url) {
        (Some(s), Some(url)) => out.push(discovery::current_kid(
            url.as_str(),
            &s.kids,
            claims.as_ref().and_then(|c| c.kid.as_deref()),
        )),
        _ => skip(
            &mut out,
            &[CheckId::JwksCurrentKid],
            "the JWKS could not be judged",
        ),
    }

    // 3. IAM.
    let iam_checks = [
        CheckId::IamProvider,
        CheckId::IamClientId,
        CheckId::IamThumbprint,
        CheckId::IamRole,
        CheckId::IamTrustPolicy,
    ];
    match (&inputs.aws, &issuer_url) {
        (AwsInputs::Unavailable(why), _) => skip(&mut out, &iam_checks, why),
        (AwsInputs::NotRead, _) | (_, None) => skip(
            &mut out,
            &iam_checks,
            "IAM was not read: the issuer is unknown",
        ),
        (
            AwsInputs::Read {
                provider_arn,
                provider,
                listed,
                role,
            },
            Some(url),
        ) => {
            out.push(iam::provider(url, provider_arn, provider, listed));
            match provider {
                Ok(Some(p)) => {
                    out.push(iam::client_id(url, p, &audience));
                    let public = match (&inputs.jwks_chain, &jwks_host, Trust::load(None)) {
                        (Some(Ok(chain)), Some(host), Ok(public)) => {
                            public.verifier().ok().is_some_and(|v| {
                                tls::verify(v.as_ref(), chain, host, inputs.now).is_ok()
                            })
                        }
                        _ => false,
                    };
                    let chain = inputs
                        .jwks_chain
                        .clone()
                        .unwrap_or_else(|| Err("not recorded".to_owned()));
                    out.push(iam::thumbprint(url, p, &chain, public));
                }
                _ => skip(
                    &mut out,
                    &[CheckId::IamClientId, CheckId::IamThumbprint],
                    "no provider to read",
                ),
            }
            match (role, &role_arn) {
                (Some(policy), Some(arn)) => {
                    out.push(iam::role(arn, policy));
                    match policy {
                        Ok(Some(doc)) => out.push(iam::trust_policy(
                            doc,
                            &iam::Wanted {
                                issuer: url,
                                provider_arn,
                                namespace: ns,
                                service_account: sa,
                                audience: &audience,
                                role_name: iam::role_name(arn).unwrap_or("NAME"),
                            },
                        )),
                        _ => skip(&mut out, &[CheckId::IamTrustPolicy], "no role to read"),
                    }
                }
                (None, Some(arn)) => skip(
                    &mut out,
                    &[CheckId::IamRole, CheckId::IamTrustPolicy],
                    &format!("{arn} is not an IAM role ARN: the STS that issues it decides"),
                ),
                _ => skip(
                    &mut out,
                    &[CheckId::IamRole, CheckId::IamTrustPolicy],
                    "the ServiceAccount names no role",
                ),
            }
        }
    }

    // Which issuers the apiserver accepts, against the providers IAM lists.
    let listed = match &inputs.aws {
        AwsInputs::Read {
            listed: Ok(listed), ..
        } => Some(listed.as_slice()),
        _ => None,
    };
    out.push(issuers::issuers(
        &inputs.apiserver_pod,
        claims.as_ref().and_then(|c| c.iss.as_deref()),
        listed,
    ));

    // 4. The real call.
    match (&inputs.sts, &role_arn) {
        (Some(outcome), Some(arn)) => {
            let f = sts::assume_role(outcome, arn, inputs.sts_called.as_deref(), &out);
            out.push(f);
        }
        _ => skip(
            &mut out,
            &[CheckId::StsAssumeRole],
            "no token or no role to call STS with",
        ),
    }

    // 5. Clock.
    out.push(clock::skew(&inputs.clock));

    // 6. SDK-side traps.
    match sdk_pod(inputs) {
        Some((pod, what)) => {
            out.push(sdk::environment(&pod, &what));
            out.push(sdk::region(&pod, &what, inputs.sts_endpoint.as_deref()));
        }
        None => skip(
            &mut out,
            &[CheckId::SdkEnvironment, CheckId::SdkRegion],
            "no pod to look at",
        ),
    }
    match &view {
        Some(v) => out.push(sdk::annotations(&v.annotations, ns, sa)),
        None => skip(&mut out, &[CheckId::SdkAnnotations], "no ServiceAccount"),
    }
    // A check an earlier broken link kept from running is still listed, so every report has every check.
    for id in CheckId::ALL {
        if !out.iter().any(|f| f.check == id) {
            out.push(Finding::skipped(
                id,
                "an earlier link is broken or was not reached",
            ));
        }
    }
    Report::new(out)
}

/// The pod a server-side dry run creates for the ServiceAccount.
pub fn probe_pod(service_account: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "irsa-doctor-"},
        "spec": {
            "serviceAccountName": service_account,
            "containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.10"}],
        },
    })
}
