//! What AWS says: the IAM provider, the provider list and the role (with the caller's credentials, irsa-iam's
//! client), and STS's answer to AssumeRoleWithWebIdentity with the minted token (no credentials: the call
//! is unsigned, exactly as a pod makes it).

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sts::error::ProvideErrorMetadata;
use irsa_core::IssuerUrl;
use irsa_iam::associate::read_provider;
use irsa_iam::aws::{Aws, AwsError, AwsOptions, classify};
use irsa_serve::logging::error_chain;

use crate::checks::iam::role_name;
use crate::checks::sts::StsError;
use crate::diagnose::AwsInputs;

/// Reads the provider of `issuer`, every provider ARN, and the trust policy of `role_arn`.
pub async fn iam(opts: &AwsOptions, issuer: &IssuerUrl, role_arn: Option<&str>) -> AwsInputs {
    let aws = match Aws::connect(opts).await {
        Ok(aws) => aws,
        Err(e @ AwsError::NoCredentials { .. }) => {
            return AwsInputs::Unavailable(format!("needs AWS credentials to read IAM: {e}"));
        }
        Err(e) => {
            return AwsInputs::Unavailable(format!(
                "cannot use the AWS credentials to read IAM: {e}"
            ));
        }
    };
    let provider_arn = issuer.provider_arn(aws.partition, &aws.account);
    let provider = read_provider(&aws.iam, &provider_arn)
        .await
        .map_err(|e| e.to_string());
    let listed = aws
        .iam
        .list_open_id_connect_providers()
        .send()
        .await
        .map(|out| {
            out.open_id_connect_provider_list()
                .iter()
                .filter_map(|p| p.arn().map(str::to_owned))
                .collect()
        })
        .map_err(|e| classify("iam:ListOpenIDConnectProviders", None, e).to_string());
    let role = match role_arn.and_then(role_name) {
        None => None,
        Some(name) => Some(match aws.iam.get_role().role_name(name).send().await {
            Ok(out) => Ok(out
                .role()
                .map(|r| r.assume_role_policy_document().unwrap_or("{}").to_owned())),
            Err(e) => match classify("iam:GetRole", Some(name), e) {
                e if e.is_not_found() => Ok(None),
                e => Err(e.to_string()),
            },
        }),
    };
    AwsInputs::Read {
        provider_arn,
        provider,
        listed,
        role,
    }
}

/// Where STS is: `--sts-endpoint`, else what the SDK reads (`AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`),
/// else the regional endpoint.
pub fn sts_endpoint(given: Option<&str>, region: &str) -> String {
    given
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_STS").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"))
}

/// AssumeRoleWithWebIdentity at `endpoint` with `token`: the assumed role's ARN, or STS's error.
pub async fn assume_role(
    region: &str,
    endpoint: &str,
    role_arn: &str,
    token: &str,
) -> Result<String, StsError> {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .no_credentials()
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&config);
    let call = sts
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name("irsa-doctor")
        .web_identity_token(token)
        .send();
    match tokio::time::timeout(Duration::from_secs(10), call).await {
        Err(_) => Err(StsError {
            code: String::new(),
            message: format!("no answer from {endpoint} within 10 s"),
        }),
        // Emulators (MinIO) leave AssumedRoleUser out: the role asked for is then the best name.
        Ok(Ok(out)) => Ok(out
            .assumed_role_user()
            .map(|u| u.arn().to_owned())
            .filter(|arn| !arn.is_empty())
            .unwrap_or_else(|| role_arn.to_owned())),
        Ok(Err(e)) => Err(StsError {
            code: e.code().unwrap_or_default().to_owned(),
            message: e
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| error_chain(&e)),
        }),
    }
}

/// STS's clock: the Date header of any answer from `endpoint` (seconds since the epoch).
pub async fn sts_date(endpoint: &str) -> Option<i64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()?;
    let response = client.get(endpoint).send().await.ok()?;
    let date = response.headers().get(http::header::DATE)?.to_str().ok()?;
    let time = httpdate::parse_http_date(date).ok()?;
    i64::try_from(time.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs()).ok()
}
