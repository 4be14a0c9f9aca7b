//! The documents fetched the way STS fetches them (irsa-iam's preflight client: https only, no redirects,
//! a 5 s budget, the chain verified), and the chain a host presents, recorded without judging it so that
//! the checks can say why it is not trusted.

use std::time::{Duration, Instant};

use irsa_iam::trust::Trust;
use irsa_serve::logging::error_chain;
use rustls_pki_types::CertificateDer;

use crate::checks::{Fetched, Gathered};

/// GETs `url` with `client` (see [`irsa_iam::preflight::fetch::client`]) and records the answer.
pub async fn fetch(client: &reqwest::Client, url: &str) -> Gathered<Fetched> {
    let started = Instant::now();
    let response = client.get(url).send().await.map_err(|e| describe(&e))?;
    let header = |name: http::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = response.status().as_u16();
    let location = header(http::header::LOCATION);
    let cache_control = header(http::header::CACHE_CONTROL);
    let body = response.bytes().await.map_err(|e| describe(&e))?;
    Ok(Fetched {
        url: url.to_owned(),
        status,
        location,
        cache_control,
        millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        body: body.to_vec(),
    })
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no complete answer within 5 s (STS gives up then)".to_owned();
    }
    // reqwest's own message only repeats the URL; the causes say what happened.
    std::error::Error::source(e).map_or_else(|| e.to_string(), error_chain)
}

/// The chain `host:port` presents (leaf first), recorded without verifying it.
pub async fn presented_chain(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Gathered<Vec<CertificateDer<'static>>> {
    irsa_iam::thumbprint::recorded_chain(host, port, timeout)
        .await
        .map_err(|e| error_chain(&e))
}

/// The chain of `url`'s host (https URLs only).
pub async fn chain_of(
    url: &str,
    timeout: Duration,
) -> Option<Gathered<Vec<CertificateDer<'static>>>> {
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "https")?;
    let host = parsed.host_str()?.trim_matches(['[', ']']).to_owned();
    let port = parsed.port_or_known_default()?;
    Some(presented_chain(&host, port, timeout).await)
}

/// An HTTPS client that fetches as STS does, judged against `trust`.
pub fn sts_like_client(trust: &Trust, url: &str) -> Gathered<reqwest::Client> {
    irsa_iam::preflight::fetch::client(trust, irsa_iam::preflight::STS_TIMEOUT, url)
        .map_err(|e| e.to_string())
}
