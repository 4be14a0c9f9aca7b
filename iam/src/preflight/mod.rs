//! Preflight: fetch the issuer's discovery document and JWKS the way STS does, and judge them by
//! STS's rules before anything is registered in IAM.
//!
//! STS fetches over public HTTPS, follows no redirects, gives up after about 5 s, needs the
//! discovery `issuer` byte-identical to the tokens' `iss`, and refuses a JWKS that breaks its hygiene
//! rules. Each failure is one line: what is wrong, what STS would answer, how to fix it.
//!
//! [`fetch`] gets the documents as STS would; [`rules`] judges them, without I/O.

pub mod fetch;
pub mod rules;

use std::time::Duration;

use irsa_core::IssuerUrl;
use serde::Serialize;

use crate::trust::{Trust, TrustError};

pub use rules::{Discovery, JwksSummary, check_discovery, check_jwks};

/// How long STS waits for each document, about.
pub const STS_TIMEOUT: Duration = Duration::from_secs(5);

/// What STS says when it cannot get a usable key from the issuer.
const STS_ANSWER: &str = "STS would answer InvalidIdentityToken (\"Couldn't retrieve verification key from your identity provider\")";

const FIX_REACH: &str = "serve the issuer publicly over HTTPS (irsa issuer serve, or irsa issuer publish to S3) and check DNS, firewall and certificate";
const FIX_CERT: &str = "use a certificate from a public CA (STS trusts those by itself); for a private CA pass --ca-file here and register its thumbprint";
const FIX_STATUS: &str =
    "serve the document with 200 at exactly this URL: STS follows no redirects";
const FIX_JWKS: &str = "publish the keys with irsa issuer serve/publish, which writes a clean JWKS";

/// Why STS would not accept the issuer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreflightError {
    /// The roots to judge TLS with could not be assembled.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A document could not be fetched: DNS, connection, TLS or timeout.
    #[error("cannot fetch {url}: {reason}; {STS_ANSWER}; fix: {fix}")]
    Unreachable {
        /// The document's URL.
        url: String,
        /// What failed.
        reason: String,
        /// What to do about it.
        fix: &'static str,
    },
    /// A document was answered with something other than 200.
    #[error("{url} answered HTTP {status}{}; {STS_ANSWER}; fix: {FIX_STATUS}", redirect_note(.location))]
    Status {
        /// The document's URL.
        url: String,
        /// The status code.
        status: u16,
        /// Where a redirect pointed.
        location: Option<String>,
    },
    /// A document is not what it should be (not JSON, a field missing).
    #[error("{url} is not a usable {what}: {reason}; {STS_ANSWER}; fix: {fix}")]
    Malformed {
        /// The document's URL.
        url: String,
        /// "discovery document" or "JWKS".
        what: &'static str,
        /// What is wrong.
        reason: String,
        /// What to do about it.
        fix: &'static str,
    },
    /// The discovery document names another issuer.
    #[error(
        "the discovery document at {url} says issuer {found:?} but the issuer URL is {expected:?}{}; STS would refuse every token of this issuer; fix: make --issuer-url, the apiserver's --service-account-issuer and the discovery issuer byte-identical",
        slash_note(.expected, .found)
    )]
    IssuerMismatch {
        /// The discovery document's URL.
        url: String,
        /// The issuer URL given.
        expected: String,
        /// The `issuer` in the document.
        found: String,
    },
    /// The discovery document points at a JWKS that is not on HTTPS.
    #[error(
        "the discovery document at {url} has jwks_uri {jwks_uri:?}, not an https:// URL; {STS_ANSWER}; fix: publish the JWKS over HTTPS and point jwks_uri at it"
    )]
    JwksUriNotHttps {
        /// The discovery document's URL.
        url: String,
        /// The `jwks_uri` in it.
        jwks_uri: String,
    },
    /// The JWKS breaks STS's hygiene rules.
    #[error("JWKS {url}: {problem}{}; {STS_ANSWER}; fix: {fix}", more_note(*.more))]
    Jwks {
        /// The JWKS URL.
        url: String,
        /// The first problem found.
        problem: String,
        /// What to do about it.
        fix: &'static str,
        /// How many more problems there are.
        more: usize,
    },
}

fn redirect_note(location: &Option<String>) -> String {
    match location {
        Some(l) => format!(" (a redirect to {l})"),
        None => String::new(),
    }
}

fn slash_note(expected: &str, found: &str) -> &'static str {
    if expected.trim_end_matches('/') == found.trim_end_matches('/') {
        " (they differ by a trailing slash, which counts)"
    } else {
        ""
    }
}

fn more_note(more: usize) -> String {
    match more {
        0 => String::new(),
        n => format!(" (and {n} more problems)"),
    }
}

/// What preflight found: enough to take thumbprints and to show the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreflightReport {
    /// Where discovery was read.
    pub discovery_url: String,
    /// The `jwks_uri` of the discovery document.
    pub jwks_uri: String,
    /// The JWKS host (for the thumbprint).
    pub jwks_host: String,
    /// The JWKS port.
    pub jwks_port: u16,
    /// The key IDs in the JWKS.
    pub kids: Vec<String>,
    /// How many RSA keys.
    pub rsa_keys: usize,
    /// How many EC keys.
    pub ec_keys: usize,
    /// Legal but suspicious findings.
    pub warnings: Vec<String>,
}

/// Fetches and judges discovery and JWKS for `issuer`, each within `timeout`, over TLS verified
/// against `trust`.
pub async fn preflight(
    issuer: &IssuerUrl,
    trust: &Trust,
    timeout: Duration,
) -> Result<PreflightReport, PreflightError> {
    let client = fetch::client(trust, timeout, &issuer.discovery_url())?;
    let mut warnings = Vec::new();

    let discovery_url = issuer.discovery_url();
    let body = fetch::fetch(
        &client,
        &discovery_url,
        "application/json",
        timeout,
        &mut warnings,
    )
    .await?;
    let discovery = check_discovery(issuer.as_str(), &discovery_url, &body)?;
    warnings.extend(discovery.warnings);

    let body = fetch::fetch(&client, &discovery.jwks_uri, "json", timeout, &mut warnings).await?;
    let jwks = check_jwks(&discovery.jwks_uri, &body)?;
    warnings.extend(jwks.warnings);

    Ok(PreflightReport {
        discovery_url,
        jwks_uri: discovery.jwks_uri,
        jwks_host: discovery.jwks_host,
        jwks_port: discovery.jwks_port,
        kids: jwks.kids,
        rsa_keys: jwks.rsa_keys,
        ec_keys: jwks.ec_keys,
        warnings,
    })
}
