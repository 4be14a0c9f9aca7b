//! `irsa issuer serve` over real TLS: documents, headers, conditional requests, routing, reload, admin.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Server, fixture, kid_of, kids, wait_for_reload_errors};
use irsa_serve::args::TlsArgs;
use irsa_serve::{Readiness, Shutdown};
use irsa_testing::pki::Ca;
use irsa_testing::wait::{Check, wait_until};
use reqwest::StatusCode;
use serde_json::Value;

struct Tls {
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and a leaf for 127.0.0.1 signed by it; the chain file holds leaf then CA.
fn make_tls(dir: &Path) -> Tls {
    let ca = Ca::new("irsa issuer test CA");
    let leaf = ca.leaf(&["127.0.0.1"]);
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    std::fs::write(&cert, &leaf.chain_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    Tls {
        ca_pem: ca.pem(),
        cert,
        key,
    }
}

struct Running {
    base: String,
    admin: String,
    client: reqwest::Client,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.unwrap().unwrap();
    }
}

/// Starts a server for `issuer_path` (appended to https://127.0.0.1:PORT) on `key_files`.
async fn start(issuer_path: &str, key_files: Vec<PathBuf>, dir: tempfile::TempDir) -> Running {
    let tls = make_tls(dir.path());
    let mut server = Server::bind(|addr| format!("https://{addr}{issuer_path}")).await;
    let base = format!("https://{}", server.args.listen.listen);
    let admin = server.admin_base();
    server.args.keys.public_key_files = key_files;
    server.args.tls = TlsArgs {
        tls_cert_file: Some(tls.cert.clone()),
        tls_key_file: Some(tls.key.clone()),
    };
    server.args.reload_interval = Some(Duration::from_millis(100));
    server.args.drain.drain_timeout = Duration::from_secs(2);
    let (shutdown, task) = server.spawn(Readiness::new());
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(tls.ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    Running {
        base,
        admin,
        client,
        shutdown,
        task,
        _dir: dir,
    }
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

// Which path answers, with which headers, and how conditional and HEAD requests are answered is routes.rs's
// (the router in process); here, that the documents are served over TLS, and what the admin port says.
#[tokio::test]
async fn serves_over_tls_and_reports_on_the_admin_port() {
    let s = start(
        "/some/prefix",
        vec![fixture("rsa2048.pub"), fixture("p256.crt")],
        tempfile::tempdir().unwrap(),
    )
    .await;

    let r = s.get("/some/prefix/openid/v1/jwks").await;
    assert_eq!(r.status(), StatusCode::OK);
    let jwks_etag = header(&r, "etag").to_string();
    // A conditional request, for the request counter below.
    let r = s
        .client
        .get(format!("{}/some/prefix/openid/v1/jwks", s.base))
        .header("if-none-match", &jwks_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // The admin port.
    let admin = reqwest::Client::new();
    let ready = admin
        .get(format!("{}/readyz", s.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let metrics = admin
        .get(format!("{}/metrics", s.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("irsa_issuer_keys_published 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"irsa_issuer_requests_total{route="jwks",status="304"} 1"#),
        "{metrics}"
    );
    // The serving certificate's expiry (rcgen's default notAfter: 4096-01-01), for alerting.
    assert!(
        metrics.contains("irsa_issuer_serving_certificate_expiry_timestamp_seconds 67090118400"),
        "{metrics}"
    );

    s.stop().await;
}

async fn kids_served(s: &Running) -> Vec<String> {
    kids(&s.get("/openid/v1/jwks").await.json().await.unwrap())
}

async fn wait_for_kids(s: &Running, expected: &[String]) {
    wait_until(
        Duration::from_secs(10),
        "the expected kids are served",
        || async {
            let kids = kids_served(s).await;
            Check::ready_if(kids == expected, || {
                format!("served {kids:?}, expected {expected:?}")
            })
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn key_changes_are_served_without_restart_and_bad_files_keep_the_last_good_set() {
    let dir = tempfile::tempdir().unwrap();
    // The kubelet's layout for a mounted Secret: keys.pem -> ..data/keys.pem, ..data -> a timestamped dir.
    let v1 = dir.path().join("..v1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::copy(fixture("rsa2048.pub"), v1.join("keys.pem")).unwrap();
    std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/keys.pem", dir.path().join("keys.pem")).unwrap();
    let keys_file = dir.path().join("keys.pem");
    let other = dir.path().join("other.pem");
    std::fs::copy(fixture("p256.pub"), &other).unwrap();
    let root = dir.path().to_path_buf();
    let s = start("", vec![keys_file, other.clone()], dir).await;
    let (rsa, p256, p384) = (
        kid_of("rsa2048.pub"),
        kid_of("p256.pub"),
        kid_of("p384.pub"),
    );
    assert_eq!(kids_served(&s).await, [rsa.clone(), p256.clone()]);
    let etag_before = header(&s.get("/openid/v1/jwks").await, "etag").to_string();

    // Rotation: a new key added next to the old one, by a symlink swap.
    let v2 = root.join("..v2");
    std::fs::create_dir(&v2).unwrap();
    let mut pem = std::fs::read(fixture("rsa2048.pub")).unwrap();
    pem.extend(std::fs::read(fixture("p384.crt")).unwrap());
    std::fs::write(v2.join("keys.pem"), pem).unwrap();
    std::os::unix::fs::symlink("..v2", root.join("..data.tmp")).unwrap();
    std::fs::rename(root.join("..data.tmp"), root.join("..data")).unwrap();
    wait_for_kids(&s, &[rsa.clone(), p384.clone(), p256.clone()]).await;
    let r = s.get("/openid/v1/jwks").await;
    assert_ne!(
        header(&r, "etag"),
        etag_before,
        "a new JWKS gets a new ETag"
    );
    let discovery: Value = s
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256", "ES384", "RS256"])
    );

    // A broken file is an error: the last good set stays.
    std::fs::write(&other, "garbage").unwrap();
    wait_for_reload_errors(&s.admin, "key_files", 1).await;
    assert_eq!(
        kids_served(&s).await,
        [rsa.clone(), p384.clone(), p256.clone()]
    );

    // Fixed again: picked up.
    std::fs::copy(fixture("p521.pub"), &other).unwrap();
    wait_for_kids(&s, &[rsa, p384, kid_of("p521.pub")]).await;
    s.stop().await;
}

#[tokio::test]
async fn a_token_verifies_against_the_served_jwks() {
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::JwkSet};
    let s = start(
        "/cluster",
        vec![fixture("rsa3072.key"), fixture("p256.sec1.key")],
        tempfile::tempdir().unwrap(),
    )
    .await;
    let issuer = format!("{}/cluster", s.base);
    let discovery: Value = s
        .get("/cluster/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    let jwks_path = discovery["jwks_uri"]
        .as_str()
        .unwrap()
        .strip_prefix(&s.base)
        .unwrap()
        .to_string();
    let set: JwkSet = s.get(&jwks_path).await.json().await.unwrap();
    let claims = serde_json::json!({"iss": issuer, "sub": "system:serviceaccount:ns:sa", "aud": ["sts.amazonaws.com"], "exp": 4_000_000_000u64});
    for (file, alg) in [
        ("rsa3072.key", Algorithm::RS256),
        ("p256.key", Algorithm::ES256),
    ] {
        let pem = std::fs::read(fixture(file)).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            _ => EncodingKey::from_ec_pem(&pem),
        }
        .unwrap();
        let kid = kid_of(file);
        let token = jsonwebtoken::encode(
            &Header {
                kid: Some(kid.clone()),
                ..Header::new(alg)
            },
            &claims,
            &key,
        )
        .unwrap();
        let mut v = Validation::new(alg);
        v.set_audience(&["sts.amazonaws.com"]);
        v.set_issuer(&[&issuer]);
        let jwk = set.find(&kid).unwrap();
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &v).unwrap();
    }
    s.stop().await;
}

#[tokio::test]
async fn refuses_to_start_on_bad_input() {
    let run = |issuer: &'static str, files: Vec<PathBuf>, plain: bool| async move {
        let mut server = Server::bind(|_| issuer.to_string()).await;
        server.args.keys.public_key_files = files;
        server.args.plain_http = plain;
        let (_shutdown, task) = server.spawn(Readiness::new());
        task.await.unwrap().unwrap_err().to_string()
    };
    let key = || vec![fixture("rsa2048.pub")];
    assert!(
        run("http://127.0.0.1/x", key(), false)
            .await
            .contains("https://")
    );
    assert!(run("https://h/x?y", key(), true).await.contains("query"));
    assert!(run("https://h/x#y", key(), true).await.contains("fragment"));
    assert!(
        run("https://h/x", key(), false)
            .await
            .contains("--tls-cert-file")
    );
    assert!(
        run("https://h/x", vec![fixture("missing.pem")], true)
            .await
            .contains("missing.pem")
    );
    assert!(
        run("https://h/x", vec![fixture("rsa1024.pub")], true)
            .await
            .contains("1024")
    );
}

// Where the JWKS is answered for a jwks_uri elsewhere is routes.rs's; here, plain HTTP and the flags reaching
// the documents.
#[tokio::test]
async fn plain_http_for_tests() {
    let mut server = Server::bind(|addr| format!("http://{addr}")).await;
    let base = server.args.issuer_url.clone();
    server.args.keys.public_key_files = vec![fixture("p256.pub")];
    server.args.jwks_uri = Some("https://cdn.example/keys/jwks.json".into());
    server.args.plain_http = true;
    server.args.max_age = 60;
    let (shutdown, task) = server.spawn(Readiness::new());
    let discovery = reqwest::get(format!("{base}/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert_eq!(header(&discovery, "cache-control"), "public, max-age=60");
    let discovery: Value = discovery.json().await.unwrap();
    assert_eq!(discovery["jwks_uri"], "https://cdn.example/keys/jwks.json");
    shutdown.trigger();
    task.await.unwrap().unwrap();
}
