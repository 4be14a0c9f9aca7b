//! The parts of a service-account token the checks compare: read, never verified (STS verifies; the doctor
//! explains why it would not).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// What a token says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claims {
    /// The header's `kid`: which key signed it.
    pub kid: Option<String>,
    /// The header's `alg`.
    pub alg: Option<String>,
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`, one or several.
    pub aud: Vec<String>,
    /// `iat`, seconds since the epoch.
    pub iat: Option<i64>,
    /// `exp`, seconds since the epoch.
    pub exp: Option<i64>,
}

/// Why a token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token is not a JWT: {0}")]
pub struct NotAJwt(String);

/// Reads the header and claims of a compact JWS (`header.payload.signature`).
pub fn decode(token: &str) -> Result<Claims, NotAJwt> {
    let mut parts = token.trim().split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(NotAJwt("not three dot-separated parts".to_owned()));
    };
    let json = |part: &str, name: &str| -> Result<Value, NotAJwt> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| NotAJwt(format!("{name} is not base64url: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| NotAJwt(format!("{name} is not JSON: {e}")))
    };
    let header = json(header, "the header")?;
    let payload = json(payload, "the payload")?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let aud = match payload.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Claims {
        kid: text(&header, "kid"),
        alg: text(&header, "alg"),
        iss: text(&payload, "iss"),
        sub: text(&payload, "sub"),
        aud,
        iat: payload.get("iat").and_then(Value::as_i64),
        exp: payload.get("exp").and_then(Value::as_i64),
    })
}

/// Test support: an unsigned token with `header` and `payload` (the checks never verify signatures).
pub fn encode_unsigned(header: &Value, payload: &Value) -> String {
    format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_header_and_claims() {
        let t = encode_unsigned(
            &json!({"alg": "RS256", "kid": "k1"}),
            &json!({"iss": "https://i", "sub": "system:serviceaccount:a:b", "aud": ["x", "y"], "iat": 5, "exp": 9}),
        );
        let c = decode(&t).unwrap();
        assert_eq!(c.kid.as_deref(), Some("k1"));
        assert_eq!(c.iss.as_deref(), Some("https://i"));
        assert_eq!(c.aud, ["x", "y"]);
        assert_eq!((c.iat, c.exp), (Some(5), Some(9)));
        let single = encode_unsigned(&json!({}), &json!({"aud": "x"}));
        assert_eq!(decode(&single).unwrap().aud, ["x"]);
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in ["", "a.b", "a.b.c.d", "!!.e30.x", "e30.bm90IGpzb24.x"] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
