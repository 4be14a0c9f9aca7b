//! The flag groups every irsa server shares, flattened into its command with `#[command(flatten)]`.
//!
//! A group defines a flag once: its name, its environment variable, its type and parser. What differs between
//! commands (the default port, a help line that names what is served, a rule that ties the flag to another of
//! the command's flags) is set by the command on its own struct with clap's `mut_arg`, so that
//! `irsa <command> --help` shows each command's own defaults. The address and drain groups give no default:
//! a command that forgets to set one gets a required flag, never another command's port.
//!
//! ```
//! use std::net::SocketAddr;
//!
//! use clap::Parser as _;
//! use irsa_serve::args::ListenArgs;
//!
//! #[derive(clap::Parser)]
//! #[command(mut_arg("listen", |a| a.required(false).default_value("0.0.0.0:8443")))]
//! struct Serve {
//!     #[command(flatten)]
//!     listen: ListenArgs,
//! }
//!
//! let serve = Serve::parse_from(["serve"]);
//! assert_eq!(serve.listen.listen, "0.0.0.0:8443".parse::<SocketAddr>().unwrap());
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::kube_client::{self, KubeClientError};
use crate::tls::TlsFiles;

/// The serving certificate and key (`--tls-cert-file`, `--tls-key-file`). Whether they are required, and
/// what replaces them (`--self-signed`, `--plain-http`), is the command's rule.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TlsArgs {
    /// Serving certificate chain (PEM, leaf first); re-read when it changes.
    #[arg(long, env = "IRSA_TLS_CERT_FILE", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// Serving private key (PEM); re-read when it changes.
    #[arg(long, env = "IRSA_TLS_KEY_FILE", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,
}

impl TlsArgs {
    /// The pair of files, when both flags are given.
    pub fn files(&self) -> Option<TlsFiles> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }
}

/// The address of the serving port (`--listen`); each command sets its default.
#[derive(Clone, Debug, clap::Args)]
pub struct ListenArgs {
    /// Address of the serving port.
    #[arg(long, env = "IRSA_LISTEN")]
    pub listen: SocketAddr,
}

/// The address of the admin port (`--admin-listen`); each command sets its default.
#[derive(Clone, Debug, clap::Args)]
pub struct AdminArgs {
    /// Address of the admin port (/livez, /readyz, /metrics; plain HTTP).
    #[arg(long, env = "IRSA_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
}

/// What a SIGTERM does: serve on, unready, for `--shutdown-delay`, then let in-flight requests finish for
/// `--drain-timeout` (each command sets its default).
#[derive(Clone, Debug, clap::Args)]
pub struct DrainArgs {
    /// How long in-flight requests may take to finish after SIGTERM (after --shutdown-delay).
    #[arg(long, env = "IRSA_DRAIN_TIMEOUT", value_parser = crate::duration::parse)]
    pub drain_timeout: Duration,
    /// After SIGTERM, how long to go on serving (accepting connections too) while already unready, before
    /// draining. Behind a Kubernetes Service, endpoints are removed a moment after a pod starts terminating:
    /// until kube-apiserver and load balancers have seen that, they still send new connections here, and a
    /// webhook that stopped accepting would be "failed open" (a pod admitted without credentials). The
    /// shipped manifests set 5s; 0 drains at once (a process outside a cluster).
    #[arg(long, env = "IRSA_SHUTDOWN_DELAY", value_name = "DURATION",
          value_parser = crate::duration::parse_allowing_zero, default_value = "0s")]
    pub shutdown_delay: Duration,
}

/// How long a client may take over each part of a connection, on the serving port (the same for every
/// command: the clients are Kubernetes' and AWS's, not the command's). Each timeout closes the connection and
/// counts it in `<prefix>_connections_closed_total{reason}` ([`crate::Runtime::limit_connections`]).
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct ConnectionArgs {
    /// How long a TLS handshake may take. Scanners and half-open connections get no further.
    #[arg(long, env = "IRSA_TLS_HANDSHAKE_TIMEOUT", value_name = "DURATION",
          value_parser = crate::duration::parse, default_value = "10s")]
    pub tls_handshake_timeout: Duration,

    /// How long a client may take to send a request's headers (HTTP/1.1), counted from their first byte, or
    /// from the handshake for a connection's first request. The apiserver and STS send them in one write;
    /// this only ever closes clients that trickle headers or connect and say nothing.
    #[arg(long, env = "IRSA_HEADER_READ_TIMEOUT", value_name = "DURATION",
          value_parser = crate::duration::parse, default_value = "10s")]
    pub header_read_timeout: Duration,

    /// How long a client may take to send a whole request body, from its headers; then 408 and the
    /// connection closes. An AdmissionReview is a few MiB at most, and the apiserver gives up on a webhook
    /// after 30s at most anyway.
    #[arg(long, env = "IRSA_BODY_READ_TIMEOUT", value_name = "DURATION",
          value_parser = crate::duration::parse, default_value = "30s")]
    pub body_read_timeout: Duration,

    /// How long a connection may wait, no request in progress, for its next request (HTTP/2: for a new
    /// stream) before it is closed (HTTP/2 with a GOAWAY). Longer than the 90s Go clients (the apiserver)
    /// keep an idle connection, so the client closes first and never sends a request into our close.
    #[arg(long, env = "IRSA_IDLE_TIMEOUT", value_name = "DURATION",
          value_parser = crate::duration::parse, default_value = "120s")]
    pub idle_timeout: Duration,

    /// How often an HTTP/2 connection is PINGed, so a peer that vanished (a node gone, a NAT entry dropped)
    /// is noticed while its connection looks open.
    #[arg(long, env = "IRSA_HTTP2_KEEP_ALIVE_INTERVAL", value_name = "DURATION",
          value_parser = crate::duration::parse, default_value = "20s")]
    pub http2_keep_alive_interval: Duration,

    /// How long an HTTP/2 PING may go unanswered before the connection is closed.
    #[arg(long, env = "IRSA_HTTP2_KEEP_ALIVE_TIMEOUT", value_name = "DURATION",
          value_parser = crate::duration::parse, default_value = "20s")]
    pub http2_keep_alive_timeout: Duration,
}

impl Default for ConnectionArgs {
    /// The flags' defaults (tests and embedding; a unit test keeps the two in step).
    fn default() -> Self {
        Self {
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            http2_keep_alive_interval: Duration::from_secs(20),
            http2_keep_alive_timeout: Duration::from_secs(20),
        }
    }
}

/// Where the Kubernetes client's configuration comes from (`--kubeconfig`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct KubeArgs {
    // The order is kube's `Config::infer` (kube 5): the kubeconfig first, the in-cluster configuration only
    // when there is none; so a pod with `$KUBECONFIG` set talks to that file's cluster, not its own.
    /// Kubeconfig file; by default `$KUBECONFIG` or `~/.kube/config`, then the in-cluster configuration.
    #[arg(long, env = "IRSA_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

impl KubeArgs {
    /// A client from `--kubeconfig`, or else the inferred configuration ([`kube_client::client`]).
    pub async fn client(&self) -> Result<kube::Client, KubeClientError> {
        kube_client::client(self.kubeconfig.as_deref()).await
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(
        mut_arg("listen", |a| a.required(false).default_value("0.0.0.0:8443")),
        mut_arg("admin_listen", |a| a.required(false).default_value("0.0.0.0:8081")),
        mut_arg("drain_timeout", |a| a.required(false).default_value("10s")),
    )]
    struct Serve {
        #[command(flatten)]
        tls: TlsArgs,
        #[command(flatten)]
        listen: ListenArgs,
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        drain: DrainArgs,
        #[command(flatten)]
        connection: ConnectionArgs,
    }

    #[derive(Debug, clap::Parser)]
    struct NoDefaults {
        #[command(flatten)]
        listen: ListenArgs,
    }

    #[test]
    fn groups_take_the_command_defaults_and_the_flags() {
        Serve::command().debug_assert();
        let serve = Serve::try_parse_from(["serve"]).unwrap();
        assert_eq!(serve.listen.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(serve.admin.admin_listen.to_string(), "0.0.0.0:8081");
        assert_eq!(serve.drain.drain_timeout, Duration::from_secs(10));
        assert_eq!(serve.drain.shutdown_delay, Duration::ZERO);
        assert!(serve.tls.files().is_none());
        assert!(serve.kube.kubeconfig.is_none());
        let help = Serve::command().render_long_help().to_string();
        for shown in [
            "[default: 0.0.0.0:8443]",
            "[default: 10s]",
            "IRSA_KUBECONFIG",
        ] {
            assert!(help.contains(shown), "{shown} missing from\n{help}");
        }

        let serve = Serve::try_parse_from([
            "serve",
            "--listen",
            "127.0.0.1:1",
            "--tls-cert-file",
            "c",
            "--tls-key-file",
            "k",
            "--drain-timeout",
            "500ms",
            "--shutdown-delay",
            "5s",
        ])
        .unwrap();
        assert_eq!(serve.listen.listen.to_string(), "127.0.0.1:1");
        assert_eq!(serve.drain.drain_timeout, Duration::from_millis(500));
        assert_eq!(serve.drain.shutdown_delay, Duration::from_secs(5));
        let files = serve.tls.files().unwrap();
        assert_eq!((files.cert, files.key), ("c".into(), "k".into()));

        // A command that sets no default gets a required flag, not some other command's port.
        assert!(NoDefaults::try_parse_from(["serve"]).is_err());
    }

    #[test]
    fn kubeconfig_help_gives_the_order_kube_infers_in() {
        let help = Serve::command().render_long_help().to_string();
        let kubeconfig = help
            .split("--kubeconfig <FILE>")
            .nth(1)
            .and_then(|rest| rest.split("[env: IRSA_KUBECONFIG=]").next())
            .unwrap_or_else(|| panic!("no --kubeconfig in\n{help}"));
        // kube's Config::infer reads $KUBECONFIG / ~/.kube/config first and falls back to in-cluster.
        let local = kubeconfig.find("~/.kube/config").expect(kubeconfig);
        let in_cluster = kubeconfig.find("in-cluster").expect(kubeconfig);
        assert!(
            local < in_cluster,
            "kubeconfig must come first: {kubeconfig}"
        );
        assert!(
            !kubeconfig.contains("in-cluster configuration, then"),
            "{kubeconfig}"
        );
    }

    #[test]
    fn connection_limits_default_to_the_flags_defaults_and_parse_durations() {
        let serve = Serve::try_parse_from(["serve"]).unwrap();
        assert_eq!(serve.connection, ConnectionArgs::default());
        let help = Serve::command().render_long_help().to_string();
        for shown in [
            "--header-read-timeout <DURATION>",
            "IRSA_BODY_READ_TIMEOUT",
            "[default: 120s]",
            "--http2-keep-alive-interval <DURATION>",
        ] {
            assert!(help.contains(shown), "{shown} missing from\n{help}");
        }
        let serve = Serve::try_parse_from([
            "serve",
            "--header-read-timeout",
            "300ms",
            "--idle-timeout",
            "2m",
        ])
        .unwrap();
        assert_eq!(
            serve.connection.header_read_timeout,
            Duration::from_millis(300)
        );
        assert_eq!(serve.connection.idle_timeout, Duration::from_secs(120));
        assert!(Serve::try_parse_from(["serve", "--body-read-timeout", "0s"]).is_err());
    }
}
