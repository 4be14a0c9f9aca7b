//! The IAM side of irsa: register the cluster's issuer as an IAM OIDC identity provider
//! (`irsa associate-oidc-provider`) and create roles that exactly one service account can assume
//! (`irsa create-role`).
//!
//! Everything that can be judged without AWS is a pure function here ([`provider_url`],
//! [`trust_policy`], [`plan`], the JWKS rules in [`preflight`]); the I/O lives in [`aws`],
//! [`associate`], [`create_role`], and [`cli`] is the only place that speaks `anyhow`.

pub mod associate;
pub mod aws;
pub mod cli;
pub mod create_role;
pub mod plan;
pub mod preflight;
pub mod provider_url;
pub mod thumbprint;
pub mod trust;
pub mod trust_policy;
