//! Sign latency as kube-apiserver sees it: one `Sign` at a time, the apiserver's claims in, header and
//! signature out, p50/p99 over many samples (a plain binary: percentiles, which criterion does not report).
//!
//! - file source: the signer's gRPC service over its unix socket, called with a tonic client as the apiserver
//!   calls it, RSA 2048 and P-256 (the issuer's fixture keys);
//! - KMS source: `KmsKey::sign`, and the same key through the service over the socket, against moto's KMS when `IRSA_MOTO_ENDPOINT=http://127.0.0.1:PORT` is set
//!   (bench/run.sh starts moto). moto is a local Python emulator: its numbers are the signer's overhead plus
//!   the emulator, not AWS; real KMS adds a network round trip of milliseconds.
//!
//! `cargo bench -p irsa-signer --bench sign`; `IRSA_BENCH_SIGN_SAMPLES` (default 2000; KMS takes a fifth).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irsa_signer::kms::{KmsKey, KmsKeySet, KmsKeySpec};
use irsa_signer::live::Live;
use irsa_signer::proto::SignJwtRequest;
use irsa_signer::rotation::Policy;
use irsa_signer::service::Signer;
use irsa_signer::source::Key;
use irsa_signer::{jwt, reload, socket};

/// The claims of a pod's projected token as kube-apiserver 1.34 builds them (about 600 bytes of JSON).
const CLAIMS: &str = r#"{"aud":["sts.amazonaws.com"],"exp":1795000000,"iat":1794913600,"iss":"https://oidc.example.com/cluster","jti":"5b0f3d2c-7a41-4e0b-9f6e-2c7d1a9e8b35","kubernetes.io":{"namespace":"payments","node":{"name":"ip-10-0-12-34.eu-west-1.compute.internal","uid":"0c9a7e1f-3b2d-4c5e-8f6a-1d2e3f4a5b6c"},"pod":{"name":"api-7d9f8b6c5d-x2x4q","uid":"a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"},"serviceaccount":{"name":"api","uid":"f0e1d2c3-b4a5-4968-8776-655443322110"},"warnafter":1794917207},"nbf":1794913600,"sub":"system:serviceaccount:payments:api"}"#;

/// Samples taken before measuring: connections, caches and the allocator settle.
const WARM_UP: usize = 50;

#[tokio::main]
async fn main() -> Result<()> {
    // cargo passes `--bench`; nothing else is meant for this binary.
    let samples: usize = match std::env::var("IRSA_BENCH_SIGN_SAMPLES") {
        Ok(n) => n.parse().context("IRSA_BENCH_SIGN_SAMPLES")?,
        Err(_) => 2000,
    };
    let claims = URL_SAFE_NO_PAD.encode(CLAIMS);
    println!(
        "one Sign at a time, {}-byte claims (base64url)",
        claims.len()
    );
    println!(
        "{:<50} {:>8} {:>10} {:>10} {:>10}",
        "source", "samples", "p50", "p99", "max"
    );

    for (name, fixture) in [("RSA 2048", "rsa2048.key"), ("P-256", "p256.key")] {
        let stats = file_source(fixture, &claims, samples).await?;
        stats.print(&format!("file, {name}, gRPC over the unix socket"));
    }

    match std::env::var("IRSA_MOTO_ENDPOINT") {
        Err(_) => println!(
            "kms: skipped (set IRSA_MOTO_ENDPOINT=http://127.0.0.1:PORT, a running moto_server)"
        ),
        Ok(endpoint) => {
            for (name, spec) in [
                ("RSA 2048", KmsKeySpec::Rsa2048),
                ("P-256", KmsKeySpec::EccNistP256),
            ] {
                let key = kms_key(&endpoint, spec).await?;
                let stats = kms_source(&key, &claims, samples.div_ceil(5)).await?;
                stats.print(&format!("KMS (moto), {name}, KmsKey::sign"));
                let stats = over_socket(vec![Arc::new(key)], &claims, samples.div_ceil(5)).await?;
                stats.print(&format!("KMS (moto), {name}, gRPC over the unix socket"));
            }
            println!(
                "moto is a local emulator: the KMS rows are the signer's overhead plus moto, not AWS KMS \
                 (which adds a network round trip of milliseconds)"
            );
        }
    }
    Ok(())
}

/// The file source: a key directory, the signer served on a socket, a client calling `Sign`.
async fn file_source(fixture: &str, claims: &str, samples: usize) -> Result<Stats> {
    let dir = tempfile::tempdir()?;
    std::fs::copy(fixture_path(fixture), dir.path().join("sa.key"))
        .with_context(|| format!("copying fixture {fixture}"))?;
    over_socket(reload::load_dir(dir.path())?, claims, samples).await
}

/// `keys` served by the signer's gRPC service on a socket, a client calling `Sign` as the apiserver does.
async fn over_socket(keys: Vec<Arc<dyn Key>>, claims: &str, samples: usize) -> Result<Stats> {
    let dir = tempfile::tempdir()?;
    let policy = Policy {
        pre_publish: Duration::ZERO,
        max_token_expiration: Duration::from_secs(7200),
        margin: Duration::ZERO,
    };
    let live = Live::new(keys, policy, SystemTime::now())?;
    let path = dir.path().join("signer.sock");
    let listener = socket::bind(&path)?;
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(Signer::new(Arc::new(live), 7200, 30).into_server())
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    // The client the issuer uses, dialled as kube-apiserver dials (authority `localhost`).
    let mut client = irsa_externaljwt::connect(&path).await?;
    let mut sign = async || -> Result<()> {
        let signed = client
            .sign(SignJwtRequest {
                claims: claims.to_string(),
            })
            .await?
            .into_inner();
        if signed.signature.is_empty() {
            bail!("an empty signature");
        }
        Ok(())
    };
    let stats = measure(samples, &mut sign).await;
    server.abort();
    stats
}

/// A KMS key created in moto for this run, in a set of its own (moto may be shared with other runs).
async fn kms_key(endpoint: &str, spec: KmsKeySpec) -> Result<KmsKey> {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "bench"))
        .build();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let set = KmsKeySet::new(
        aws_sdk_kms::Client::from_conf(config),
        &format!("bench-sign-{}-{nanos}", std::process::id()),
    )?;
    Ok(set.create(spec).await?)
}

/// The KMS source through the library: `KmsKey::sign` over the JWS signing input, no socket.
async fn kms_source(key: &KmsKey, claims: &str, samples: usize) -> Result<Stats> {
    // What the service does per Sign: build the signing input, then sign it.
    let mut sign = async || -> Result<()> {
        let input = jwt::signing_input(key.header(), claims);
        let signature = key.sign(input.as_bytes()).await?;
        if signature.is_empty() {
            bail!("an empty signature");
        }
        Ok(())
    };
    measure(samples, &mut sign).await
}

/// Runs `op` [`WARM_UP`] times unmeasured, then `samples` times, one after another.
async fn measure(samples: usize, op: &mut impl AsyncFnMut() -> Result<()>) -> Result<Stats> {
    for _ in 0..WARM_UP {
        op().await?;
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        op().await?;
        times.push(started.elapsed());
    }
    Ok(Stats::of(times))
}

/// Percentiles of a run.
struct Stats {
    samples: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    /// Nearest-rank percentiles of `times` (not empty).
    fn of(mut times: Vec<Duration>) -> Stats {
        times.sort_unstable();
        let rank = |p: usize| times[(times.len() * p).div_ceil(100).max(1) - 1];
        Stats {
            samples: times.len(),
            p50: rank(50),
            p99: rank(99),
            max: times[times.len() - 1],
        }
    }

    fn print(&self, source: &str) {
        let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
        println!(
            "{source:<50} {:>8} {:>10} {:>10} {:>10}",
            self.samples,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        );
    }
}

/// A key of `issuer/tests/fixtures/` (made with openssl).
fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../issuer/tests/fixtures")
        .join(name)
}
