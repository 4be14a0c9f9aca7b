//! What a check concludes: a [`Finding`], and the [`Report`] of all of them with its exit code.

use std::fmt;

use serde::Serialize;

/// The checks, in the order a credential travels (the order of the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[non_exhaustive]
pub enum CheckId {
    /// The apiserver's own discovery document names the issuer, and it is the one expected.
    #[serde(rename = "cluster.issuer")]
    ClusterIssuer,
    /// Which issuers kube-apiserver accepts (an issuer change keeps the old one), against IAM's providers.
    #[serde(rename = "cluster.issuers")]
    ClusterIssuers,
    /// The ServiceAccount exists and names a role (and which audience).
    #[serde(rename = "cluster.service-account")]
    ServiceAccount,
    /// A TokenRequest with the audience succeeds and carries the issuer and audience.
    #[serde(rename = "cluster.token-request")]
    TokenRequest,
    /// A MutatingWebhookConfiguration sends this namespace's pods to the webhook, with a caBundle that
    /// verifies its serving certificate.
    #[serde(rename = "cluster.webhook")]
    Webhook,
    /// A server-side dry-run create of a pod of the ServiceAccount comes back injected.
    #[serde(rename = "cluster.injection")]
    Injection,
    /// Discovery fetched the way STS fetches it: https, no redirects, 5 s, a trusted certificate chain.
    #[serde(rename = "discovery.fetch")]
    DiscoveryFetch,
    /// The discovery `issuer` is byte for byte the apiserver's and the token's `iss`.
    #[serde(rename = "discovery.issuer")]
    DiscoveryIssuer,
    /// The JWKS is fetchable and within STS's rules (key types, sizes, `use`, `key_ops`, 100 per type).
    #[serde(rename = "jwks.keys")]
    JwksKeys,
    /// The JWKS holds the key the apiserver signs with now (the token's `kid`).
    #[serde(rename = "jwks.current-kid")]
    JwksCurrentKid,
    /// An IAM OIDC provider exists for exactly the issuer URL.
    #[serde(rename = "iam.provider")]
    IamProvider,
    /// The provider's client IDs contain the audience.
    #[serde(rename = "iam.client-id")]
    IamClientId,
    /// The provider's thumbprints match the JWKS host's certificate, as AWS computes them.
    #[serde(rename = "iam.thumbprint")]
    IamThumbprint,
    /// The role named by the ServiceAccount exists.
    #[serde(rename = "iam.role")]
    IamRole,
    /// The role's trust policy admits this ServiceAccount's tokens.
    #[serde(rename = "iam.trust-policy")]
    IamTrustPolicy,
    /// sts:AssumeRoleWithWebIdentity with a freshly minted token.
    #[serde(rename = "sts.assume-role")]
    StsAssumeRole,
    /// The clocks of this machine, the apiserver (and the token's `iat`) and STS agree.
    #[serde(rename = "clock.skew")]
    ClockSkew,
    /// Nothing in the pod's environment wins over or redirects web identity.
    #[serde(rename = "sdk.environment")]
    SdkEnvironment,
    /// The region and STS endpoint the SDK would use.
    #[serde(rename = "sdk.region")]
    SdkRegion,
    /// No annotation key is a near miss of the role annotation.
    #[serde(rename = "sdk.annotations")]
    SdkAnnotations,
}

impl CheckId {
    /// Every check, in report order.
    pub const ALL: [CheckId; 20] = [
        CheckId::ClusterIssuer,
        CheckId::ClusterIssuers,
        CheckId::ServiceAccount,
        CheckId::TokenRequest,
        CheckId::Webhook,
        CheckId::Injection,
        CheckId::DiscoveryFetch,
        CheckId::DiscoveryIssuer,
        CheckId::JwksKeys,
        CheckId::JwksCurrentKid,
        CheckId::IamProvider,
        CheckId::IamClientId,
        CheckId::IamThumbprint,
        CheckId::IamRole,
        CheckId::IamTrustPolicy,
        CheckId::StsAssumeRole,
        CheckId::ClockSkew,
        CheckId::SdkEnvironment,
        CheckId::SdkRegion,
        CheckId::SdkAnnotations,
    ];

    /// The name shown in reports (`cluster.issuer`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::ClusterIssuer => "cluster.issuer",
            CheckId::ClusterIssuers => "cluster.issuers",
            CheckId::ServiceAccount => "cluster.service-account",
            CheckId::TokenRequest => "cluster.token-request",
            CheckId::Webhook => "cluster.webhook",
            CheckId::Injection => "cluster.injection",
            CheckId::DiscoveryFetch => "discovery.fetch",
            CheckId::DiscoveryIssuer => "discovery.issuer",
            CheckId::JwksKeys => "jwks.keys",
            CheckId::JwksCurrentKid => "jwks.current-kid",
            CheckId::IamProvider => "iam.provider",
            CheckId::IamClientId => "iam.client-id",
            CheckId::IamThumbprint => "iam.thumbprint",
            CheckId::IamRole => "iam.role",
            CheckId::IamTrustPolicy => "iam.trust-policy",
            CheckId::StsAssumeRole => "sts.assume-role",
            CheckId::ClockSkew => "clock.skew",
            CheckId::SdkEnvironment => "sdk.environment",
            CheckId::SdkRegion => "sdk.region",
            CheckId::SdkAnnotations => "sdk.annotations",
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing wrong.
    Pass,
    /// Works, but bites later or elsewhere.
    Warn,
    /// Broken: a pod's credentials stop here.
    Fail,
    /// Could not be judged (no AWS credentials, an earlier link broken): `what` says why.
    Skipped,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skipped => "skip",
        }
    }
}

/// One check's conclusion: one line saying what was found, and for a warning or failure the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which check.
    pub check: CheckId,
    /// Its verdict.
    pub status: Status,
    /// What was found (for `skipped`: why it was not judged).
    pub what: String,
    /// The fix: an exact command where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    /// A pass.
    pub fn pass(check: CheckId, what: impl Into<String>) -> Finding {
        Finding {
            check,
            status: Status::Pass,
            what: what.into(),
            fix: None,
        }
    }

    /// A warning with its fix.
    pub fn warn(check: CheckId, what: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            check,
            status: Status::Warn,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    /// A failure with its fix.
    pub fn fail(check: CheckId, what: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            check,
            status: Status::Fail,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    /// Not judged, and why.
    pub fn skipped(check: CheckId, why: impl Into<String>) -> Finding {
        Finding {
            check,
            status: Status::Skipped,
            what: why.into(),
            fix: None,
        }
    }
}

/// Every finding of one run, in check order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The report of `findings`, sorted into check order (stable: a check's findings keep their order).
    pub fn new(mut findings: Vec<Finding>) -> Report {
        findings.sort_by_key(|f| f.check);
        Report { findings }
    }

    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.status == Status::Fail)
    }

    /// The finding of `check`, if there is one.
    pub fn get(&self, check: CheckId) -> Option<&Finding> {
        self.findings.iter().find(|f| f.check == check)
    }

    /// The process exit code: 0 when nothing failed (warnings allowed), 1 when something did.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.failed())
    }

    /// One line per finding, `fix:` on the next, and a summary line.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let mut counts = [0usize; 4];
        for f in &self.findings {
            counts[f.status as usize] += 1;
            out.push_str(&format!(
                "{:<4}  {:<24} {}\n",
                f.status.label(),
                f.check.as_str(),
                f.what
            ));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("      {:<24} fix: {fix}\n", ""));
            }
        }
        out.push_str(&format!(
            "{} passed, {} warnings, {} failed, {} skipped\n",
            counts[0], counts[1], counts[2], counts[3]
        ));
        out
    }

    /// `{"ok": bool, "findings": [...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": !self.failed(),
            "findings": self.findings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_and_order() {
        let report = Report::new(vec![
            Finding::warn(CheckId::SdkRegion, "no region", "set AWS_REGION"),
            Finding::pass(CheckId::ClusterIssuer, "ok"),
        ]);
        assert_eq!(report.findings[0].check, CheckId::ClusterIssuer);
        assert_eq!(report.exit_code(), 0, "warnings allowed");
        let report = Report::new(vec![Finding::fail(CheckId::IamRole, "gone", "create it")]);
        assert_eq!(report.exit_code(), 1);
        let text = report.render_text();
        assert!(text.contains("FAIL  iam.role"), "{text}");
        assert!(text.contains("fix: create it"), "{text}");
        assert!(text.ends_with("0 passed, 0 warnings, 1 failed, 0 skipped\n"));
        let json = report.to_json();
        assert_eq!(json["ok"], false);
        assert_eq!(json["findings"][0]["check"], "iam.role");
        assert_eq!(json["findings"][0]["status"], "fail");
    }

    #[test]
    fn names_match_serde() {
        for id in CheckId::ALL {
            assert_eq!(serde_json::to_value(id).unwrap(), id.as_str());
        }
        assert!(CheckId::ALL.is_sorted(), "ALL is in report order");
    }
}
