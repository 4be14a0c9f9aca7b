//! The whole diagnosis over recorded inputs: a healthy chain passes every check, and one broken link is
//! named, with the STS refusal pointing at it.

use std::collections::BTreeMap;

use irsa_core::{IssuerUrl, Partition};
use irsa_doctor::checks::Fetched;
use irsa_doctor::checks::clock::Readings;
use irsa_doctor::checks::sts::StsError;
use irsa_doctor::diagnose::{AwsInputs, Inputs, diagnose};
use irsa_doctor::{CheckId, Status};
use irsa_iam::plan::ExistingProvider;
use irsa_iam::thumbprint::Thumbprint;
use irsa_iam::trust::Trust;
use irsa_iam::trust_policy::TrustPolicy;
use irsa_testing::pki::Ca;
use rustls_pki_types::UnixTime;
use serde_json::json;

const ISSUER: &str = "https://oidc.example.com/c1";
const ROLE: &str = "arn:aws:iam::111122223333:role/uploader";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn fetched(url: &str, body: Vec<u8>) -> Fetched {
    Fetched {
        url: url.into(),
        status: 200,
        millis: 30,
        body,
        cache_control: Some("max-age=300".into()),
        location: None,
    }
}

struct Healthy {
    inputs: Inputs,
    trust: Trust,
    _dir: tempfile::TempDir,
}

fn healthy() -> Healthy {
    let ca = Ca::new("issuer-ca");
    let chain = vec![ca.leaf(&["oidc.example.com"]).cert_der, ca.der()];
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let trust = Trust::load(Some(&ca_file)).unwrap();

    let url = IssuerUrl::parse(ISSUER, false).unwrap();
    let provider_arn = url.provider_arn(Partition::Aws, "111122223333");
    let policy = TrustPolicy::new(
        &url,
        &provider_arn,
        "team-a",
        "uploader",
        "sts.amazonaws.com",
    )
    .to_json();
    let token = irsa_doctor::token::encode_unsigned(
        &json!({"alg": "RS256", "kid": "current-kid"}),
        &json!({"iss": ISSUER, "sub": "system:serviceaccount:team-a:uploader", "aud": ["sts.amazonaws.com"], "iat": 1000, "exp": 1600}),
    );
    let pod = json!({"metadata": {"name": "irsa-doctor-x"}, "spec": {
        "containers": [{"name": "probe", "env": [
            {"name": "AWS_ROLE_ARN", "value": ROLE},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
            {"name": "AWS_REGION", "value": "eu-west-1"},
            {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}]}],
        "volumes": [{"name": "aws-iam-token"}]}});

    let mut inputs = Inputs::new("team-a", "uploader", UnixTime::now());
    inputs.apiserver_discovery = Ok(fixture("discovery.json"));
    inputs.apiserver_pod = Ok(Some(
        serde_json::from_slice(&fixture("kube-apiserver-pod.json")).unwrap(),
    ));
    inputs.service_account_annotations = Ok(Some(BTreeMap::from([(
        "eks.amazonaws.com/role-arn".to_owned(),
        ROLE.to_owned(),
    )])));
    inputs.token = Some(Ok(token));
    inputs.webhooks = Ok(vec![]);
    inputs.dry_run_pod = Some(Ok(pod));
    inputs.discovery = Some(Ok(fetched(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        fixture("discovery.json"),
    )));
    inputs.discovery_chain = Some(Ok(chain.clone()));
    inputs.jwks = Some(Ok(fetched(
        &format!("{ISSUER}/openid/v1/jwks"),
        fixture("jwks.json"),
    )));
    inputs.jwks_chain = Some(Ok(chain));
    inputs.aws = AwsInputs::Read {
        provider_arn: provider_arn.clone(),
        provider: Ok(Some(ExistingProvider {
            client_ids: vec!["sts.amazonaws.com".into()],
            thumbprints: vec![Thumbprint::of_der(&ca.der()).to_string()],
            tags: BTreeMap::new(),
        })),
        // The issuer being changed from .../old: both providers registered.
        listed: Ok(vec![
            provider_arn,
            "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/old".into(),
        ]),
        role: Some(Ok(Some(policy))),
    };
    inputs.sts = Some(Ok(
        "arn:aws:sts::111122223333:assumed-role/uploader/irsa-doctor".into(),
    ));
    inputs.clock = Readings {
        local: 1001,
        apiserver: Some(1001),
        token_iat: Some(1000),
        sts: Some(1000),
    };
    let webhook_ca = Ca::new("webhook-ca");
    use base64::Engine;
    inputs.webhooks = Ok(vec![json!({"metadata": {"name": "irsa"}, "webhooks": [{
        "name": "pod-identity.irsa.dev",
        "clientConfig": {"url": "https://127.0.0.1:8443/mutate", "caBundle": base64::engine::general_purpose::STANDARD.encode(webhook_ca.pem())},
        "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
        "failurePolicy": "Fail"}]})]);
    inputs.webhook_chains = BTreeMap::from([(
        "https://127.0.0.1:8443/mutate".to_owned(),
        Ok(vec![
            webhook_ca.leaf(&["127.0.0.1"]).cert_der,
            webhook_ca.der(),
        ]),
    )]);
    Healthy {
        inputs,
        trust,
        _dir: dir,
    }
}

#[test]
fn a_healthy_chain_passes_every_check() {
    let h = healthy();
    let report = diagnose(&h.inputs, &h.trust);
    for f in &report.findings {
        assert_eq!(f.status, Status::Pass, "{f:?}\n{}", report.render_text());
    }
    assert_eq!(report.findings.len(), CheckId::ALL.len());
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn a_trust_policy_for_another_namespace_is_the_link_sts_refuses_at() {
    let mut h = healthy();
    if let AwsInputs::Read {
        role, provider_arn, ..
    } = &mut h.inputs.aws
    {
        let url = IssuerUrl::parse(ISSUER, false).unwrap();
        *role = Some(Ok(Some(
            TrustPolicy::new(
                &url,
                provider_arn,
                "team-b",
                "uploader",
                "sts.amazonaws.com",
            )
            .to_json(),
        )));
    }
    h.inputs.sts = Some(Err(StsError {
        code: "AccessDenied".into(),
        message: "Not authorized to perform sts:AssumeRoleWithWebIdentity".into(),
    }));
    let report = diagnose(&h.inputs, &h.trust);
    assert_eq!(report.exit_code(), 1);
    let trust = report.get(CheckId::IamTrustPolicy).unwrap();
    assert_eq!(trust.status, Status::Fail);
    assert!(
        trust.what.contains("namespace team-b, not team-a"),
        "{}",
        trust.what
    );
    let sts = report.get(CheckId::StsAssumeRole).unwrap();
    assert!(
        sts.what
            .contains("explained by iam.trust-policy, as found above"),
        "{}",
        sts.what
    );
    assert_eq!(sts.fix, trust.fix);
}

#[test]
fn without_aws_credentials_iam_is_skipped_with_why() {
    let mut h = healthy();
    h.inputs.aws = AwsInputs::Unavailable(
        "needs AWS credentials to read IAM: no AWS credentials found".into(),
    );
    let report = diagnose(&h.inputs, &h.trust);
    for id in [
        CheckId::IamProvider,
        CheckId::IamClientId,
        CheckId::IamThumbprint,
        CheckId::IamRole,
        CheckId::IamTrustPolicy,
    ] {
        let f = report.get(id).unwrap();
        assert_eq!(f.status, Status::Skipped, "{f:?}");
        assert!(f.what.contains("needs AWS credentials"), "{f:?}");
    }
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn an_untrusted_issuer_certificate_and_an_unpublished_kid() {
    let h = healthy();
    // Judged against the public roots only: the private CA is not trusted.
    let public = Trust::load(None).unwrap();
    let report = diagnose(&h.inputs, &public);
    let f = report.get(CheckId::DiscoveryFetch).unwrap();
    assert_eq!(f.status, Status::Fail, "{f:?}");
    assert!(f.what.contains("not trusted"), "{}", f.what);

    let mut h = healthy();
    h.inputs.token = Some(Ok(irsa_doctor::token::encode_unsigned(
        &json!({"alg": "RS256", "kid": "rotated-kid"}),
        &json!({"iss": ISSUER, "sub": "system:serviceaccount:team-a:uploader", "aud": "sts.amazonaws.com", "iat": 1000}),
    )));
    let report = diagnose(&h.inputs, &h.trust);
    let f = report.get(CheckId::JwksCurrentKid).unwrap();
    assert_eq!(f.status, Status::Fail);
    assert!(f.what.contains("rotated-kid"), "{}", f.what);
}

#[test]
fn no_provider_found_while_iam_has_it_points_at_the_inactive_sts_region() {
    let mut h = healthy();
    h.inputs.sts = Some(Err(StsError {
        code: "InvalidIdentityToken".into(),
        message: format!("No OpenIDConnect provider found in your account for {ISSUER}"),
    }));
    h.inputs.sts_called = Some("https://sts.eu-west-1.amazonaws.com".into());
    let report = diagnose(&h.inputs, &h.trust);
    assert_eq!(
        report.get(CheckId::IamProvider).unwrap().status,
        Status::Pass
    );
    let sts = report.get(CheckId::StsAssumeRole).unwrap();
    assert_eq!(sts.status, Status::Fail);
    assert!(
        sts.what.contains("not active in region eu-west-1"),
        "{}",
        sts.what
    );
    assert!(
        sts.fix
            .as_deref()
            .unwrap_or_default()
            .contains("Endpoints > eu-west-1 > Active"),
        "{sts:?}"
    );
}
