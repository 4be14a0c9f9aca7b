//! The serving runtime over real TLS: certificate reload through a Secret-style `..data` symlink swap, the
//! admin port, and a graceful drain.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use irsa_serve::tls::{ReloadingConfig, TlsFiles};
use irsa_serve::{Readiness, Shutdown, admin, serve};
use irsa_testing::pki::{Ca, LOOPBACK, Leaf};

/// Writes a Kubernetes Secret-volume layout: `<dir>/..<ts>/{tls.crt,tls.key}`, `..data -> ..<ts>`, and
/// `tls.crt -> ..data/tls.crt`. Calling it again swaps `..data` atomically, as the kubelet does.
fn write_secret_volume(dir: &Path, generation: u32, cert: &str, key: &str) {
    let data = dir.join(format!("..2026_11_22_{generation}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tls.crt"), cert).unwrap();
    std::fs::write(data.join("tls.key"), key).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(data.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for name in ["tls.crt", "tls.key"] {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
}

/// The first generation of a Secret volume in `dir` holding `leaf`, and its file paths.
fn secret_volume(dir: &Path, leaf: &Leaf) -> TlsFiles {
    write_secret_volume(dir, 1, &leaf.cert_pem, &leaf.key_pem);
    TlsFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    }
}

/// GET `url` on a new connection (so with the certificate served now), trusting only `ca`.
async fn fetch(ca: &Ca, url: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap()])
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
}

async fn start(
    router: Router,
    tls: Option<TlsFiles>,
    shutdown: Shutdown,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = tls.map(|files| ReloadingConfig::new(files).unwrap());
    let handle = tokio::spawn(serve(listener, router, tls, shutdown));
    (addr, handle)
}

fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[tokio::test]
async fn certificate_swapped_through_data_symlink_is_served_to_the_next_connection() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Ca::new("old-ca"), Ca::new("new-ca"));
    let files = secret_volume(dir.path(), &old_ca.leaf(LOOPBACK));
    let router = Router::new().route("/", get(|| async { "hello" }));
    let (addr, _server) = start(router, Some(files), Shutdown::new(Duration::from_secs(1))).await;
    let url = format!("https://{addr}/");

    let hello = fetch(&old_ca, &url).await.unwrap().text().await.unwrap();
    assert_eq!(hello, "hello");
    assert!(
        fetch(&new_ca, &url).await.is_err(),
        "the new CA must not verify the old certificate"
    );

    let renewed = new_ca.leaf(LOOPBACK);
    write_secret_volume(dir.path(), 2, &renewed.cert_pem, &renewed.key_pem);
    let hello = fetch(&new_ca, &url).await.unwrap().text().await.unwrap();
    assert_eq!(hello, "hello");
    assert!(
        fetch(&old_ca, &url).await.is_err(),
        "the old certificate must no longer be served"
    );
}

/// The `..._expiry_timestamp_seconds` sample of `registry`'s text exposition.
fn expiry_sample(registry: &prometheus_client::registry::Registry) -> Option<i64> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find_map(|line| {
            line.strip_prefix("irsa_test_serving_certificate_expiry_timestamp_seconds ")
        })
        .map(|value| value.parse().unwrap())
}

#[test]
fn the_expiry_metric_follows_the_certificate_in_use() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("ca");
    let files = secret_volume(dir.path(), &ca.leaf_expiring(LOOPBACK, 2031, 5, 17));
    let mut registry = prometheus_client::registry::Registry::default();
    let config = ReloadingConfig::new(files)
        .unwrap()
        .with_expiry_metric(registry.sub_registry_with_prefix("irsa_test"));
    let may_2031 = rcgen::date_time_ymd(2031, 5, 17).unix_timestamp();
    assert_eq!(expiry_sample(&registry), Some(may_2031));

    // Renewed: the metric moves when the server takes the new pair up (the next connection).
    let renewed = ca.leaf_expiring(LOOPBACK, 2032, 1, 2);
    write_secret_volume(dir.path(), 2, &renewed.cert_pem, &renewed.key_pem);
    let _ = config.current();
    let january_2032 = rcgen::date_time_ymd(2032, 1, 2).unix_timestamp();
    assert_eq!(expiry_sample(&registry), Some(january_2032));

    // A broken update is not served, so it does not move the metric either.
    write_secret_volume(dir.path(), 3, "not a certificate", &renewed.key_pem);
    let _ = config.current();
    assert_eq!(expiry_sample(&registry), Some(january_2032));
}

#[tokio::test]
async fn a_broken_update_keeps_the_previous_certificate() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("ca");
    let leaf = ca.leaf(LOOPBACK);
    let files = secret_volume(dir.path(), &leaf);
    let (addr, _server) = start(
        Router::new().route("/", get(|| async { "ok" })),
        Some(files),
        Shutdown::new(Duration::from_secs(1)),
    )
    .await;
    let url = format!("https://{addr}/");
    let first = fetch(&ca, &url).await.unwrap();
    assert_eq!(first.text().await.unwrap(), "ok");
    write_secret_volume(dir.path(), 2, "not a certificate", &leaf.key_pem);
    let response = fetch(&ca, &url).await.unwrap();
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn unusable_files_fail_at_start() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), "garbage").unwrap();
    std::fs::write(dir.path().join("tls.key"), "garbage").unwrap();
    let files = TlsFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    let Err(err) = ReloadingConfig::new(files) else {
        panic!("garbage files loaded");
    };
    assert!(err.to_string().contains("no PEM CERTIFICATE"), "{err}");

    let missing = TlsFiles {
        cert: dir.path().join("absent.crt"),
        key: dir.path().join("tls.key"),
    };
    let Err(err) = ReloadingConfig::new(missing) else {
        panic!("a missing file loaded");
    };
    assert!(err.to_string().contains("absent.crt"), "{err}");
}

#[tokio::test]
async fn admin_port_reports_liveness_readiness_and_metrics() {
    let mut registry = prometheus_client::registry::Registry::default();
    let counter = prometheus_client::metrics::counter::Counter::<u64>::default();
    registry.register(
        "irsa_test_events",
        "Events seen by the test",
        counter.clone(),
    );
    counter.inc();
    let readiness = Readiness::new();
    let router = admin::router(std::sync::Arc::new(registry), readiness.clone());
    let (addr, _server) = start(router, None, Shutdown::new(Duration::from_secs(1))).await;
    let http = reqwest::Client::new();
    let get = |path: &'static str| http.get(format!("http://{addr}{path}")).send();

    assert_eq!(get("/livez").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 503);
    readiness.set(true);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("irsa_test_events_total 1"), "{metrics}");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_then_returns() {
    let router = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        }),
    );
    let shutdown = Shutdown::new(Duration::from_secs(5));
    let (addr, server) = start(router, None, shutdown.clone()).await;
    let request = tokio::spawn(async move {
        reqwest::get(format!("http://{addr}/slow"))
            .await?
            .text()
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.trigger();
    assert_eq!(request.await.unwrap().unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("server returns after the drain")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}
