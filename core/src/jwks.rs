//! The limits STS puts on the JWKS it fetches; the issuer renders within them and `associate-oidc-provider`
//! checks a published JWKS against them.

/// STS reads at most this many keys of each type (RSA, EC) from a JWKS; the issuer drops the rest with a
/// warning and the preflight of `associate-oidc-provider` reports them.
pub const MAX_KEYS_PER_TYPE: usize = 100;

/// The smallest RSA modulus STS (and kube-apiserver's signer) accepts, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// The largest RSA modulus irsa publishes or accepts, in bits. kube-apiserver's `keyutil` reads keys of any
/// size, but verifiers do not: OpenSSL and BoringSSL refuse to verify with moduli over 16384 bits
/// (`OPENSSL_RSA_MAX_MODULUS_BITS`), Go's `crypto/internal/fips140/rsa` (Go 1.24+) treats them as outside FIPS
/// 186-5, and the public-key operation costs time quadratic in the modulus, so a JWKS carrying a larger key
/// is at best useless and at worst a denial of service on whoever verifies with it. AWS does not document
/// STS's own cap; 16384 is the largest size any of these verifiers accepts.
pub const MAX_RSA_BITS: usize = 16384;
