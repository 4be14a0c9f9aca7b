//! Getting a document the way STS does: HTTPS only, no redirects, within a time limit, TLS judged
//! against the given roots.

use std::time::Duration;

use irsa_serve::logging::error_chain;

use super::{FIX_CERT, FIX_REACH, PreflightError};
use crate::trust::Trust;

/// An HTTPS client that behaves like STS's fetcher: no redirects, `timeout` per request, servers
/// verified against `trust`. `url` is only for the error message.
pub fn client(
    trust: &Trust,
    timeout: Duration,
    url: &str,
) -> Result<reqwest::Client, PreflightError> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(trust.client_config()?)
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
        .timeout(timeout)
        .build()
        .map_err(|e| PreflightError::Unreachable {
            url: url.to_owned(),
            reason: error_chain(&e),
            fix: "report this as a bug in irsa",
        })
}

/// GETs `url` and returns its body when the answer is 200; a `Content-Type` without `content_type`
/// is a warning (STS does not insist, but proxies and caches might mangle the document).
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    timeout: Duration,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>, PreflightError> {
    let unreachable = |e: reqwest::Error| {
        // reqwest's own message only repeats the URL; the causes say what happened.
        let reason = match std::error::Error::source(&e) {
            _ if e.is_timeout() => {
                format!("no complete answer within {timeout:?} (STS gives up after about 5 s)")
            }
            Some(cause) => error_chain(cause),
            None => e.to_string(),
        };
        let fix = if reason.contains("certificate") {
            FIX_CERT
        } else {
            FIX_REACH
        };
        PreflightError::Unreachable {
            url: url.to_owned(),
            reason,
            fix,
        }
    };
    let response = client.get(url).send().await.map_err(unreachable)?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(PreflightError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
            location: response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .filter(|_| status.is_redirection())
                .map(str::to_owned),
        });
    }
    let served = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !served.contains(content_type) {
        warnings.push(format!(
            "{url} is served as {served:?}; serve it as {}",
            if content_type == "json" {
                "application/jwk-set+json or application/json"
            } else {
                content_type
            }
        ));
    }
    let body = response.bytes().await.map_err(unreachable)?;
    Ok(body.to_vec())
}
