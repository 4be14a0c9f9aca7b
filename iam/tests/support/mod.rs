//! Test helpers: a private CA, a tiny HTTPS server that serves canned documents, a real RSA JWK, and
//! re-running one test in a child process with its own environment (the library reads AWS settings
//! from the environment, and tests may not change their own).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irsa_testing::pki::{Ca, LOOPBACK};
use rcgen::KeyPair;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A CA and a leaf for 127.0.0.1 and localhost, the CA also written to a PEM file.
pub struct Pki {
    pub ca_der: CertificateDer<'static>,
    pub leaf_der: CertificateDer<'static>,
    leaf_key: PrivatePkcs8KeyDer<'static>,
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ca = Ca::new("irsa test CA");
        let leaf = ca.leaf(LOOPBACK);
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Pki {
            ca_der: ca.der(),
            leaf_der: leaf.cert_der,
            leaf_key: leaf.key_der,
            ca_file,
            _dir: dir,
        }
    }

    fn server_config(&self, chain: Vec<CertificateDer<'static>>) -> rustls::ServerConfig {
        let key = PrivateKeyDer::Pkcs8(self.leaf_key.clone_key());
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
    }
}

/// One canned answer.
#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Canned {
    pub fn json(content_type: &str, v: &Value) -> Canned {
        Canned {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: v.to_string().into_bytes(),
        }
    }
}

/// An HTTP/1.1-over-TLS server on 127.0.0.1 answering GETs from a table of paths.
pub struct TestServer {
    pub port: u16,
    routes: Arc<Mutex<HashMap<String, Canned>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Serves leaf + CA (the chain a thumbprint should end at the CA of).
    pub async fn start(pki: &Pki) -> TestServer {
        Self::start_with_chain(pki, vec![pki.leaf_der.clone(), pki.ca_der.clone()]).await
    }

    pub async fn start_with_chain(pki: &Pki, chain: Vec<CertificateDer<'static>>) -> TestServer {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(pki.server_config(chain)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Canned>>> = Arc::default();
        let table = routes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let table = table.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&request);
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let canned = table.lock().unwrap().get(&path).cloned();
                    let canned = canned.unwrap_or(Canned {
                        status: 404,
                        headers: vec![],
                        body: b"not found".to_vec(),
                    });
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        canned.status,
                        canned.body.len()
                    );
                    for (k, v) in &canned.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = tls.write_all(head.as_bytes()).await;
                    let _ = tls.write_all(&canned.body).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TestServer { port, routes, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn set(&self, path: &str, canned: Canned) {
        self.routes.lock().unwrap().insert(path.to_owned(), canned);
    }

    /// Serves a discovery document at `<issuer_path>/.well-known/openid-configuration` naming
    /// `issuer`, and `jwks` at `<issuer_path>/openid/v1/jwks`; returns the issuer URL.
    pub fn serve_issuer(&self, issuer_path: &str, issuer: Option<&str>, jwks: &Value) -> String {
        let url = self.url(issuer_path);
        let jwks_path = format!("{issuer_path}/openid/v1/jwks");
        self.set(
            &format!("{issuer_path}/.well-known/openid-configuration"),
            Canned::json(
                "application/json",
                &json!({
                    "issuer": issuer.unwrap_or(&url),
                    "jwks_uri": self.url(&jwks_path),
                    "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                }),
            ),
        );
        self.set(&jwks_path, Canned::json("application/jwk-set+json", jwks));
        url
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A JWKS with one real RSA-2048 public key, as kube-apiserver publishes it.
pub fn rsa_jwks() -> Value {
    let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    // For RSA, the raw public key is PKCS#1: SEQUENCE { INTEGER n, INTEGER e }.
    let raw = key.public_key_raw();
    let (seq, _) = der_tlv(raw, 0x30);
    let (n, rest) = der_tlv(seq, 0x02);
    let (e, _) = der_tlv(rest, 0x02);
    let unsigned = |b: &[u8]| b.strip_prefix(&[0]).unwrap_or(b).to_vec();
    json!({"keys": [{
        "use": "sig", "kty": "RSA", "kid": "test-key-1", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(unsigned(n)), "e": URL_SAFE_NO_PAD.encode(unsigned(e)),
    }]})
}

/// Splits one DER TLV with the expected tag: (contents, rest).
fn der_tlv(input: &[u8], tag: u8) -> (&[u8], &[u8]) {
    assert_eq!(input[0], tag, "unexpected DER tag");
    let (len, header) = match input[1] {
        l if l < 0x80 => (l as usize, 2),
        l => {
            let n = (l & 0x7f) as usize;
            let len = input[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| acc << 8 | *b as usize);
            (len, 2 + n)
        }
    };
    (&input[header..header + len], &input[header + len..])
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The variable a child process finds its role in.
pub const CHILD: &str = "IRSA_TEST_CHILD";

/// Whether this process is the child run of `test`.
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(test)
}

/// Runs the test `test` of this test binary again in a child with `env` (after `clear`, if set);
/// panics with its output unless it passes.
pub fn run_child(test: &str, clear: bool, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    if clear {
        cmd.env_clear();
    }
    cmd.env(CHILD, test);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child {test} failed:\n{text}");
    assert!(text.contains("1 passed"), "child ran no test:\n{text}");
    text
}
