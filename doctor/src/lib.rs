//! `irsa doctor`: walk the chain a pod's AWS credentials travel and name the broken link with its fix.
//!
//! A pure core and the I/O around it:
//!
//! - [`checks`]: one pure function per check, from recorded inputs (documents, certificate chains, trust
//!   policies, STS errors, clock readings) to a [`Finding`];
//! - [`diagnose`]: every check over one set of [`diagnose::Inputs`], in the order a credential travels;
//! - [`gather`]: the cluster, the issuer as STS reaches it, IAM and STS, recorded into those inputs;
//! - [`cmd`]: the flags and the exit code.
//!
//! The rules are not restated here: issuer URLs come from `irsa-core`, the discovery and JWKS rules, the
//! trust-policy format, thumbprints and the AWS clients from `irsa-iam`.

pub mod checks;
pub mod cmd;
pub mod diagnose;
pub mod finding;
pub mod gather;
pub mod token;

pub use finding::{CheckId, Finding, Report, Status};
