//! The irsa mutating admission webhook.
//!
//! - [`mutate`] is the pure core: pod JSON + ServiceAccount view + Namespace view + config -> JSON Patch and
//!   warnings. The pod's env, mounts and volume are built there.
//! - [`review`] decodes and encodes `admission.k8s.io/v1` AdmissionReviews.
//! - [`cache`], [`watcher`] and [`lookup`] know ServiceAccounts and Namespaces: an index fed by metadata
//!   watches, with a coalesced, rate-limited direct GET on a miss.
//! - [`server`] is `POST /mutate`; [`serve`] wires it all into `irsa webhook serve`; [`offline`] is
//!   `irsa webhook mutate`.

pub mod cache;
pub mod config;
pub mod lookup;
pub mod metrics;
pub mod mutate;
pub mod offline;
pub mod patch;
pub mod pod;
pub mod review;
pub mod self_signed;
pub mod serve;
pub mod server;
pub mod views;
pub mod warning;
pub mod watcher;
