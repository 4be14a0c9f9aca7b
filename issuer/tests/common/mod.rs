//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use irsa_issuer::cmd::serve::{ServeArgs, run_server};
use irsa_issuer::cmd::{KeyFileArgs, SignerArgs};
use irsa_serve::args::{AdminArgs, ConnectionArgs, DrainArgs, KubeArgs, ListenArgs, TlsArgs};
use irsa_serve::{Readiness, Shutdown};
use irsa_testing::wait::{Check, wait_until};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `(file, kid)` pairs that make.sh computed with openssl.
pub fn expected_kids() -> Vec<(String, String)> {
    std::fs::read_to_string(fixture("expected-kids.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (f, k) = l.split_once(' ').unwrap();
            (f.to_string(), k.to_string())
        })
        .collect()
}

/// The kid openssl computed for `file`.
pub fn kid_of(file: &str) -> String {
    expected_kids()
        .into_iter()
        .find(|(f, _)| f == file)
        .unwrap_or_else(|| panic!("{file} not in expected-kids.txt"))
        .1
}

/// `irsa_issuer_reload_errors_total{source=...}` from the admin port (0 while absent).
pub async fn reload_errors(admin_base: &str, source: &str) -> u64 {
    let text = reqwest::get(format!("{admin_base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("irsa_issuer_reload_errors_total{{source=\"{source}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Waits (up to 15 s) until the reload error count of `source` reaches `at_least`.
pub async fn wait_for_reload_errors(admin_base: &str, source: &str, at_least: u64) {
    let what = format!("{source} counts {at_least} reload errors");
    wait_until(Duration::from_secs(15), &what, || async {
        let count = reload_errors(admin_base, source).await;
        Check::ready_if(count >= at_least, || format!("{count} reload errors"))
    })
    .await
    .unwrap();
}

/// The kids of a JWKS document, in its order.
pub fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// `irsa issuer serve` on two 127.0.0.1 ports (the documents, the admin port), not started yet.
pub struct Server {
    /// Its arguments: the command line's defaults but a 1 s drain, no key source, no TLS; the test sets what
    /// it exercises.
    pub args: ServeArgs,
    /// The documents' listener.
    pub listener: TcpListener,
    /// The admin port's listener.
    pub admin: TcpListener,
}

impl Server {
    /// Binds the ports; `issuer_url` is made from the documents' address.
    pub async fn bind(issuer_url: impl FnOnce(SocketAddr) -> String) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let args = ServeArgs {
            issuer_url: issuer_url(listener.local_addr().unwrap()),
            keys: KeyFileArgs::default(),
            from_apiserver: false,
            signer: SignerArgs::default(),
            kube: KubeArgs::default(),
            jwks_uri: None,
            tls: TlsArgs::default(),
            plain_http: false,
            listen: ListenArgs {
                listen: listener.local_addr().unwrap(),
            },
            admin: AdminArgs {
                admin_listen: admin.local_addr().unwrap(),
            },
            max_age: 3600,
            reload_interval: None,
            drain: DrainArgs {
                drain_timeout: Duration::from_secs(1),
                shutdown_delay: Duration::ZERO,
            },
            connection: ConnectionArgs::default(),
        };
        Server {
            args,
            listener,
            admin,
        }
    }

    /// `http://` and the admin port's address.
    pub fn admin_base(&self) -> String {
        format!("http://{}", self.admin.local_addr().unwrap())
    }

    /// Runs `serve` until the returned [`Shutdown`] is triggered; `readiness` is the one it sets.
    pub fn spawn(self, readiness: Readiness) -> (Shutdown, JoinHandle<anyhow::Result<()>>) {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let shutdown = Shutdown::new(self.args.drain.drain_timeout);
        let task = tokio::spawn(run_server(
            self.args,
            self.listener,
            self.admin,
            shutdown.clone(),
            readiness,
        ));
        (shutdown, task)
    }
}
