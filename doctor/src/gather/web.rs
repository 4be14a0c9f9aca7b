//! The documents fetched the way STS fetches them (irsa-iam's preflight client: https only, no redirects,
//! a 5 s budget, the chain verified), and the chain a host presents, recorded without judging it so that
//! the checks can say why it is not trusted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use irsa_iam::trust::Trust;
use irsa_serve::logging::error_chain;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;

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
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let recorder = Arc::new(Recorder {
        provider: provider.clone(),
        chain: Mutex::new(Vec::new()),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| format!("{host:?} is not a valid TLS server name"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = async {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("{host}:{port}: {e}"))?;
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}:{port}: {e}"))
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| format!("no TLS handshake with {host}:{port} within {timeout:?}"))??;
    let chain = std::mem::take(&mut *recorder.chain.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(chain)
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

/// Accepts any chain and remembers it: the checks judge it afterwards, against the right roots.
#[derive(Debug)]
struct Recorder {
    provider: Arc<CryptoProvider>,
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.chain.lock().unwrap_or_else(|p| p.into_inner()) = chain;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
