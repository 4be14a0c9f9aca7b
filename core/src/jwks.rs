//! The limits STS puts on the JWKS it fetches; the issuer renders within them and `associate-oidc-provider`
//! checks a published JWKS against them.

/// STS reads at most this many keys of each type (RSA, EC) from a JWKS; the issuer drops the rest with a
/// warning and the preflight of `associate-oidc-provider` reports them.
pub const MAX_KEYS_PER_TYPE: usize = 100;

/// The smallest RSA modulus STS (and kube-apiserver's signer) accepts, in bits.
pub const MIN_RSA_BITS: usize = 2048;
