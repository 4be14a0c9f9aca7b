//! The TLS test server the serve/ tests share: `serve_with` on a loopback port, with a throw-away CA, its
//! closed connections counted.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use irsa_serve::args::ConnectionArgs;
use irsa_serve::connection::{ClosedConnections, Connections};
use irsa_serve::tls::{ReloadingConfig, TlsFiles};
use irsa_serve::{Shutdown, serve_with};
use irsa_testing::pki::{Ca, LOOPBACK};

pub struct Server {
    pub addr: SocketAddr,
    pub ca: Ca,
    pub closed: ClosedConnections,
    _dir: tempfile::TempDir,
}

/// A TLS server of `router` with `limits`, its closed connections counted.
pub async fn start(router: Router, limits: ConnectionArgs) -> Server {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("ca");
    let leaf = ca.leaf(LOOPBACK);
    let files = TlsFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    std::fs::write(&files.cert, &leaf.cert_pem).unwrap();
    std::fs::write(&files.key, &leaf.key_pem).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let closed = ClosedConnections::default();
    tokio::spawn(serve_with(
        listener,
        router,
        Some(ReloadingConfig::new(files).unwrap()),
        Shutdown::new(Duration::from_secs(1)),
        Connections {
            limits,
            closed: closed.clone(),
        },
    ));
    Server {
        addr,
        ca,
        closed,
        _dir: dir,
    }
}
