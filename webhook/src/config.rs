//! What the mutation injects, and the command-line flags that set it.
//!
//! [`InjectionConfig`] is the validated form the pure mutation reads; [`InjectionArgs`] is the clap group
//! shared by `irsa webhook serve` and `irsa webhook mutate`, so both spell every flag the same way.

use regex::Regex;

use crate::legacy::{LegacyArgs, LegacyConfig};
use crate::session_name::{SessionNameTemplate, TemplateError};

pub use irsa_core::arn::DEFAULT_ROLE_ARN_PATTERN;
pub use irsa_core::names::{
    DEFAULT_ANNOTATION_PREFIX, DEFAULT_TOKEN_MOUNT_PATH, MAX_TOKEN_EXPIRATION, MIN_TOKEN_EXPIRATION,
};

/// Default lifetime of the projected token, in seconds: the longest accepted, as in the reference webhook.
pub const DEFAULT_TOKEN_EXPIRATION: i64 = MAX_TOKEN_EXPIRATION;

/// The validated injection settings read by [`crate::mutate::mutate`].
#[derive(Debug, Clone)]
pub struct InjectionConfig {
    /// Annotation and label prefix (`P` in the specification), `eks.amazonaws.com` by default.
    pub annotation_prefix: String,
    /// Token audience when the service account does not name one.
    pub token_audience: String,
    /// Token lifetime in seconds when neither the pod nor the service account sets one.
    pub token_expiration: i64,
    /// Directory where the token volume is mounted; the token file is `<this>/token`.
    pub token_mount_path: String,
    /// When set, `AWS_REGION` and `AWS_DEFAULT_REGION` are injected with this value.
    pub aws_default_region: Option<String>,
    /// Inject `AWS_STS_REGIONAL_ENDPOINTS=regional` unless the service account says otherwise.
    pub sts_regional_endpoint: bool,
    /// Role ARNs accepted from the service account annotation; always anchored at both ends.
    pub role_arn_pattern: Regex,
    /// When set, `AWS_ENDPOINT_URL_STS` is injected with this value unless the service account names another.
    pub sts_endpoint_url: Option<String>,
    /// Shortest token lifetime injected, in seconds: shorter requests are clamped up to it.
    pub min_token_expiration: i64,
    /// When set, `AWS_ROLE_SESSION_NAME` is injected from this template unless the service account names
    /// another.
    pub role_session_name: Option<SessionNameTemplate>,
    /// With `--legacy-role-annotations`: how kiam's and kube2iam's pod annotations are read.
    pub legacy: Option<LegacyConfig>,
}

impl Default for InjectionConfig {
    /// The configuration of the flags' defaults: one home for each default, the flag definitions.
    fn default() -> Self {
        InjectionArgs::default()
            .into_config()
            .expect("the default flags are valid")
    }
}

/// A flag value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--role-arn-pattern` is not a valid regular expression.
    #[error("--role-arn-pattern {pattern:?} is not a valid regular expression: {reason}")]
    InvalidRoleArnPattern {
        /// The pattern as given.
        pattern: String,
        /// Why the regex crate refused it, in one line.
        reason: String,
    },
    /// `--token-expiration` is outside what kube-apiserver accepts.
    #[error(
        "--token-expiration {0} is out of range: it must be between {MIN_TOKEN_EXPIRATION} and {MAX_TOKEN_EXPIRATION} seconds"
    )]
    TokenExpirationOutOfRange(i64),
    /// `--annotation-prefix` is not a DNS subdomain.
    #[error(transparent)]
    InvalidAnnotationPrefix(#[from] irsa_core::names::InvalidAnnotationPrefix),
    /// `--token-audience` is empty.
    #[error("--token-audience must not be empty")]
    EmptyTokenAudience,
    /// `--token-mount-path` is not an absolute path.
    #[error("--token-mount-path {0:?} must be an absolute path")]
    InvalidTokenMountPath(String),
    /// `--aws-default-region` is empty.
    #[error("--aws-default-region must not be empty when given")]
    EmptyRegion,
    /// `--sts-endpoint-url` is not an absolute http(s) URL with a host.
    #[error("--sts-endpoint-url {0:?} must be an absolute https:// (or http://) URL with a host")]
    InvalidStsEndpointUrl(String),
    /// `--min-token-expiration` is below the kubelet's minimum or above the longest lifetime.
    #[error(
        "--min-token-expiration {0} is out of range: it must be between {MIN_TOKEN_EXPIRATION} and {MAX_TOKEN_EXPIRATION} seconds"
    )]
    MinTokenExpirationOutOfRange(i64),
    /// `--role-session-name` is not a valid template.
    #[error("--role-session-name {template:?} {reason}")]
    InvalidRoleSessionName {
        /// The template as given.
        template: String,
        /// What is wrong with it.
        reason: TemplateError,
    },
    /// `--base-role-arn` is not the start of a role ARN.
    #[error(
        "--base-role-arn {0:?} is not the start of a role ARN (e.g. arn:aws:iam::123456789012:role/)"
    )]
    InvalidBaseRoleArn(String),
    /// `--default-role` is a name and no base ARN is known.
    #[error("--default-role {0:?} is a role name: give --base-role-arn, or its full ARN")]
    UnresolvedDefaultRole(String),
    /// `--default-role` does not resolve to a valid role ARN.
    #[error("--default-role {0}")]
    InvalidDefaultRole(String),
    /// `--token-expiration` is below `--min-token-expiration`.
    #[error("--token-expiration {expiration} is below --min-token-expiration {floor}")]
    TokenExpirationBelowFloor {
        /// `--token-expiration`.
        expiration: i64,
        /// `--min-token-expiration`.
        floor: i64,
    },
}

/// Whether `raw` is a usable STS endpoint: an absolute `https://` URL (or `http://`, for in-cluster
/// STS-compatible services such as MinIO) with a host and no white space. The SDKs take the value as is, so
/// anything else would only fail later, inside the pod, at its first AWS call.
pub fn is_sts_endpoint_url(raw: &str) -> bool {
    let Some(rest) = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
    else {
        return false;
    };
    if raw.chars().any(char::is_whitespace) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    // A bracketed IPv6 address has colons of its own; otherwise `:port` follows the host.
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next(),
        None => host_port.split(':').next(),
    };
    host.is_some_and(|host| !host.is_empty())
}

/// Compiles a role ARN pattern so that it must match the whole ARN, whatever anchors the user wrote.
pub fn compile_role_arn_pattern(pattern: &str) -> Result<Regex, ConfigError> {
    full_match_regex(pattern).map_err(|reason| ConfigError::InvalidRoleArnPattern {
        pattern: pattern.to_owned(),
        reason,
    })
}

/// Compiles `pattern` to match whole strings only; the error is one line about the pattern as written.
pub(crate) fn full_match_regex(pattern: &str) -> Result<Regex, String> {
    // Compiling the pattern alone first makes the error describe what the user wrote, not our wrapper.
    // Wrapping in a group makes `a|b` mean `^(?:a|b)$`, not `^a|b$`; redundant anchors are harmless.
    Regex::new(pattern)
        .and_then(|_| Regex::new(&format!("^(?:{pattern})$")))
        .map_err(|err| regex_error_summary(&err))
}

/// The last line of a regex error: the syntax error display spans several lines (pattern, caret, reason),
/// which neither an admission warning nor a one-line CLI error can carry.
fn regex_error_summary(err: &regex::Error) -> String {
    let text = err.to_string();
    let last = text
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("invalid regex");
    last.trim().trim_start_matches("error: ").to_owned()
}

/// The injection flags, shared by `irsa webhook serve` and `irsa webhook mutate`.
#[derive(Debug, Clone, clap::Args)]
pub struct InjectionArgs {
    /// Prefix of the annotations and of the skip label read on pods and service accounts
    /// (`<prefix>/role-arn`, `<prefix>/skip-pod-identity-webhook`, ...).
    #[arg(long, env = "IRSA_ANNOTATION_PREFIX", default_value = DEFAULT_ANNOTATION_PREFIX, value_name = "PREFIX")]
    pub annotation_prefix: String,

    /// Audience of the projected service account token, unless the service account's `<prefix>/audience`
    /// annotation names another.
    #[arg(long, env = "IRSA_TOKEN_AUDIENCE", default_value = irsa_core::names::DEFAULT_AUDIENCE, value_name = "AUDIENCE")]
    pub token_audience: String,

    /// Token lifetime in seconds (600 to 86400), unless the pod or the service account sets
    /// `<prefix>/token-expiration`.
    #[arg(long, env = "IRSA_TOKEN_EXPIRATION", default_value_t = DEFAULT_TOKEN_EXPIRATION, value_name = "SECONDS")]
    pub token_expiration: i64,

    /// Directory where the token volume is mounted in each container; `AWS_WEB_IDENTITY_TOKEN_FILE` points
    /// at `<dir>/token`.
    #[arg(long, env = "IRSA_TOKEN_MOUNT_PATH", default_value = DEFAULT_TOKEN_MOUNT_PATH, value_name = "DIR")]
    pub token_mount_path: String,

    /// Region injected as `AWS_REGION` and `AWS_DEFAULT_REGION` into containers that set neither.
    #[arg(long, env = "IRSA_AWS_DEFAULT_REGION", value_name = "REGION")]
    pub aws_default_region: Option<String>,

    /// Inject `AWS_STS_REGIONAL_ENDPOINTS=regional` (true or false), unless the service account's
    /// `<prefix>/sts-regional-endpoints` annotation says otherwise.
    #[arg(
        long,
        env = "IRSA_STS_REGIONAL_ENDPOINT",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub sts_regional_endpoint: bool,

    /// Regular expression a role ARN must match in full to be injected; the default accepts AWS IAM role
    /// ARNs. Widen it for STS-compatible services such as MinIO (`arn:minio:iam:<region>::role/<id>`).
    /// Whatever it says, ARNs over IAM's caps (2048 characters, a role path over 512) are not injected.
    #[arg(long, env = "IRSA_ROLE_ARN_PATTERN", default_value = DEFAULT_ROLE_ARN_PATTERN, value_name = "REGEX")]
    pub role_arn_pattern: String,

    /// STS endpoint injected as `AWS_ENDPOINT_URL_STS` (an absolute https:// or http:// URL) into containers
    /// that do not set it, unless the service account's `irsa-rs.github.io/sts-endpoint-url` names another:
    /// for VPC or FIPS endpoints, other partitions and STS-compatible services (aws-sdk-go-v2 ignores
    /// `AWS_ENDPOINT_URL` for its web-identity call).
    #[arg(long, env = "IRSA_STS_ENDPOINT_URL", value_name = "URL")]
    pub sts_endpoint_url: Option<String>,

    /// Shortest token lifetime in seconds (600, the kubelet's minimum, to 86400): shorter
    /// `<prefix>/token-expiration` values are raised to it, with a warning.
    #[arg(long, env = "IRSA_MIN_TOKEN_EXPIRATION", default_value_t = MIN_TOKEN_EXPIRATION, value_name = "SECONDS")]
    pub min_token_expiration: i64,

    /// Inject `AWS_ROLE_SESSION_NAME`, which CloudTrail shows, from this template (off by default) into
    /// containers that do not set it, unless the service account's `irsa-rs.github.io/role-session-name`
    /// gives another. Placeholders `{namespace}`, `{service_account}` and `{pod}` among letters, digits and
    /// `_+=,.@-`; e.g. `{namespace}.{service_account}`. The result is always valid for STS: other characters
    /// become `-`, and a name over 64 characters is cut to 55 plus `-` and 8 hex digits of its hash. A pod
    /// whose name the apiserver generates (a Deployment's) gets its exact name only from `{pod}` alone,
    /// through the downward API; next to other parts `{pod}` is its `generateName` without the trailing `-`.
    #[arg(long, env = "IRSA_ROLE_SESSION_NAME", value_name = "TEMPLATE")]
    pub role_session_name: Option<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub legacy: LegacyArgs,
}

impl Default for InjectionArgs {
    fn default() -> Self {
        Self {
            annotation_prefix: DEFAULT_ANNOTATION_PREFIX.to_owned(),
            token_audience: irsa_core::names::DEFAULT_AUDIENCE.to_owned(),
            token_expiration: DEFAULT_TOKEN_EXPIRATION,
            token_mount_path: DEFAULT_TOKEN_MOUNT_PATH.to_owned(),
            aws_default_region: None,
            sts_regional_endpoint: false,
            role_arn_pattern: DEFAULT_ROLE_ARN_PATTERN.to_owned(),
            sts_endpoint_url: None,
            min_token_expiration: MIN_TOKEN_EXPIRATION,
            role_session_name: None,
            legacy: LegacyArgs::default(),
        }
    }
}

impl InjectionArgs {
    /// Validates the flags into the configuration the mutation reads.
    pub fn into_config(self) -> Result<InjectionConfig, ConfigError> {
        let prefix = irsa_core::names::annotation_prefix(&self.annotation_prefix)?;
        let audience = self.token_audience.trim();
        if audience.is_empty() {
            return Err(ConfigError::EmptyTokenAudience);
        }
        if !(MIN_TOKEN_EXPIRATION..=MAX_TOKEN_EXPIRATION).contains(&self.token_expiration) {
            return Err(ConfigError::TokenExpirationOutOfRange(
                self.token_expiration,
            ));
        }
        if !(MIN_TOKEN_EXPIRATION..=MAX_TOKEN_EXPIRATION).contains(&self.min_token_expiration) {
            return Err(ConfigError::MinTokenExpirationOutOfRange(
                self.min_token_expiration,
            ));
        }
        if self.token_expiration < self.min_token_expiration {
            return Err(ConfigError::TokenExpirationBelowFloor {
                expiration: self.token_expiration,
                floor: self.min_token_expiration,
            });
        }
        // A trailing slash would produce `dir//token`; the root alone would produce a mount on `/`.
        let mount_path = self.token_mount_path.trim().trim_end_matches('/');
        if !mount_path.starts_with('/') {
            return Err(ConfigError::InvalidTokenMountPath(self.token_mount_path));
        }
        let aws_default_region = match self.aws_default_region.as_deref().map(str::trim) {
            None => None,
            Some("") => return Err(ConfigError::EmptyRegion),
            Some(region) => Some(region.to_owned()),
        };
        let sts_endpoint_url = match self.sts_endpoint_url.as_deref().map(str::trim) {
            None => None,
            Some(url) if is_sts_endpoint_url(url) => Some(url.to_owned()),
            Some(_) => {
                return Err(ConfigError::InvalidStsEndpointUrl(
                    self.sts_endpoint_url.unwrap_or_default(),
                ));
            }
        };
        let role_session_name = self
            .role_session_name
            .map(|template| {
                SessionNameTemplate::parse(&template)
                    .map_err(|reason| ConfigError::InvalidRoleSessionName { template, reason })
            })
            .transpose()?;
        let role_arn_pattern = compile_role_arn_pattern(&self.role_arn_pattern)?;
        let legacy = self.legacy.into_config(&role_arn_pattern)?;
        Ok(InjectionConfig {
            annotation_prefix: prefix.to_owned(),
            token_audience: audience.to_owned(),
            token_expiration: self.token_expiration,
            token_mount_path: mount_path.to_owned(),
            aws_default_region,
            sts_regional_endpoint: self.sts_regional_endpoint,
            role_arn_pattern,
            sts_endpoint_url,
            min_token_expiration: self.min_token_expiration,
            role_session_name,
            legacy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        injection: InjectionArgs,
    }

    fn parse(args: &[&str]) -> Result<InjectionConfig, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("irsa").chain(args.iter().copied()))
            .expect("arguments parse");
        cli.injection.into_config()
    }

    #[test]
    fn defaults_match_the_reference() {
        let cfg = parse(&[]).unwrap();
        assert_eq!(cfg.annotation_prefix, "eks.amazonaws.com");
        assert_eq!(cfg.token_audience, "sts.amazonaws.com");
        assert_eq!(cfg.token_expiration, 86400);
        assert_eq!(
            cfg.token_mount_path,
            "/var/run/secrets/eks.amazonaws.com/serviceaccount"
        );
        assert_eq!(cfg.aws_default_region, None);
        assert!(!cfg.sts_regional_endpoint);
        let default = InjectionConfig::default();
        assert_eq!(
            default.role_arn_pattern.as_str(),
            cfg.role_arn_pattern.as_str()
        );
    }

    #[test]
    fn default_pattern_accepts_role_arns_in_every_partition() {
        let re = InjectionConfig::default().role_arn_pattern;
        for ok in [
            "arn:aws:iam::123456789012:role/app",
            "arn:aws-cn:iam::123456789012:role/app",
            "arn:aws-us-gov:iam::123456789012:role/app",
            "arn:aws-iso-b:iam::123456789012:role/app",
            "arn:aws:iam::123456789012:role/team/sub/app+x=y,z.w@v-u_t",
        ] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in [
            "",
            "app",
            "arn:aws:iam::12345678901:role/app",
            "arn:aws:iam::123456789012:user/app",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:s3:::bucket",
            "xarn:aws:iam::123456789012:role/app",
            "arn:aws:iam::123456789012:role/app with space",
            "arn:minio:iam:us-east-1::role/abc",
        ] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn custom_pattern_is_anchored_even_with_alternation() {
        let cfg = parse(&["--role-arn-pattern", "arn:minio:iam:[a-z0-9-]*::role/.+|x"]).unwrap();
        assert!(
            cfg.role_arn_pattern
                .is_match("arn:minio:iam:us-east-1::role/abc")
        );
        assert!(cfg.role_arn_pattern.is_match("x"));
        assert!(!cfg.role_arn_pattern.is_match("prefix-x"));
        assert!(!cfg.role_arn_pattern.is_match("x-suffix"));
    }

    #[test]
    fn bad_regex_is_a_clear_error() {
        let err = parse(&["--role-arn-pattern", "arn:(unclosed"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("--role-arn-pattern"), "{msg}");
        assert_eq!(
            msg,
            "--role-arn-pattern \"arn:(unclosed\" is not a valid regular expression: unclosed group"
        );
    }

    #[test]
    fn flags_are_validated() {
        assert!(matches!(
            parse(&["--token-expiration", "599"]),
            Err(ConfigError::TokenExpirationOutOfRange(599))
        ));
        assert!(matches!(
            parse(&["--token-expiration", "86401"]),
            Err(ConfigError::TokenExpirationOutOfRange(86401))
        ));
        assert!(matches!(
            parse(&["--annotation-prefix", "a/b"]),
            Err(ConfigError::InvalidAnnotationPrefix(_))
        ));
        // Kubernetes refuses annotation keys whose prefix is not a DNS subdomain: no pod could ever match.
        assert!(matches!(
            parse(&["--annotation-prefix", "Example.com"]),
            Err(ConfigError::InvalidAnnotationPrefix(_))
        ));
        assert!(matches!(
            parse(&["--token-audience", " "]),
            Err(ConfigError::EmptyTokenAudience)
        ));
        assert!(matches!(
            parse(&["--token-mount-path", "relative"]),
            Err(ConfigError::InvalidTokenMountPath(_))
        ));
        assert!(matches!(
            parse(&["--aws-default-region", ""]),
            Err(ConfigError::EmptyRegion)
        ));
    }

    #[test]
    fn flags_are_read() {
        let cfg = parse(&[
            "--annotation-prefix",
            "irsa.example.com",
            "--token-audience",
            "minio",
            "--token-expiration",
            "3600",
            "--token-mount-path",
            "/run/token/",
            "--aws-default-region",
            "eu-west-1",
            "--sts-regional-endpoint",
            "true",
        ])
        .unwrap();
        assert_eq!(cfg.annotation_prefix, "irsa.example.com");
        assert_eq!(cfg.token_audience, "minio");
        assert_eq!(cfg.token_expiration, 3600);
        assert_eq!(cfg.token_mount_path, "/run/token");
        assert_eq!(cfg.aws_default_region.as_deref(), Some("eu-west-1"));
        assert!(cfg.sts_regional_endpoint);
    }

    #[test]
    fn sts_endpoint_url_is_validated_at_start() {
        assert_eq!(parse(&[]).unwrap().sts_endpoint_url, None);
        for good in [
            "https://sts.eu-west-1.amazonaws.com",
            "https://vpce-0a1b-abcd.sts.eu-west-1.vpce.amazonaws.com/",
            "http://minio.minio.svc:9000",
            "https://[fd00::1]:8443",
            " https://sts-fips.us-east-1.amazonaws.com ",
        ] {
            let cfg = parse(&["--sts-endpoint-url", good]).unwrap();
            assert_eq!(
                cfg.sts_endpoint_url.as_deref(),
                Some(good.trim()),
                "{good:?}"
            );
        }
        for bad in [
            "",
            "sts.amazonaws.com",
            "ftp://sts.amazonaws.com",
            "https://",
            "https:///path",
            "https://:443",
            "https://sts .amazonaws.com",
            "HTTPS//sts.amazonaws.com",
        ] {
            assert!(
                matches!(
                    parse(&["--sts-endpoint-url", bad]),
                    Err(ConfigError::InvalidStsEndpointUrl(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn min_token_expiration_has_the_kubelet_floor() {
        assert_eq!(parse(&[]).unwrap().min_token_expiration, 600);
        let cfg = parse(&["--min-token-expiration", "3600"]).unwrap();
        assert_eq!(cfg.min_token_expiration, 3600);
        assert!(matches!(
            parse(&["--min-token-expiration", "599"]),
            Err(ConfigError::MinTokenExpirationOutOfRange(599))
        ));
        assert!(matches!(
            parse(&["--min-token-expiration", "86401"]),
            Err(ConfigError::MinTokenExpirationOutOfRange(86401))
        ));
        assert!(matches!(
            parse(&[
                "--min-token-expiration",
                "7200",
                "--token-expiration",
                "3600"
            ]),
            Err(ConfigError::TokenExpirationBelowFloor {
                expiration: 3600,
                floor: 7200
            })
        ));
    }

    #[test]
    fn role_session_name_is_off_by_default_and_validated_at_start() {
        assert_eq!(parse(&[]).unwrap().role_session_name, None);
        let cfg = parse(&["--role-session-name", "{namespace}.{service_account}"]).unwrap();
        assert_eq!(
            cfg.role_session_name.map(|t| t.to_string()).as_deref(),
            Some("{namespace}.{service_account}")
        );
        for (bad, message) in [
            (
                "{namespace}/{pod}",
                "--role-session-name \"{namespace}/{pod}\" has '/', which STS refuses in a session name \
                 (allowed: letters, digits and _+=,.@-)",
            ),
            (
                "{name}",
                "--role-session-name \"{name}\" has an unknown placeholder {name} (known: {namespace}, \
                 {service_account}, {pod})",
            ),
            ("", "--role-session-name \"\" is empty"),
        ] {
            let err = parse(&["--role-session-name", bad]).unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidRoleSessionName { .. }),
                "{err:?}"
            );
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn sts_regional_endpoint_requires_a_value() {
        assert!(Cli::try_parse_from(["irsa", "--sts-regional-endpoint"]).is_err());
        assert!(Cli::try_parse_from(["irsa", "--sts-regional-endpoint", "maybe"]).is_err());
        let cli = Cli::try_parse_from(["irsa", "--sts-regional-endpoint", "false"]).unwrap();
        assert!(!cli.injection.sts_regional_endpoint);
    }
}
