//! The JWKS document (pure): published keys in the exact shape STS accepts, and the cleaning of a JWKS
//! fetched from an apiserver.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irsa_core::jwks::{MAX_KEYS_PER_TYPE, MAX_RSA_BITS, MIN_RSA_BITS};
use serde::Serialize;
use serde_json::Value;

use crate::Warning;
use crate::keys::{Algorithm, Curve, KeyParams, LoadedKeys, PublicKey};

/// Where warnings about a fetched JWKS come from.
const APISERVER: &str = "apiserver JWKS";

/// A rendered JWKS.
#[derive(Debug, Clone)]
pub struct RenderedJwks {
    /// The document: compact JSON, `{"keys":[...]}`.
    pub json: Vec<u8>,
    /// The keys actually published, in order.
    pub keys: Vec<PublicKey>,
    /// Keys left out (over the per-type limit).
    pub warnings: Vec<Warning>,
}

impl RenderedJwks {
    /// The algorithms of the published keys, sorted and deduplicated.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut algs: Vec<_> = self.keys.iter().map(PublicKey::algorithm).collect();
        algs.sort();
        algs.dedup();
        algs
    }
}

#[derive(Serialize)]
struct JwkOut<'a> {
    #[serde(rename = "use")]
    use_: &'static str,
    kty: &'static str,
    kid: &'a str,
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
}

#[derive(Serialize)]
struct JwksOut<'a> {
    keys: Vec<JwkOut<'a>>,
}

fn jwk(key: &PublicKey) -> JwkOut<'_> {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let base = JwkOut {
        use_: "sig",
        kty: "RSA",
        kid: key.kid(),
        alg: key.algorithm().as_str(),
        n: None,
        e: None,
        crv: None,
        x: None,
        y: None,
    };
    match key.params() {
        KeyParams::Rsa { n, e } => JwkOut {
            n: Some(b64(n)),
            e: Some(b64(e)),
            ..base
        },
        KeyParams::Ec { curve, x, y } => JwkOut {
            kty: "EC",
            crv: Some(curve.as_str()),
            x: Some(b64(x)),
            y: Some(b64(y)),
            ..base
        },
    }
}

/// Renders the JWKS of `keys`, keeping the first [`MAX_KEYS_PER_TYPE`] RSA and EC keys in order.
pub fn render(keys: &[PublicKey]) -> RenderedJwks {
    let (mut rsa, mut ec) = (0usize, 0usize);
    let mut published = Vec::with_capacity(keys.len());
    let mut warnings = Vec::new();
    for key in keys {
        let count = if key.is_rsa() { &mut rsa } else { &mut ec };
        if *count >= MAX_KEYS_PER_TYPE {
            warnings.push(Warning::new(
                "JWKS",
                format!(
                    "key {} left out: STS accepts at most {MAX_KEYS_PER_TYPE} {} keys",
                    key.kid(),
                    if key.is_rsa() { "RSA" } else { "EC" }
                ),
            ));
            continue;
        }
        *count += 1;
        published.push(key.clone());
    }
    let doc = JwksOut {
        keys: published.iter().map(jwk).collect(),
    };
    let json = serde_json::to_vec(&doc).expect("a JWKS of strings always serializes");
    RenderedJwks {
        json,
        keys: published,
        warnings,
    }
}

/// Why a fetched JWKS could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The body is not JSON.
    #[error("the JWKS is not valid JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// The JSON has no `keys` array.
    #[error("the JWKS has no \"keys\" array")]
    NoKeys,
}

/// Cleans a JWKS fetched from an apiserver: keeps only the keys STS accepts, rebuilt from their numbers
/// (which drops `key_ops`, `x5c` and any other field), under the apiserver's own `kid` so its tokens still
/// match. Every key left out gets a warning.
pub fn clean(body: &[u8]) -> Result<LoadedKeys, JwksError> {
    let doc: Value = serde_json::from_slice(body)?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwksError::NoKeys)?;
    let mut out = LoadedKeys::default();
    for (i, entry) in entries.iter().enumerate() {
        let label = match entry.get("kid").and_then(Value::as_str) {
            Some(kid) => format!("key {kid}"),
            None => format!("key #{i}"),
        };
        match clean_one(entry) {
            Ok(key) if out.keys.iter().any(|k| k.kid() == key.kid()) => out.warnings.push(
                Warning::new(APISERVER, format!("{label} left out: duplicate kid")),
            ),
            Ok(key) => out.keys.push(key),
            Err(why) => out
                .warnings
                .push(Warning::new(APISERVER, format!("{label} left out: {why}"))),
        }
    }
    Ok(out)
}

fn clean_one(entry: &Value) -> Result<PublicKey, String> {
    let field = |name: &str| entry.get(name).and_then(Value::as_str);
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let s = field(name).ok_or_else(|| format!("no \"{name}\""))?;
        URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| format!("\"{name}\" is not base64url"))
    };
    if let Some(u) = entry.get("use")
        && u.as_str() != Some("sig")
    {
        return Err(format!("\"use\" is {u}, not \"sig\""));
    }
    let kty = field("kty").ok_or("no \"kty\"")?;
    let key = match kty {
        "RSA" => PublicKey::from_rsa(&bytes("n")?, &bytes("e")?).map_err(|r| r.to_string())?,
        "EC" => {
            let crv = field("crv").ok_or("no \"crv\"")?;
            let curve = Curve::from_jwk_name(crv)
                .ok_or_else(|| format!("curve {crv}: STS accepts only P-256, P-384 and P-521"))?;
            PublicKey::from_ec(curve, &bytes("x")?, &bytes("y")?).map_err(|r| r.to_string())?
        }
        other => {
            return Err(format!(
                "key type {other}: STS accepts only RSA ({MIN_RSA_BITS} to {MAX_RSA_BITS} bits) and EC P-256/P-384/P-521"
            ));
        }
    };
    // The apiserver signs with exactly this alg; a key announced for another one would not verify its tokens.
    if let Some(alg) = field("alg")
        && alg != key.algorithm().as_str()
    {
        return Err(format!("\"alg\" is {alg}, expected {}", key.algorithm()));
    }
    Ok(match field("kid") {
        Some(kid) if !kid.is_empty() => key.with_kid(kid),
        _ => key,
    })
}
