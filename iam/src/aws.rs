//! AWS clients from the standard credential chain, and AWS errors turned into advice.
//!
//! Credentials and endpoints come from `aws-config`: environment, profile, web identity, container,
//! IMDS; `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_IAM` and `AWS_ENDPOINT_URL_STS` point the clients at
//! an emulator.

use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_iam::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

use irsa_core::arn::{Partition, UnknownPartition};
use irsa_serve::logging::error_chain;

/// IAM is global; a region is still needed to sign, and this one serves the `aws` partition.
const FALLBACK_REGION: &str = "us-east-1";

/// Where to get credentials from, beyond the standard chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// Region for signing and STS (IAM is global).
    pub region: Option<String>,
    /// Named profile of the shared config files.
    pub profile: Option<String>,
    /// A role to assume (for instance in another account) before calling IAM.
    pub assume_role_arn: Option<String>,
}

/// Why an AWS call failed, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// No credentials anywhere in the chain.
    #[error(
        "no AWS credentials found ({detail}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or --profile, or run where a role is available (web identity, ECS, EC2)"
    )]
    NoCredentials {
        /// What the chain said.
        detail: String,
    },
    /// Credentials were configured but could not be loaded (bad profile, failed AssumeRole).
    #[error("cannot load AWS credentials: {detail}")]
    Credentials {
        /// What the provider said.
        detail: String,
    },
    /// The caller lacks an IAM/STS permission.
    #[error("access denied: the caller needs {action}{}; AWS said: {message}", on_resource(.resource))]
    AccessDenied {
        /// The action, e.g. `iam:CreateOpenIDConnectProvider`.
        action: &'static str,
        /// The resource the call was about.
        resource: Option<String>,
        /// AWS's message.
        message: String,
    },
    /// An IAM quota is reached.
    #[error(
        "{action}: an IAM quota is reached (100 OIDC providers per account, 100 client IDs per provider, 10 managed policies per role unless raised): {message}"
    )]
    LimitExceeded {
        /// The action.
        action: &'static str,
        /// AWS's message.
        message: String,
    },
    /// The entity exists already (another run created it first).
    #[error("{action}: already exists: {message}")]
    AlreadyExists {
        /// The action.
        action: &'static str,
        /// AWS's message.
        message: String,
    },
    /// The entity does not exist.
    #[error("{action}: not found: {message}")]
    NotFound {
        /// The action.
        action: &'static str,
        /// AWS's message.
        message: String,
    },
    /// IAM could not talk to the identity provider.
    #[error(
        "{action}: IAM could not reach the identity provider: {message}; fix: make discovery and JWKS reachable from the internet over HTTPS with a valid certificate (or register the right thumbprint)"
    )]
    IdpCommunication {
        /// The action.
        action: &'static str,
        /// AWS's message.
        message: String,
    },
    /// The caller's ARN names a partition irsa does not know.
    #[error(transparent)]
    Partition(#[from] UnknownPartition),
    /// Anything else.
    #[error("{action} failed: {message}")]
    Other {
        /// The action.
        action: &'static str,
        /// The error, with its causes.
        message: String,
    },
}

fn on_resource(resource: &Option<String>) -> String {
    resource
        .as_ref()
        .map(|r| format!(" on {r}"))
        .unwrap_or_default()
}

impl AwsError {
    /// Whether the entity the call was about exists already.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, AwsError::AlreadyExists { .. })
    }

    /// Whether the entity the call was about does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, AwsError::NotFound { .. })
    }

    /// Whether the caller lacks a permission.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, AwsError::AccessDenied { .. })
    }
}

/// Maps an SDK error of the call `action` (e.g. `iam:GetRole`) about `resource` to advice.
pub fn classify<E, R>(action: &'static str, resource: Option<&str>, err: SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let message = err
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| error_chain(&err));
    match err.code() {
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation") => {
            AwsError::AccessDenied {
                action,
                resource: resource.map(str::to_owned),
                message,
            }
        }
        Some("LimitExceeded") => AwsError::LimitExceeded { action, message },
        Some("EntityAlreadyExists") => AwsError::AlreadyExists { action, message },
        Some("NoSuchEntity") => AwsError::NotFound { action, message },
        Some("OpenIdIdpCommunicationError") => AwsError::IdpCommunication { action, message },
        Some("InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken") => {
            AwsError::Credentials {
                detail: format!("{action}: {message}"),
            }
        }
        _ => AwsError::Other {
            action,
            message: error_chain(&err),
        },
    }
}

/// Clients and the identity they act as.
#[derive(Debug, Clone)]
pub struct Aws {
    /// The IAM client.
    pub iam: aws_sdk_iam::Client,
    /// The account of the caller.
    pub account: String,
    /// The partition of the caller.
    pub partition: Partition,
    /// The caller's ARN.
    pub caller_arn: String,
}

impl Aws {
    /// Loads configuration by the standard chain (plus `opts`), proves the credentials work with
    /// `sts:GetCallerIdentity`, and returns the IAM client. Nothing is written.
    pub async fn connect(opts: &AwsOptions) -> Result<Aws, AwsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &opts.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &opts.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let mut config = loader.load().await;
        if config.region().is_none() {
            config = config
                .into_builder()
                .region(Region::from_static(FALLBACK_REGION))
                .build();
        }
        if let Some(role) = &opts.assume_role_arn {
            let provider = AssumeRoleProvider::builder(role.clone())
                .session_name("irsa")
                .configure(&config)
                .build()
                .await;
            config = config
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build();
        }

        // Resolve now: a missing credential otherwise surfaces as a dispatch failure deep in the SDK.
        let provider = config
            .credentials_provider()
            .ok_or_else(|| AwsError::NoCredentials {
                detail: "no credentials provider configured".to_owned(),
            })?;
        if let Err(e) = provider.provide_credentials().await {
            let detail = error_chain(&e);
            return Err(match e {
                CredentialsError::CredentialsNotLoaded(_) => AwsError::NoCredentials { detail },
                _ => AwsError::Credentials { detail },
            });
        }

        let sts = aws_sdk_sts::Client::new(&config);
        let me = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify("sts:GetCallerIdentity", None, e))?;
        let caller_arn = me.arn().unwrap_or_default().to_owned();
        let account = me.account().unwrap_or_default().to_owned();
        let partition = Partition::of_arn(&caller_arn)?;
        Ok(Aws {
            iam: aws_sdk_iam::Client::new(&config),
            account,
            partition,
            caller_arn,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::error::ErrorMetadata;
    use aws_sdk_iam::operation::get_role::GetRoleError;

    fn service_error(code: &str) -> SdkError<GetRoleError, ()> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message(format!("{code} happened"))
            .build();
        SdkError::service_error(GetRoleError::generic(meta), ())
    }

    #[test]
    fn advice_per_error_code() {
        let e = classify(
            "iam:CreateOpenIDConnectProvider",
            Some("arn:aws:iam::1:oidc-provider/x"),
            service_error("AccessDenied"),
        );
        assert!(e.is_access_denied());
        assert_eq!(
            e.to_string(),
            "access denied: the caller needs iam:CreateOpenIDConnectProvider on arn:aws:iam::1:oidc-provider/x; AWS said: AccessDenied happened"
        );
        let e = classify(
            "iam:CreateOpenIDConnectProvider",
            None,
            service_error("LimitExceeded"),
        );
        assert!(
            e.to_string().contains("100 OIDC providers per account"),
            "{e}"
        );
        let e = classify("iam:CreateRole", None, service_error("EntityAlreadyExists"));
        assert!(e.is_already_exists());
        let e = classify("iam:GetRole", None, service_error("NoSuchEntity"));
        assert!(e.is_not_found());
        let e = classify(
            "iam:CreateOpenIDConnectProvider",
            None,
            service_error("OpenIdIdpCommunicationError"),
        );
        assert!(
            e.to_string()
                .contains("could not reach the identity provider"),
            "{e}"
        );
        let e = classify(
            "sts:GetCallerIdentity",
            None,
            service_error("InvalidClientTokenId"),
        );
        assert!(
            e.to_string().starts_with("cannot load AWS credentials"),
            "{e}"
        );
        let e = classify("iam:GetRole", None, service_error("Throttling"));
        assert!(e.to_string().starts_with("iam:GetRole failed: "), "{e}");
        for e in [
            classify("iam:GetRole", None, service_error("AccessDenied")),
            classify("iam:GetRole", None, service_error("Throttling")),
        ] {
            assert!(!e.to_string().contains('\n'));
        }
    }
}
