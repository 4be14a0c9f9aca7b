//! The real call: sts:AssumeRoleWithWebIdentity with a freshly minted token, and its error mapped to the
//! check that explains it.

use crate::finding::{CheckId, Finding, Status};

/// What STS answered when it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    /// The error code (`InvalidIdentityToken`, `AccessDenied`, ...); empty when the call never got an answer.
    pub code: String,
    /// The message.
    pub message: String,
}

/// The check that explains an STS error, and the fix when that check has none to offer.
pub fn explain(e: &StsError) -> (CheckId, &'static str) {
    let m = e.message.to_ascii_lowercase();
    match e.code.as_str() {
        "InvalidIdentityToken" if m.contains("no openidconnect provider") => (
            CheckId::IamProvider,
            "register the provider for exactly the token's iss (irsa associate-oidc-provider); if it exists, the regional STS endpoint may be inactive in this account: activate the region or use another endpoint",
        ),
        "InvalidIdentityToken" if m.contains("verification key") || m.contains("jwks") => (
            CheckId::JwksCurrentKid,
            "make discovery and the JWKS reachable from the internet with the current key (irsa issuer serve/publish)",
        ),
        // AWS says "Incorrect token audience"; MinIO "`azp` must match configured OpenID Client ID".
        _ if m.contains("audience") || m.contains("client id") => (
            CheckId::IamClientId,
            "add the audience to the provider: irsa associate-oidc-provider --client-id AUDIENCE",
        ),
        "InvalidIdentityToken" if m.contains("thumbprint") => (
            CheckId::IamThumbprint,
            "irsa associate-oidc-provider --thumbprint auto",
        ),
        "InvalidIdentityToken" if m.contains("issuer") => (
            CheckId::DiscoveryIssuer,
            "make the discovery issuer, the apiserver's --service-account-issuer and the provider URL byte-identical",
        ),
        "ExpiredTokenException" | "ExpiredToken" => (
            CheckId::ClockSkew,
            "sync the clocks (chrony/NTP) of the apiserver's host and this machine; the kubelet refreshes tokens before 80% of their life",
        ),
        "IDPCommunicationError" | "IDPCommunicationErrorException" => (
            CheckId::DiscoveryFetch,
            "serve discovery and JWKS publicly over HTTPS, answering within 5 s",
        ),
        "AccessDenied"
        | "AccessDeniedException"
        | "IDPRejectedClaim"
        | "IDPRejectedClaimException" => (
            CheckId::IamTrustPolicy,
            "let the role trust this ServiceAccount: irsa create-role --namespace NS --service-account SA ...",
        ),
        "InvalidIdentityToken" => (
            CheckId::TokenRequest,
            "read STS's message; check the token's iss, aud, kid and lifetime",
        ),
        _ => (
            CheckId::StsAssumeRole,
            "check --sts-endpoint and --region: the regional STS endpoint must be reachable and active",
        ),
    }
}

/// The region of a regional STS endpoint (`https://sts.REGION.amazonaws.com`, `.amazonaws.com.cn`), if
/// `endpoint` is one.
pub fn regional_endpoint_region(endpoint: &str) -> Option<&str> {
    let host = endpoint
        .strip_prefix("https://")
        .unwrap_or(endpoint)
        .split(['/', ':'])
        .next()?;
    let rest = host.strip_prefix("sts.")?;
    let (region, domain) = rest.split_once('.')?;
    let regional = matches!(domain, "amazonaws.com" | "amazonaws.com.cn" | "api.aws")
        && region.contains('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    regional.then_some(region)
}

/// STS said "No OpenIDConnect provider found" although `iam.provider` found it: what AWS documents for
/// that case (a regional endpoint not active in the role's account answers so).
fn inactive_region(e: &StsError, endpoint: Option<&str>) -> Finding {
    let (at, region) = match endpoint {
        Some(ep) => (
            format!(" at {ep}"),
            regional_endpoint_region(ep).unwrap_or("REGION"),
        ),
        None => (String::new(), "REGION"),
    };
    Finding::fail(
        CheckId::StsAssumeRole,
        format!(
            "STS{at} refused: {}: {}, yet iam.provider found the provider: the likeliest cause is that AWS STS is not active in region {region} for the role's account (an inactive regional endpoint answers with this misleading error)",
            e.code, e.message
        ),
        format!(
            "activate STS in {region} for the role's account: IAM console > Account settings > Security Token Service (STS) > Endpoints > {region} > Active (an opt-in region must first be enabled: aws account enable-region --region-name {region}); or point the SDK at an active endpoint (AWS_ENDPOINT_URL_STS=https://sts.us-east-1.amazonaws.com)"
        ),
    )
}

/// `sts.assume-role`: the call's outcome at `endpoint` (when known). A refusal names the check that explains
/// it and, when that check already failed, its fix.
pub fn assume_role(
    outcome: &Result<String, StsError>,
    role_arn: &str,
    endpoint: Option<&str>,
    earlier: &[Finding],
) -> Finding {
    let id = CheckId::StsAssumeRole;
    let e = match outcome {
        Ok(identity) => {
            return Finding::pass(
                id,
                format!("AssumeRoleWithWebIdentity on {role_arn} succeeded as {identity}"),
            );
        }
        Err(e) => e,
    };
    if e.code.is_empty() {
        return Finding::fail(
            id,
            format!("cannot call STS: {}", e.message),
            "check --sts-endpoint and --region, and that this machine reaches STS",
        );
    }
    let (check, generic) = explain(e);
    let provider_found = earlier
        .iter()
        .any(|f| f.check == CheckId::IamProvider && f.status == Status::Pass);
    if check == CheckId::IamProvider && provider_found {
        return inactive_region(e, endpoint);
    }
    let failed = earlier
        .iter()
        .find(|f| f.check == check && f.status == Status::Fail);
    let (fix, why) = match failed {
        Some(f) => (
            f.fix.clone().unwrap_or_else(|| generic.to_owned()),
            format!(" (explained by {check}, as found above)"),
        ),
        // An error no check explains: the first link found broken above is the likeliest cause.
        None if check == id => match earlier.iter().find(|f| f.status == Status::Fail) {
            Some(f) => (
                f.fix.clone().unwrap_or_else(|| generic.to_owned()),
                format!(" (likely explained by {}, found above)", f.check),
            ),
            None => (generic.to_owned(), String::new()),
        },
        None => (generic.to_owned(), format!(" (explained by {check})")),
    };
    Finding::fail(
        id,
        format!("STS refused: {}: {}{why}", e.code, e.message),
        fix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: &str, message: &str) -> StsError {
        StsError {
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn codes_map_to_the_check_that_explains_them() {
        let table = [
            (
                "InvalidIdentityToken",
                "No OpenIDConnect provider found in your account for https://x",
                CheckId::IamProvider,
            ),
            (
                "InvalidIdentityToken",
                "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements",
                CheckId::JwksCurrentKid,
            ),
            (
                "InvalidIdentityToken",
                "Incorrect token audience",
                CheckId::IamClientId,
            ),
            (
                "AccessDenied",
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
                CheckId::IamTrustPolicy,
            ),
            (
                "ExpiredTokenException",
                "Token expired: current date/time 1 must be before the expiration date/time 0",
                CheckId::ClockSkew,
            ),
            (
                "IDPCommunicationError",
                "Couldn't get a response from the identity provider",
                CheckId::DiscoveryFetch,
            ),
            (
                "InvalidIdentityToken",
                "something new",
                CheckId::TokenRequest,
            ),
            ("Throttling", "slow down", CheckId::StsAssumeRole),
            (
                "InvalidParameterValue",
                "STS JWT Token has `azp` claim invalid, `azp` must match configured OpenID Client ID",
                CheckId::IamClientId,
            ),
        ];
        for (code, message, check) in table {
            assert_eq!(explain(&err(code, message)).0, check, "{code}: {message}");
        }
    }

    #[test]
    fn a_refusal_borrows_the_fix_of_the_failed_check() {
        let earlier = [Finding::fail(
            CheckId::IamTrustPolicy,
            "ns mismatch",
            "irsa create-role --namespace a",
        )];
        let f = assume_role(
            &Err(err(
                "AccessDenied",
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            )),
            "arn:r",
            None,
            &earlier,
        );
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.what
                .contains("explained by iam.trust-policy, as found above"),
            "{}",
            f.what
        );
        assert_eq!(f.fix.as_deref(), Some("irsa create-role --namespace a"));
        let f = assume_role(&Err(err("AccessDenied", "x")), "arn:r", None, &[]);
        assert!(f.fix.unwrap().contains("irsa create-role"));
        let earlier = [Finding::fail(
            CheckId::IamRole,
            "no role",
            "irsa create-role ...",
        )];
        let f = assume_role(
            &Err(err("InvalidParameterValue", "bad ARN")),
            "arn:r",
            None,
            &earlier,
        );
        assert!(
            f.what.contains("likely explained by iam.role"),
            "{}",
            f.what
        );
        assert_eq!(f.fix.as_deref(), Some("irsa create-role ..."));
        let f = assume_role(
            &Err(err("InvalidParameterValue", "bad ARN")),
            "arn:r",
            None,
            &[],
        );
        assert!(!f.what.contains("explained"), "{}", f.what);
        assert_eq!(
            assume_role(&Ok("arn:sess".into()), "arn:r", None, &[]).status,
            Status::Pass
        );
        assert_eq!(
            assume_role(&Err(err("", "connection refused")), "arn:r", None, &[]).status,
            Status::Fail
        );
    }

    #[test]
    fn no_provider_found_with_the_provider_present_names_the_inactive_region() {
        let e = err(
            "InvalidIdentityToken",
            "No OpenIDConnect provider found in your account for https://oidc.example.com/c1",
        );
        let found = [Finding::pass(CheckId::IamProvider, "exists")];
        let f = assume_role(
            &Err(e.clone()),
            "arn:r",
            Some("https://sts.ap-southeast-4.amazonaws.com"),
            &found,
        );
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.what.contains("not active in region ap-southeast-4")
                && f.what.contains("yet iam.provider found the provider"),
            "{}",
            f.what
        );
        let fix = f.fix.unwrap();
        assert!(
            fix.contains("Security Token Service (STS) > Endpoints > ap-southeast-4 > Active"),
            "{fix}"
        );
        // Without the provider, the provider is the cause.
        let missing = [Finding::fail(
            CheckId::IamProvider,
            "no provider",
            "irsa associate-oidc-provider --issuer-url X",
        )];
        let f = assume_role(&Err(e), "arn:r", None, &missing);
        assert!(f.what.contains("explained by iam.provider"), "{}", f.what);
        assert_eq!(
            f.fix.as_deref(),
            Some("irsa associate-oidc-provider --issuer-url X")
        );
    }

    #[test]
    fn regional_endpoints_are_recognised() {
        for (endpoint, region) in [
            ("https://sts.eu-west-1.amazonaws.com", Some("eu-west-1")),
            ("sts.cn-north-1.amazonaws.com.cn", Some("cn-north-1")),
            ("https://sts.us-east-2.amazonaws.com/", Some("us-east-2")),
            ("https://sts.amazonaws.com", None),
            ("http://127.0.0.1:9000", None),
            ("https://sts.evil.example.com", None),
        ] {
            assert_eq!(regional_endpoint_region(endpoint), region, "{endpoint}");
        }
    }
}
