//! The pure core of `Sign`: the JWT header for a key, the check of the claims the apiserver sends, and the
//! signature over `header "." claims`, each part base64url without padding as it appears in the token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irsa_issuer::keys::Algorithm;

use crate::keys::{SignFailed, SigningKey};

/// The largest claims segment accepted: a service-account token's claims are well under 2 KiB; this only
/// bounds the work a broken caller can ask for.
pub const MAX_CLAIMS_LEN: usize = 64 * 1024;

/// Why a `Sign` request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimsError {
    /// The claims segment is empty.
    #[error("claims are empty")]
    Empty,
    /// The claims segment is longer than [`MAX_CLAIMS_LEN`].
    #[error("claims are {0} bytes long, more than the {MAX_CLAIMS_LEN} accepted")]
    TooLong(usize),
    /// The claims segment is not base64url without padding, as a JWT segment must be.
    #[error("claims are not base64url without padding: {0}")]
    NotBase64Url(String),
}

/// The base64url header `{"alg":..,"kid":..,"typ":"JWT"}`: the only fields the apiserver accepts.
pub fn header(algorithm: Algorithm, kid: &str) -> String {
    let json = serde_json::json!({"alg": algorithm.as_str(), "kid": kid, "typ": "JWT"});
    URL_SAFE_NO_PAD.encode(json.to_string())
}

/// Checks that `claims` is a JWT segment: non-empty, bounded, base64url without padding.
pub fn check_claims(claims: &str) -> Result<(), ClaimsError> {
    if claims.is_empty() {
        return Err(ClaimsError::Empty);
    }
    if claims.len() > MAX_CLAIMS_LEN {
        return Err(ClaimsError::TooLong(claims.len()));
    }
    URL_SAFE_NO_PAD
        .decode(claims)
        .map(drop)
        .map_err(|e| ClaimsError::NotBase64Url(e.to_string()))
}

/// What `Sign` returns: the header and the signature, both base64url as they appear in the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The first segment.
    pub header: String,
    /// The third segment.
    pub signature: String,
}

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The request was bad.
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    /// The key could not sign.
    #[error(transparent)]
    Key(#[from] SignFailed),
}

/// What is signed: `header "." claims`, both already base64url.
pub fn signing_input(header: &str, claims: &str) -> String {
    format!("{header}.{claims}")
}

/// The third segment of the token: the signature, base64url without padding.
pub fn encode_signature(signature: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(signature)
}

/// Signs `base64url(header) "." claims` with `key`, as the proto asks: the caller assembles the token.
pub fn sign(key: &SigningKey, claims: &str) -> Result<Signed, SignError> {
    check_claims(claims)?;
    let header = key.header().to_string();
    let signature = encode_signature(&key.sign(signing_input(&header, claims).as_bytes())?);
    Ok(Signed { header, signature })
}
