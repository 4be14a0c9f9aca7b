//! `associate-oidc-provider`: preflight the issuer, then create or reconcile its IAM OIDC provider.
//!
//! Order matters: everything that can fail without AWS (URL, preflight, thumbprints) runs before the
//! first IAM call, so nothing is created for an issuer STS would not accept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_iam::types::Tag;
use irsa_core::IssuerUrl;
use irsa_core::issuer_url::UrlError;
use irsa_core::names::DEFAULT_AUDIENCE;
use serde_json::Value;

use crate::aws::{Aws, AwsError, AwsOptions, classify};
use crate::plan::report::{self, Outcome, Report, url_warnings};
use crate::plan::{DesiredProvider, ExistingProvider, Plan, ProviderChange, ProviderPlan};
use crate::preflight::{self, PreflightError, PreflightReport};
use crate::thumbprint::{self, ThumbprintError, ThumbprintSpec};
use crate::trust::{Trust, TrustError};

/// IAM keeps at most this many client IDs per provider.
pub const MAX_CLIENT_IDS: usize = 100;

/// What `associate-oidc-provider` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociateOptions {
    /// The issuer URL, exactly the tokens' `iss`.
    pub issuer_url: String,
    /// Client IDs (audiences); empty means `sts.amazonaws.com`.
    pub client_ids: Vec<String>,
    /// `--thumbprint` values; empty means `auto`.
    pub thumbprints: Vec<ThumbprintSpec>,
    /// An extra CA to trust the issuer's certificate with.
    pub ca_file: Option<PathBuf>,
    /// Tags the provider must carry.
    pub tags: BTreeMap<String, String>,
    /// Remove client IDs that were not asked for.
    pub prune_client_ids: bool,
    /// Read and plan, change nothing.
    pub dry_run: bool,
    /// Credentials and region.
    pub aws: AwsOptions,
    /// Per-request limit for preflight and thumbprints (STS allows about 5 s).
    pub timeout: Duration,
}

impl AssociateOptions {
    /// Options for `issuer_url` with every default.
    pub fn new(issuer_url: impl Into<String>) -> AssociateOptions {
        AssociateOptions {
            issuer_url: issuer_url.into(),
            client_ids: Vec::new(),
            thumbprints: Vec::new(),
            ca_file: None,
            tags: BTreeMap::new(),
            prune_client_ids: false,
            dry_run: false,
            aws: AwsOptions::default(),
            timeout: preflight::STS_TIMEOUT,
        }
    }
}

/// Why `associate-oidc-provider` stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssociateError {
    /// An option is out of IAM's bounds.
    #[error("{0}")]
    Input(String),
    /// The issuer URL is unusable.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// `--ca-file` is unusable.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// STS would not accept the issuer.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// A thumbprint could not be taken or is malformed.
    #[error(transparent)]
    Thumbprint(#[from] ThumbprintError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// What `associate-oidc-provider` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociateReport {
    /// What preflight found.
    pub preflight: PreflightReport,
    /// The plan (after a race, the one that was applied).
    pub plan: ProviderPlan,
    /// Warnings, dry run, and whether IAM was changed.
    pub outcome: Outcome,
}

impl Report for AssociateReport {
    fn render_text(&self) -> String {
        let p = &self.preflight;
        let checked = format!(
            "preflight: ok: {} and {} ({} RSA, {} EC keys)\n",
            p.discovery_url, p.jwks_uri, p.rsa_keys, p.ec_keys
        );
        report::render_text(&self.outcome, &checked, &self.plan)
    }

    fn to_json(&self) -> Value {
        let preflight = serde_json::to_value(&self.preflight).unwrap_or_default();
        report::to_json(
            &self.outcome,
            "provider",
            &self.plan,
            [("preflight", preflight)],
        )
    }
}

/// Runs `associate-oidc-provider`.
pub async fn associate(opts: &AssociateOptions) -> Result<AssociateReport, AssociateError> {
    let url = IssuerUrl::parse(&opts.issuer_url, false)?;
    let client_ids = client_ids(&opts.client_ids)?;
    check_tags(&opts.tags)?;
    let mut warnings = url_warnings(&url);

    let trust = Trust::load(opts.ca_file.as_deref())?;
    let preflight = preflight::preflight(&url, &trust, opts.timeout).await?;
    warnings.extend(preflight.warnings.iter().cloned());

    let mut hosts = vec![(preflight.jwks_host.clone(), preflight.jwks_port)];
    let issuer_host = (url.host().to_owned(), url.port_or_default());
    if hosts[0] != issuer_host {
        hosts.push(issuer_host);
    }
    let thumbprints = thumbprint::resolve(&opts.thumbprints, &hosts, &trust, opts.timeout)
        .await?
        .map(|list| list.into_iter().map(|t| t.as_str().to_owned()).collect());

    let aws = Aws::connect(&opts.aws).await?;
    let desired = DesiredProvider {
        url: url.as_str().to_owned(),
        arn: url.provider_arn(aws.partition, &aws.account),
        client_ids,
        thumbprints,
        tags: opts.tags.clone(),
    };
    let existing = read_provider(&aws.iam, &desired.arn).await?;
    let mut plan = ProviderPlan::new(&desired, existing, opts.prune_client_ids);

    let mut applied = false;
    if !opts.dry_run && plan.has_changes() {
        match apply(&aws.iam, &plan, &mut warnings).await {
            Err(e) if e.is_already_exists() => {
                // Another run created it between our read and our create: reconcile with its result.
                warnings.push(format!(
                    "{} was created concurrently by someone else; reconciling with it",
                    desired.arn
                ));
                let existing = read_provider(&aws.iam, &desired.arn).await?;
                plan = ProviderPlan::new(&desired, existing, opts.prune_client_ids);
                apply(&aws.iam, &plan, &mut warnings).await?;
            }
            other => other?,
        }
        applied = true;
    }
    Ok(AssociateReport {
        preflight,
        plan,
        outcome: Outcome {
            warnings,
            dry_run: opts.dry_run,
            applied,
        },
    })
}

fn client_ids(given: &[String]) -> Result<Vec<String>, AssociateError> {
    if given.is_empty() {
        return Ok(vec![DEFAULT_AUDIENCE.to_owned()]);
    }
    if let Some(bad) = given.iter().find(|id| id.is_empty() || id.len() > 255) {
        return Err(AssociateError::Input(format!(
            "client ID {bad:?} must be 1 to 255 characters"
        )));
    }
    if given.len() > MAX_CLIENT_IDS {
        return Err(AssociateError::Input(format!(
            "{} client IDs given; IAM keeps at most {MAX_CLIENT_IDS} per provider",
            given.len()
        )));
    }
    Ok(given.to_vec())
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), AssociateError> {
    if tags.len() > 50 {
        return Err(AssociateError::Input(format!(
            "{} tags given; IAM allows at most 50",
            tags.len()
        )));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(AssociateError::Input(format!(
                "tag {k}={v}: keys must be 1 to 128 characters, values at most 256"
            )));
        }
        if k.starts_with("aws:") {
            return Err(AssociateError::Input(format!(
                "tag key {k:?}: the aws: prefix is reserved"
            )));
        }
    }
    Ok(())
}

/// `GetOpenIDConnectProvider`, with "not found" as `None`.
pub async fn read_provider(
    iam: &aws_sdk_iam::Client,
    arn: &str,
) -> Result<Option<ExistingProvider>, AwsError> {
    let out = match iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
        .map_err(|e| classify("iam:GetOpenIDConnectProvider", Some(arn), e))
    {
        Ok(out) => out,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(ExistingProvider {
        client_ids: out.client_id_list().to_vec(),
        thumbprints: out.thumbprint_list().to_vec(),
        tags: out
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
    }))
}

async fn apply(
    iam: &aws_sdk_iam::Client,
    plan: &ProviderPlan,
    warnings: &mut Vec<String>,
) -> Result<(), AwsError> {
    let arn = plan.arn.as_str();
    match &plan.change {
        ProviderChange::Create {
            client_ids,
            thumbprints,
            tags,
        } => {
            let out = iam
                .create_open_id_connect_provider()
                .url(&plan.url)
                .set_client_id_list(Some(client_ids.clone()))
                .set_thumbprint_list((!thumbprints.is_empty()).then(|| thumbprints.clone()))
                .set_tags((!tags.is_empty()).then(|| tag_list(tags)).transpose()?)
                .send()
                .await
                .map_err(|e| classify("iam:CreateOpenIDConnectProvider", Some(arn), e))?;
            if let Some(made) = out
                .open_id_connect_provider_arn()
                .filter(|made| *made != arn)
            {
                warnings.push(format!(
                    "IAM named the provider {made}, not {arn}: the account or partition is not the caller's"
                ));
            }
        }
        ProviderChange::Update(update) => {
            for id in &update.add_client_ids {
                iam.add_client_id_to_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .client_id(id)
                    .send()
                    .await
                    .map_err(|e| {
                        classify("iam:AddClientIDToOpenIDConnectProvider", Some(arn), e)
                    })?;
            }
            for id in &update.remove_client_ids {
                iam.remove_client_id_from_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .client_id(id)
                    .send()
                    .await
                    .map_err(|e| {
                        classify("iam:RemoveClientIDFromOpenIDConnectProvider", Some(arn), e)
                    })?;
            }
            if let Some(list) = &update.set_thumbprints {
                iam.update_open_id_connect_provider_thumbprint()
                    .open_id_connect_provider_arn(arn)
                    .set_thumbprint_list(Some(list.clone()))
                    .send()
                    .await
                    .map_err(|e| {
                        classify("iam:UpdateOpenIDConnectProviderThumbprint", Some(arn), e)
                    })?;
            }
            if !update.add_tags.is_empty() {
                iam.tag_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .set_tags(Some(tag_list(&update.add_tags)?))
                    .send()
                    .await
                    .map_err(|e| classify("iam:TagOpenIDConnectProvider", Some(arn), e))?;
            }
        }
    }
    Ok(())
}

fn tag_list(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| AwsError::Other {
                    action: "iam:TagOpenIDConnectProvider",
                    message: e.to_string(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use irsa_core::Partition;

    /// The forms IAM derives from the issuer URL (the URL rules themselves are core's table): the
    /// provider ARN in each partition and the discovery URL keep the URL verbatim, trailing slash,
    /// port and spelling included.
    #[test]
    fn issuer_forms_iam_uses() {
        let url = |u: &str| IssuerUrl::parse(u, false).unwrap();
        let cases = [
            (
                "https://oidc.example.com",
                Partition::Aws,
                "arn:aws:iam::111122223333:oidc-provider/oidc.example.com",
                "https://oidc.example.com/.well-known/openid-configuration",
            ),
            (
                "https://s3.amazonaws.com/bucket/cluster-1",
                Partition::AwsUsGov,
                "arn:aws-us-gov:iam::111122223333:oidc-provider/s3.amazonaws.com/bucket/cluster-1",
                "https://s3.amazonaws.com/bucket/cluster-1/.well-known/openid-configuration",
            ),
            (
                "https://issuer.example.com/tenant/",
                Partition::AwsCn,
                "arn:aws-cn:iam::111122223333:oidc-provider/issuer.example.com/tenant/",
                // Discovery never gets a double slash.
                "https://issuer.example.com/tenant/.well-known/openid-configuration",
            ),
            (
                "https://127.0.0.1:8443/issuer",
                Partition::Aws,
                "arn:aws:iam::111122223333:oidc-provider/127.0.0.1:8443/issuer",
                "https://127.0.0.1:8443/issuer/.well-known/openid-configuration",
            ),
            (
                "https://Example.com/x",
                Partition::Aws,
                "arn:aws:iam::111122223333:oidc-provider/Example.com/x",
                "https://Example.com/x/.well-known/openid-configuration",
            ),
        ];
        for (raw, partition, arn, discovery) in cases {
            let u = url(raw);
            assert_eq!(u.provider_arn(partition, "111122223333"), arn, "{raw}");
            assert_eq!(u.discovery_url(), discovery, "{raw}");
        }
        // Thumbprints are taken from where a client connects: the parsed host, the default port.
        let u = url("https://oidc.example.com");
        assert_eq!((u.host(), u.port_or_default()), ("oidc.example.com", 443));
        let u = url("https://127.0.0.1:8443/issuer");
        assert_eq!((u.host(), u.port_or_default()), ("127.0.0.1", 8443));
        assert_eq!(url("https://[::1]/x").host(), "::1");
    }

    #[tokio::test]
    async fn url_errors_come_before_anything_else() {
        for bad in [
            "http://example.com",
            "https://example.com/?a=b",
            "https://u:p@example.com",
            "https://h//c",
        ] {
            let err = associate(&AssociateOptions::new(bad)).await.unwrap_err();
            assert!(matches!(err, AssociateError::Url(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn client_id_defaults_and_bounds() {
        assert_eq!(client_ids(&[]).unwrap(), ["sts.amazonaws.com"]);
        assert!(client_ids(&["".to_owned()]).is_err());
        let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
        assert!(
            client_ids(&many)
                .unwrap_err()
                .to_string()
                .contains("at most 100")
        );
    }

    #[test]
    fn tag_bounds() {
        let t = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert!(check_tags(&t("team", "a")).is_ok());
        assert!(check_tags(&t("aws:x", "a")).is_err());
        assert!(check_tags(&t("", "a")).is_err());
        assert!(check_tags(&t("k", &"v".repeat(257))).is_err());
    }
}
