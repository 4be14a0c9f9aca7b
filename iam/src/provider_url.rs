//! The issuer URL as IAM and STS see it.
//!
//! IAM stores the provider URL without its scheme and STS compares it byte for byte with the tokens'
//! `iss`, so the URL is validated with a real parser but kept verbatim: nothing is lower-cased,
//! re-encoded or stripped, a trailing slash included.

use std::fmt;
use std::str::FromStr;

/// IAM refuses provider URLs longer than this.
const MAX_URL_LEN: usize = 255;

/// Why an issuer URL cannot be an IAM OIDC provider URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderUrlError {
    /// The URL does not start with `https://`.
    #[error(
        "issuer URL {0:?} must start with https:// (STS fetches discovery and keys over HTTPS only, and IAM refuses other schemes)"
    )]
    NotHttps(String),
    /// The URL does not parse.
    #[error("issuer URL {url:?} is not a valid URL: {reason}")]
    Invalid {
        /// The URL as given.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// The URL has a query string.
    #[error(
        "issuer URL {0:?} has a query string; IAM allows a host and a path only: drop everything from '?'"
    )]
    Query(String),
    /// The URL has a fragment.
    #[error(
        "issuer URL {0:?} has a fragment; IAM allows a host and a path only: drop everything from '#'"
    )]
    Fragment(String),
    /// The URL carries a user name or password.
    #[error("issuer URL {0:?} carries credentials (user@); IAM allows a host and a path only")]
    Credentials(String),
    /// The URL contains white space.
    #[error("issuer URL {0:?} contains white space")]
    WhiteSpace(String),
    /// The URL is longer than IAM accepts.
    #[error("issuer URL is {0} characters long; IAM accepts at most 255")]
    TooLong(usize),
}

/// An AWS partition, the second field of every ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Partition {
    /// The commercial regions.
    Aws,
    /// The China regions.
    AwsCn,
    /// The GovCloud (US) regions.
    AwsUsGov,
}

/// A partition name that irsa does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown AWS partition {0:?} (known: aws, aws-cn, aws-us-gov)")]
pub struct UnknownPartition(pub String);

impl Partition {
    /// The partition's name as it appears in ARNs.
    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }

    /// The partition a region belongs to (`cn-north-1` → `aws-cn`, `us-gov-west-1` → `aws-us-gov`).
    pub fn of_region(region: &str) -> Partition {
        if region.starts_with("cn-") {
            Partition::AwsCn
        } else if region.starts_with("us-gov-") {
            Partition::AwsUsGov
        } else {
            Partition::Aws
        }
    }

    /// The partition named in an ARN (`arn:<partition>:...`).
    pub fn of_arn(arn: &str) -> Result<Partition, UnknownPartition> {
        let mut fields = arn.split(':');
        match (fields.next(), fields.next()) {
            (Some("arn"), Some(p)) => p.parse(),
            _ => Err(UnknownPartition(arn.to_owned())),
        }
    }
}

impl FromStr for Partition {
    type Err = UnknownPartition;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aws" => Ok(Partition::Aws),
            "aws-cn" => Ok(Partition::AwsCn),
            "aws-us-gov" => Ok(Partition::AwsUsGov),
            other => Err(UnknownPartition(other.to_owned())),
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated issuer URL, kept verbatim, with the forms IAM derives from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderUrl {
    url: String,
    host: String,
    port: u16,
    warnings: Vec<String>,
}

impl ProviderUrl {
    /// Validates an issuer URL: `https://` only, no query, no fragment, no credentials. A port or a
    /// non-canonical spelling is a warning, not an error (emulators need ports; AWS refuses them).
    pub fn parse(raw: &str) -> Result<ProviderUrl, ProviderUrlError> {
        if raw.chars().any(char::is_whitespace) {
            return Err(ProviderUrlError::WhiteSpace(raw.to_owned()));
        }
        if !raw.starts_with("https://") {
            return Err(ProviderUrlError::NotHttps(raw.to_owned()));
        }
        if raw.contains('?') {
            return Err(ProviderUrlError::Query(raw.to_owned()));
        }
        if raw.contains('#') {
            return Err(ProviderUrlError::Fragment(raw.to_owned()));
        }
        if raw.len() > MAX_URL_LEN {
            return Err(ProviderUrlError::TooLong(raw.len()));
        }
        let parsed = url::Url::parse(raw).map_err(|e| ProviderUrlError::Invalid {
            url: raw.to_owned(),
            reason: e.to_string(),
        })?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ProviderUrlError::Credentials(raw.to_owned()));
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => {
                return Err(ProviderUrlError::Invalid {
                    url: raw.to_owned(),
                    reason: "no host".to_owned(),
                });
            }
        };
        let port = parsed.port_or_known_default().unwrap_or(443);

        let mut warnings = Vec::new();
        if explicit_port(raw) {
            warnings.push(format!(
                "issuer URL {raw:?} has a port: AWS IAM refuses provider URLs with a port (fine for emulators)"
            ));
        }
        // `Url` adds a '/' to an empty path; any other difference is a spelling IAM would keep verbatim.
        let canonical = parsed.as_str();
        if canonical != raw && canonical != format!("{raw}/") {
            warnings.push(format!(
                "issuer URL {raw:?} is not in canonical form ({canonical:?}); IAM and STS compare it byte for byte with the tokens' iss"
            ));
        }
        if raw.ends_with('/') {
            warnings.push(format!(
                "issuer URL {raw:?} ends with '/': the apiserver's --service-account-issuer and the discovery document must end with '/' too"
            ));
        }
        Ok(ProviderUrl {
            url: raw.to_owned(),
            host,
            port,
            warnings,
        })
    }

    /// The URL exactly as given (the tokens' `iss`).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The URL without `https://`: the form in provider ARNs and trust-policy condition keys.
    pub fn host_path(&self) -> &str {
        &self.url["https://".len()..]
    }

    /// The host name (or IP address) alone.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port (443 unless the URL names one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What is legal but suspicious about the URL.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Where OpenID discovery lives: the issuer without a trailing '/', plus
    /// `/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        let base = self.url.strip_suffix('/').unwrap_or(&self.url);
        format!("{base}/.well-known/openid-configuration")
    }

    /// The ARN IAM gives the provider for this URL:
    /// `arn:<partition>:iam::<account>:oidc-provider/<host><path>`.
    pub fn provider_arn(&self, partition: Partition, account: &str) -> String {
        format!(
            "arn:{partition}:iam::{account}:oidc-provider/{}",
            self.host_path()
        )
    }
}

impl fmt::Display for ProviderUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Whether the authority of an `https://` URL spells out a port (`:443` included).
fn explicit_port(raw: &str) -> bool {
    let rest = &raw["https://".len()..];
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        // `[::1]` has colons but no port; `[::1]:8443` and `host:8443` have one.
        Some((_, port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_only() {
        let u = ProviderUrl::parse("https://oidc.example.com").unwrap();
        assert_eq!(u.host_path(), "oidc.example.com");
        assert_eq!(u.host(), "oidc.example.com");
        assert_eq!(u.port(), 443);
        assert!(u.warnings().is_empty());
        assert_eq!(
            u.discovery_url(),
            "https://oidc.example.com/.well-known/openid-configuration"
        );
        assert_eq!(
            u.provider_arn(Partition::Aws, "111122223333"),
            "arn:aws:iam::111122223333:oidc-provider/oidc.example.com"
        );
    }

    #[test]
    fn path_is_kept() {
        let u = ProviderUrl::parse("https://s3.amazonaws.com/bucket/cluster-1").unwrap();
        assert_eq!(u.host_path(), "s3.amazonaws.com/bucket/cluster-1");
        assert_eq!(
            u.discovery_url(),
            "https://s3.amazonaws.com/bucket/cluster-1/.well-known/openid-configuration"
        );
        assert_eq!(
            u.provider_arn(Partition::AwsUsGov, "111122223333"),
            "arn:aws-us-gov:iam::111122223333:oidc-provider/s3.amazonaws.com/bucket/cluster-1"
        );
        assert!(u.warnings().is_empty());
    }

    #[test]
    fn trailing_slash_is_kept_and_warned_about() {
        let u = ProviderUrl::parse("https://issuer.example.com/tenant/").unwrap();
        assert_eq!(u.as_str(), "https://issuer.example.com/tenant/");
        assert_eq!(u.host_path(), "issuer.example.com/tenant/");
        // Discovery never gets a double slash.
        assert_eq!(
            u.discovery_url(),
            "https://issuer.example.com/tenant/.well-known/openid-configuration"
        );
        assert_eq!(
            u.provider_arn(Partition::AwsCn, "111122223333"),
            "arn:aws-cn:iam::111122223333:oidc-provider/issuer.example.com/tenant/"
        );
        assert_eq!(u.warnings().len(), 1);
        assert!(u.warnings()[0].contains("ends with '/'"));
    }

    #[test]
    fn port_is_a_warning() {
        let u = ProviderUrl::parse("https://127.0.0.1:8443/issuer").unwrap();
        assert_eq!(u.host(), "127.0.0.1");
        assert_eq!(u.port(), 8443);
        assert_eq!(u.host_path(), "127.0.0.1:8443/issuer");
        assert_eq!(u.warnings().len(), 1, "{:?}", u.warnings());
        assert!(u.warnings()[0].contains("has a port"));
        // The default port spelled out is still a port to IAM.
        let u = ProviderUrl::parse("https://example.com:443").unwrap();
        assert!(u.warnings()[0].contains("has a port"));
        let u = ProviderUrl::parse("https://[::1]/x").unwrap();
        assert!(u.warnings().is_empty());
        assert_eq!(u.host(), "::1");
    }

    #[test]
    fn non_canonical_spelling_is_a_warning() {
        let u = ProviderUrl::parse("https://Example.com/x").unwrap();
        assert_eq!(u.host_path(), "Example.com/x");
        assert!(u.warnings()[0].contains("canonical"));
    }

    #[test]
    fn refusals() {
        use ProviderUrlError::*;
        type Check = fn(&ProviderUrlError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("http://example.com", |e| matches!(e, NotHttps(_))),
            ("HTTPS://example.com", |e| matches!(e, NotHttps(_))),
            ("example.com", |e| matches!(e, NotHttps(_))),
            ("https://example.com/?a=b", |e| matches!(e, Query(_))),
            ("https://example.com/#frag", |e| matches!(e, Fragment(_))),
            ("https://u:p@example.com", |e| matches!(e, Credentials(_))),
            ("https://exa mple.com", |e| matches!(e, WhiteSpace(_))),
            ("https://", |e| matches!(e, Invalid { .. })),
        ];
        for (raw, check) in cases {
            let err = ProviderUrl::parse(raw).unwrap_err();
            assert!(check(&err), "{raw}: {err}");
            assert!(!err.to_string().contains('\n'));
        }
        let long = format!("https://example.com/{}", "a".repeat(250));
        assert_eq!(
            ProviderUrl::parse(&long).unwrap_err(),
            ProviderUrlError::TooLong(long.len())
        );
        let e = ProviderUrl::parse("http://example.com").unwrap_err();
        assert!(e.to_string().contains("must start with https://"), "{e}");
    }

    #[test]
    fn partitions() {
        assert_eq!(Partition::of_region("us-east-1"), Partition::Aws);
        assert_eq!(Partition::of_region("cn-northwest-1"), Partition::AwsCn);
        assert_eq!(Partition::of_region("us-gov-west-1"), Partition::AwsUsGov);
        assert_eq!(
            Partition::of_arn("arn:aws-cn:sts::111122223333:assumed-role/x/y"),
            Ok(Partition::AwsCn)
        );
        assert_eq!(
            Partition::of_arn("arn:aws:iam::123456789012:user/moto"),
            Ok(Partition::Aws)
        );
        assert!(Partition::of_arn("arn:aws-iso:iam::1:user/x").is_err());
        assert!(Partition::of_arn("nonsense").is_err());
        for p in [Partition::Aws, Partition::AwsCn, Partition::AwsUsGov] {
            assert_eq!(p.as_str().parse::<Partition>(), Ok(p));
        }
    }
}
