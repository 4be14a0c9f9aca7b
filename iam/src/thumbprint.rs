//! IAM thumbprints: SHA-1 of the DER of the last certificate a host presents in its TLS chain.
//!
//! The chain is recorded by a verifier that still verifies: a thumbprint is only taken from a
//! server that the public roots (or `--ca-file`) vouch for, so a man in the middle cannot get its
//! own CA registered.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha1::{Digest, Sha1};
use tokio::net::TcpStream;

use crate::trust::{Trust, TrustError};

/// IAM keeps at most this many thumbprints per provider.
pub const MAX_THUMBPRINTS: usize = 5;

/// A certificate thumbprint: 40 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Thumbprint(String);

impl Thumbprint {
    /// The thumbprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Thumbprint {
        Thumbprint(hex::encode(Sha1::digest(der)))
    }

    /// The 40 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a thumbprint or a `--thumbprint` value is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThumbprintError {
    /// A given thumbprint is not 40 hex digits.
    #[error(
        "thumbprint {0:?} is not a SHA-1 fingerprint: want 40 hex digits (colons allowed), or auto, or none"
    )]
    Malformed(String),
    /// `none` was combined with other values.
    #[error("--thumbprint none cannot be combined with other thumbprints")]
    NoneWithOthers,
    /// More than IAM keeps.
    #[error("{0} thumbprints given; IAM keeps at most 5 per provider")]
    TooMany(usize),
    /// The roots could not be assembled.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The host name is not usable for TLS.
    #[error("cannot take the thumbprint of {0:?}: not a valid TLS server name")]
    ServerName(String),
    /// The TCP connection or the handshake failed.
    #[error("cannot take the thumbprint of {host}:{port}: {reason}; fix: {fix}")]
    Connect {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// What failed.
        reason: String,
        /// What to do about it.
        fix: &'static str,
    },
    /// The handshake finished without a chain (cannot happen with a verifying client).
    #[error("{host}:{port} presented no certificate")]
    NoCertificate {
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
}

/// One `--thumbprint` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThumbprintSpec {
    /// Take it from the issuer's TLS chain.
    Auto,
    /// Register no thumbprint and leave existing ones alone (AWS trusts public CAs by itself).
    None,
    /// This fingerprint.
    Given(Thumbprint),
}

impl FromStr for ThumbprintSpec {
    type Err = ThumbprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => return Ok(ThumbprintSpec::Auto),
            "none" => return Ok(ThumbprintSpec::None),
            _ => {}
        }
        let digits: String = s.chars().filter(|c| *c != ':').collect();
        if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ThumbprintError::Malformed(s.to_owned()));
        }
        Ok(ThumbprintSpec::Given(Thumbprint(
            digits.to_ascii_lowercase(),
        )))
    }
}

/// Turns `--thumbprint` values into the list to register: `None` when thumbprints are not to be
/// managed (`none`), otherwise the given ones plus, for `auto` (the default when nothing is given),
/// the thumbprint of each of `hosts`, without duplicates, in order.
pub async fn resolve(
    specs: &[ThumbprintSpec],
    hosts: &[(String, u16)],
    trust: &Trust,
    timeout: Duration,
) -> Result<Option<Vec<Thumbprint>>, ThumbprintError> {
    let auto = [ThumbprintSpec::Auto];
    let specs = if specs.is_empty() { &auto[..] } else { specs };
    if specs.contains(&ThumbprintSpec::None) {
        return if specs.len() == 1 {
            Ok(None)
        } else {
            Err(ThumbprintError::NoneWithOthers)
        };
    }
    let mut out: Vec<Thumbprint> = Vec::new();
    let mut push = |t: Thumbprint| {
        if !out.contains(&t) {
            out.push(t);
        }
    };
    for spec in specs {
        match spec {
            ThumbprintSpec::Given(t) => push(t.clone()),
            ThumbprintSpec::Auto => {
                for (host, port) in hosts {
                    push(last_certificate_thumbprint(host, *port, trust, timeout).await?);
                }
            }
            ThumbprintSpec::None => {}
        }
    }
    if out.len() > MAX_THUMBPRINTS {
        return Err(ThumbprintError::TooMany(out.len()));
    }
    Ok(Some(out))
}

/// Connects to `host:port`, verifies its certificate against `trust`, and returns the thumbprint of
/// the last certificate of the chain it presented.
pub async fn last_certificate_thumbprint(
    host: &str,
    port: u16,
    trust: &Trust,
    timeout: Duration,
) -> Result<Thumbprint, ThumbprintError> {
    let chain = presented_chain(host, port, trust, timeout).await?;
    chain
        .last()
        .map(|der| Thumbprint::of_der(der))
        .ok_or_else(|| ThumbprintError::NoCertificate {
            host: host.to_owned(),
            port,
        })
}

/// The chain `host:port` presents (leaf first), verified against `trust`.
pub async fn presented_chain(
    host: &str,
    port: u16,
    trust: &Trust,
    timeout: Duration,
) -> Result<Vec<CertificateDer<'static>>, ThumbprintError> {
    handshake_chain(
        host,
        port,
        Some(trust.verifier()?),
        trust.provider(),
        timeout,
    )
    .await
}

/// The chain `host:port` presents (leaf first), recorded without verifying it (the handshake's signatures
/// still are): for a diagnosis that judges the chain afterwards, against the roots that matter
/// (`irsa doctor`).
pub async fn recorded_chain(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<CertificateDer<'static>>, ThumbprintError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    handshake_chain(host, port, None, provider, timeout).await
}

/// A TLS handshake with `host:port` that records the chain presented, judged by `verifier` (`None`: accepted).
async fn handshake_chain(
    host: &str,
    port: u16,
    verifier: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    timeout: Duration,
) -> Result<Vec<CertificateDer<'static>>, ThumbprintError> {
    let server_name = ServerName::try_from(host.to_owned())
        .map_err(|_| ThumbprintError::ServerName(host.to_owned()))?;
    let recorder = Arc::new(RecordingVerifier {
        verifier,
        provider: provider.clone(),
        chain: Mutex::new(Vec::new()),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TrustError::from)?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    let connect_error = |reason: String, fix: &'static str| ThumbprintError::Connect {
        host: host.to_owned(),
        port,
        reason,
        fix,
    };
    const REACH: &str = "check that the issuer is reachable over HTTPS from here";
    let handshake = async {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| connect_error(e.to_string(), REACH))?;
        connector.connect(server_name, tcp).await.map_err(|e| {
            let untrusted = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
            if untrusted {
                connect_error(
                    format!("TLS: {e}"),
                    "for a private CA pass --ca-file with it, or give --thumbprint HEX",
                )
            } else {
                connect_error(format!("TLS: {e}"), REACH)
            }
        })
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| connect_error(format!("no TLS handshake within {timeout:?}"), REACH))??;
    let chain = std::mem::take(&mut *recorder.chain.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(chain)
}

/// Verifies like webpki (or, without a verifier, accepts the chain and checks only the handshake's
/// signatures) and remembers what the server presented.
#[derive(Debug)]
struct RecordingVerifier {
    verifier: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = match &self.verifier {
            Some(verifier) => verifier.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )?,
            None => ServerCertVerified::assertion(),
        };
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.chain.lock().unwrap_or_else(|p| p.into_inner()) = chain;
        Ok(verified)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_specs() {
        assert_eq!(
            "auto".parse::<ThumbprintSpec>().unwrap(),
            ThumbprintSpec::Auto
        );
        assert_eq!(
            "none".parse::<ThumbprintSpec>().unwrap(),
            ThumbprintSpec::None
        );
        let upper = "9E:99:A4:8A:99:60:B1:49:26:BB:7F:3B:02:E2:2D:A2:B0:AB:72:80";
        assert_eq!(
            upper.parse::<ThumbprintSpec>().unwrap(),
            ThumbprintSpec::Given(Thumbprint(
                "9e99a48a9960b14926bb7f3b02e22da2b0ab7280".to_owned()
            ))
        );
        for bad in ["", "abc", &"g".repeat(40), &"a".repeat(41), "AUTO"] {
            assert!(bad.parse::<ThumbprintSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn of_der_is_lowercase_sha1() {
        // SHA-1("abc"), the FIPS 180 test vector.
        assert_eq!(
            Thumbprint::of_der(b"abc").as_str(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[tokio::test]
    async fn resolve_without_network() {
        let trust = Trust::load(None).unwrap();
        let t = |s: &str| s.parse::<ThumbprintSpec>().unwrap();
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let none = resolve(&[t("none")], &[], &trust, Duration::from_secs(1)).await;
        assert_eq!(none.unwrap(), None);
        assert!(matches!(
            resolve(&[t("none"), t(&a)], &[], &trust, Duration::from_secs(1)).await,
            Err(ThumbprintError::NoneWithOthers)
        ));
        let given = resolve(&[t(&a), t(&b), t(&a)], &[], &trust, Duration::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(given, vec![Thumbprint(a.clone()), Thumbprint(b)]);
        let six: Vec<_> = (0..6).map(|i| t(&format!("{i}").repeat(40))).collect();
        assert!(matches!(
            resolve(&six, &[], &trust, Duration::from_secs(1)).await,
            Err(ThumbprintError::TooMany(6))
        ));
    }
}
