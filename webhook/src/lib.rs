//! The irsa mutating admission webhook.
//!
//! - [`mutate`] is the pure core: the pod + ServiceAccount view + Namespace view + config -> JSON Patch and
//!   warnings. The pod's env, mounts and volume are built there (`Settings::inject`), with
//!   [`session_name`] (`AWS_ROLE_SESSION_NAME` from a template) and [`container_roles`] (a pod's
//!   `container-role-arns`) and [`legacy`] (kiam's and kube2iam's pod annotations) as pure helpers.
//! - [`policy`] decides, from what the mutation and the lookups report, whether a pod is admitted or denied
//!   (`--on-lookup-failure`, `--on-forbidden-role`).
//! - [`review`] decodes and encodes `admission.k8s.io/v1` AdmissionReviews; [`pod_decode`] decodes only the
//!   parts of the pod the mutation reads into the borrowed [`pod::Pod`], with [`json_reader`] skipping the
//!   rest.
//! - [`cache`], [`watcher`] and [`lookup`] know ServiceAccounts and Namespaces: an index fed by metadata
//!   watches, with a coalesced, rate-limited direct GET on a miss.
//! - [`routes`] is `POST /mutate`; [`cmd::serve`] wires it all into `irsa webhook serve`; [`cmd::mutate`] is
//!   `irsa webhook mutate`.

pub mod cache;
pub mod cmd;
pub mod config;
pub mod container_roles;
pub mod json_reader;
pub mod legacy;
pub mod lookup;
pub mod metrics;
pub mod mutate;
pub mod patch;
pub mod pod;
pub mod pod_decode;
pub mod policy;
pub mod review;
pub mod routes;
pub mod self_signed;
pub mod session_name;
pub mod views;
pub mod warning;
pub mod watcher;
