//! The flags `irsa signer serve`, `status` and `rotate` share: where the keys are (a directory or a KMS key
//! set) and the rotation policy. One definition, so the three commands can never disagree on a key's state.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use irsa_issuer::routes::DEFAULT_MAX_AGE;
use irsa_serve::duration;

use crate::kms::KmsKeySet;
use crate::rotation::{Policy, PolicyError};
use crate::source::Source;

/// Where the keys are: exactly one of a directory and a KMS key set.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct SourceArgs {
    /// A directory of PEM private keys, one per file (RSA of 2048 bits or more, EC P-256/384/521). A key's
    /// publication time is the time in its name when `irsa signer rotate` wrote it (key-YYYYMMDDTHHMMSSZ.pem),
    /// else the file's modification time.
    #[arg(long, env = "IRSA_SIGNER_KEY_DIR", value_name = "DIR")]
    pub key_dir: Option<PathBuf>,

    /// The AWS KMS keys tagged irsa-signer-key-set=NAME (asymmetric SIGN_VERIFY: RSA, ECC NIST): they sign
    /// with kms:Sign, the private keys never leave KMS. A key's publication time is its CreationDate. Region,
    /// credentials and endpoint (AWS_ENDPOINT_URL_KMS) come from the standard AWS configuration.
    #[arg(long, env = "IRSA_SIGNER_KMS_KEY_SET", value_name = "NAME")]
    pub kms_key_set: Option<String>,
}

impl SourceArgs {
    /// The source the flags name; a KMS client is configured by the standard chain (environment, profile,
    /// web identity, IMDS), as `irsa issuer publish` configures its S3 client.
    pub async fn source(&self) -> anyhow::Result<Source> {
        match (&self.key_dir, &self.kms_key_set) {
            (Some(dir), None) => Ok(Source::Dir(dir.clone())),
            (None, Some(name)) => {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                let set = KmsKeySet::new(aws_sdk_kms::Client::new(&config), name)?;
                Ok(Source::Kms(set))
            }
            // clap's group refuses both and neither; kept for callers that build the flags themselves.
            (Some(_), Some(_)) => anyhow::bail!("--key-dir and --kms-key-set exclude each other"),
            (None, None) => anyhow::bail!("one of --key-dir and --kms-key-set is required"),
        }
    }
}

/// The key source and the rotation policy.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub source: SourceArgs,

    /// How long a new key is published before it signs. At least --jwks-max-age plus --rotation-margin (and
    /// --refresh-hint-seconds plus the margin for `serve`): every cached key set must hold the key before
    /// its first token arrives.
    #[arg(long, env = "IRSA_SIGNER_PRE_PUBLISH", value_name = "DURATION",
          value_parser = duration::parse_allowing_zero, default_value = "65m")]
    pub pre_publish: Duration,

    /// Slack for clock skew and late refreshes: added to the pre-publication floor and to how long a replaced
    /// key stays published after its last token could expire.
    #[arg(long, env = "IRSA_SIGNER_ROTATION_MARGIN", value_name = "DURATION",
          value_parser = duration::parse_allowing_zero, default_value = "5m")]
    pub rotation_margin: Duration,

    /// The Cache-Control max-age, in seconds, of the JWKS the issuer serves (`irsa issuer serve --max-age`,
    /// same default): how long a verifier may keep using a key set without the new key.
    #[arg(long, env = "IRSA_SIGNER_JWKS_MAX_AGE", value_name = "SECONDS",
          default_value_t = DEFAULT_MAX_AGE)]
    pub jwks_max_age: u32,

    /// The longest token lifetime the apiserver may issue, in seconds (at least 600). The apiserver exits if
    /// its --service-account-max-token-expiration is longer, and defaults to this when that flag is unset. A
    /// replaced key stays published this long (plus the margin) after it stopped signing.
    #[arg(long, env = "IRSA_SIGNER_MAX_TOKEN_EXPIRATION_SECONDS", default_value_t = 86_400,
          value_parser = clap::value_parser!(i64).range(600..))]
    pub max_token_expiration_seconds: i64,
}

impl KeyArgs {
    /// The rotation policy, checked against the caches that hold a key set: the issuer's JWKS `max-age`, and
    /// `refresh_hint_seconds` when the apiserver's own cache is refreshed by this process.
    pub fn policy(&self, refresh_hint_seconds: Option<i64>) -> Result<Policy, PolicyError> {
        let policy = Policy {
            pre_publish: self.pre_publish,
            max_token_expiration: Duration::from_secs(
                u64::try_from(self.max_token_expiration_seconds).unwrap_or(0),
            ),
            margin: self.rotation_margin,
        };
        let hint = refresh_hint_seconds.map_or(0, |s| u64::try_from(s).unwrap_or(0));
        let longest_cache = Duration::from_secs(u64::from(self.jwks_max_age).max(hint));
        policy.check(longest_cache)?;
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        keys: KeyArgs,
    }

    fn parse(args: &[&str]) -> KeyArgs {
        Cmd::try_parse_from([&["cmd", "--key-dir=/k"], args].concat())
            .unwrap()
            .keys
    }

    #[test]
    fn the_defaults_satisfy_the_issuers_max_age() {
        let policy = parse(&[]).policy(Some(60)).unwrap();
        // 3600 s of the issuer's max-age plus the 5 min margin.
        assert_eq!(policy.pre_publish, Duration::from_secs(3600 + 300));
        assert_eq!(policy.max_token_expiration, Duration::from_secs(86_400));
        assert_eq!(policy.margin, Duration::from_secs(300));
    }

    #[test]
    fn a_pre_publication_shorter_than_a_cache_is_refused() {
        let err = parse(&["--pre-publish=1h"]).policy(None).unwrap_err();
        assert!(err.to_string().contains("3900"), "{err}");
        // Shorter caches allow shorter pre-publication, but the refresh hint counts too.
        let args = parse(&[
            "--pre-publish=3s",
            "--jwks-max-age=1",
            "--rotation-margin=1s",
        ]);
        assert!(args.policy(Some(1)).is_ok());
        assert!(args.policy(Some(5)).is_err());
    }
}
