//! AWS partitions and the ARNs irsa builds or accepts: role ARNs (what a ServiceAccount may name) and OIDC
//! provider ARNs (what a role's trust policy names).

use std::fmt;
use std::str::FromStr;

/// Default role ARN pattern of the webhook: an AWS IAM role ARN in any partition,
/// `arn:<partition>:iam::<12 digits>:role/<optional path/><name>`.
pub const DEFAULT_ROLE_ARN_PATTERN: &str =
    r"^arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/(?:[\x21-\x7E]+/)?[A-Za-z0-9_+=,.@-]{1,64}$";

/// The longest ARN IAM accepts, in characters (the `Arn` type of the IAM API, and the `roleArn` of
/// `AssumeRoleWithWebIdentity`): a longer role ARN names no role, and STS refuses the call.
pub const MAX_ROLE_ARN_LEN: usize = 2048;

/// The longest role path IAM accepts, in characters, slashes included (`/team/sub/` in
/// `role/team/sub/app`; the `path` of `CreateRole`).
pub const MAX_ROLE_PATH_LEN: usize = 512;

/// A role ARN beyond IAM's length caps. The webhook judges these before its `--role-arn-pattern`, so that no
/// regex runs over an arbitrarily long annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoleArnTooLong {
    /// The whole ARN is over [`MAX_ROLE_ARN_LEN`].
    #[error("is {len} characters long; IAM accepts ARNs of at most {MAX_ROLE_ARN_LEN}")]
    Arn {
        /// Its length in characters.
        len: usize,
    },
    /// The role path (`/team/sub/` in `role/team/sub/app`) is over [`MAX_ROLE_PATH_LEN`].
    #[error(
        "has a role path of {len} characters; IAM accepts paths of at most {MAX_ROLE_PATH_LEN}"
    )]
    Path {
        /// The path's length in characters, both slashes included.
        len: usize,
    },
}

/// Checks a role ARN against IAM's length caps, in time linear in its length and without a regex.
///
/// The path is read only when the resource is `role/...` (the sixth `:`-separated field); other shapes
/// (an STS-compatible service's own ARNs) are judged by the whole length alone.
pub fn check_role_arn_len(arn: &str) -> Result<(), RoleArnTooLong> {
    // Bytes bound characters from above: the character count is needed only past the cap.
    if arn.len() > MAX_ROLE_ARN_LEN {
        let len = arn.chars().count();
        if len > MAX_ROLE_ARN_LEN {
            return Err(RoleArnTooLong::Arn { len });
        }
    }
    let path = arn
        .splitn(6, ':')
        .nth(5)
        .and_then(|resource| resource.strip_prefix("role"))
        .filter(|rest| rest.starts_with('/'))
        .and_then(|rest| rest.rfind('/').map(|last| &rest[..=last]));
    match path.map(|path| path.chars().count()) {
        Some(len) if len > MAX_ROLE_PATH_LEN => Err(RoleArnTooLong::Path { len }),
        _ => Ok(()),
    }
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

/// The ARN of the role `name` in `account`: `arn:<partition>:iam::<account>:role/<name>`.
pub fn role_arn(partition: Partition, account: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account}:role/{name}")
}

/// The ARN IAM gives the OIDC provider of an issuer: `arn:<partition>:iam::<account>:oidc-provider/<host/path>`,
/// where `host_path` is the issuer URL without `https://` ([`crate::IssuerUrl::host_path`]).
pub fn oidc_provider_arn(partition: Partition, account: &str, host_path: &str) -> String {
    format!("arn:{partition}:iam::{account}:oidc-provider/{host_path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_of_regions_and_arns() {
        assert_eq!(Partition::of_region("eu-west-1"), Partition::Aws);
        assert_eq!(Partition::of_region("cn-north-1"), Partition::AwsCn);
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
        assert!(Partition::of_arn("not-an-arn").is_err());
        for p in [Partition::Aws, Partition::AwsCn, Partition::AwsUsGov] {
            assert_eq!(p.as_str().parse::<Partition>(), Ok(p));
        }
    }

    #[test]
    fn role_arn_length_caps() {
        let arn = |path: &str, name: &str| format!("arn:aws:iam::123456789012:role{path}{name}");
        assert_eq!(check_role_arn_len(&arn("/", "app")), Ok(()));
        assert_eq!(check_role_arn_len(&arn("/team/sub/", "app")), Ok(()));
        assert_eq!(
            check_role_arn_len("arn:minio:iam:us-east-1::role/abc"),
            Ok(())
        );
        assert_eq!(check_role_arn_len("not-an-arn"), Ok(()));

        // The path counts both slashes: 510 characters between them is the longest path.
        let longest = format!("/{}/", "p".repeat(MAX_ROLE_PATH_LEN - 2));
        assert_eq!(check_role_arn_len(&arn(&longest, "app")), Ok(()));
        let over = format!("/{}/", "p".repeat(MAX_ROLE_PATH_LEN - 1));
        assert_eq!(
            check_role_arn_len(&arn(&over, "app")),
            Err(RoleArnTooLong::Path {
                len: MAX_ROLE_PATH_LEN + 1
            })
        );

        let at_cap = arn("/", &"n".repeat(MAX_ROLE_ARN_LEN - arn("/", "").len()));
        assert_eq!(at_cap.len(), MAX_ROLE_ARN_LEN);
        assert_eq!(check_role_arn_len(&at_cap), Ok(()));
        let too_long = format!("{at_cap}n");
        assert_eq!(
            check_role_arn_len(&too_long),
            Err(RoleArnTooLong::Arn {
                len: MAX_ROLE_ARN_LEN + 1
            })
        );
        // Characters, not bytes: 2048 two-byte characters are within the cap.
        assert_eq!(check_role_arn_len(&"é".repeat(MAX_ROLE_ARN_LEN)), Ok(()));
        let message = RoleArnTooLong::Path { len: 10_000 }.to_string();
        assert!(
            message.contains("10000") && message.contains("512"),
            "{message}"
        );
    }

    #[test]
    fn builds_role_and_provider_arns() {
        assert_eq!(
            role_arn(Partition::AwsUsGov, "111122223333", "app"),
            "arn:aws-us-gov:iam::111122223333:role/app"
        );
        assert_eq!(
            oidc_provider_arn(Partition::Aws, "111122223333", "oidc.example.com/c1"),
            "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/c1"
        );
    }
}
