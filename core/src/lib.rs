//! The rules and names every irsa crate shares, in one place and free of I/O.
//!
//! The webhook injects what the IAM side trusts and the issuer publishes what STS verifies; when each crate
//! spelled these rules itself, the copies drifted apart (an issuer URL accepted by `issuer serve` and judged
//! differently by `associate-oidc-provider`; `create-role` annotating a key the webhook did not read). So:
//!
//! - [`issuer_url`]: the one [`IssuerUrl`] type and its rules (what STS and IAM accept, what bites later);
//! - [`arn`]: AWS partitions, role ARNs and OIDC provider ARNs;
//! - [`names`]: annotation keys, env variables, the token volume and its mount, the default audience;
//! - [`jwks`]: the limits STS puts on a JWKS (key counts, RSA sizes).

pub mod arn;
pub mod issuer_url;
pub mod jwks;
pub mod names;

pub use arn::Partition;
pub use issuer_url::IssuerUrl;
