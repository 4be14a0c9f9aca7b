//! The IAM side of irsa: register the cluster's issuer as an IAM OIDC identity provider
//! (`irsa associate-oidc-provider`), create roles that exactly one service account can assume
//! (`irsa create-role`), and move kiam/kube2iam roles to web identity (`irsa migrate`).
//!
//! The rules shared with the webhook and the issuer (issuer URLs, ARNs, JWKS limits, annotation
//! names) live in [`irsa_core`]. Everything that can be judged without AWS is a pure function here
//! ([`trust_policy`], [`plan`], the JWKS rules in [`preflight::rules`], the annotation in
//! [`service_account`]); the I/O lives in [`aws`], [`associate`], [`create_role`],
//! [`preflight::fetch`], and [`cmd`] is the only place that speaks `anyhow`.

pub mod associate;
pub mod aws;
pub mod cmd;
pub mod create_role;
pub mod migrate;
pub mod plan;
pub mod preflight;
pub mod service_account;
pub mod thumbprint;
pub mod trust;
pub mod trust_policy;

pub use irsa_core::{IssuerUrl, Partition};
