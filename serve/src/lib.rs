//! The serving runtime shared by irsa's servers (the admission webhook and the OIDC issuer).
//!
//! One concern per module: [`tls`] re-reads certificate files per accepted connection so a Kubernetes Secret
//! update (a `..data` symlink swap) is served without a restart; [`serve`] runs an axum router over HTTPS or
//! plain HTTP and drains it gracefully; [`admin`] is the separate admin port (`/livez`, `/readyz`,
//! `/metrics`); [`shutdown`] turns SIGTERM into a drain and a second signal into an immediate exit;
//! [`logging`] sets up `tracing` from `--log-format` / `--log-level`; [`certificate`] reads a certificate's
//! expiry; [`connection`] serves one connection within its header, body and idle timeouts and closes it so
//! that a refusal reaches the client; [`body_limit`] refuses a body too large from its `Content-Length`.
//! [`args`] holds the flag groups every server flattens into its command, and [`runtime`] the one
//! start-up they share: listeners, registry, readiness, signals, the admin and the main server, drain.

pub mod admin;
pub mod args;
pub mod body_limit;
pub mod certificate;
pub mod connection;
pub mod duration;
pub mod kube_client;
pub mod logging;
pub mod readiness;
pub mod runtime;
mod server;
pub mod shutdown;
pub mod tls;

pub use readiness::Readiness;
pub use runtime::{Listeners, Runtime};
pub use server::{serve, serve_with};
pub use shutdown::Shutdown;
