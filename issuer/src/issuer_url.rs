//! The issuer URL and the paths derived from it.
//!
//! The URL is kept byte for byte: STS compares the discovery document's `issuer` with the tokens' `iss`
//! exactly, trailing slash included. Routes follow OpenID Discovery: a trailing `/` is removed from the path
//! before `/.well-known/openid-configuration` is appended.

use std::fmt;

/// Where the apiserver serves its JWKS, relative to the issuer path.
pub const JWKS_SUFFIX: &str = "/openid/v1/jwks";
/// The discovery document, relative to the issuer path.
pub const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";

/// Why an issuer (or JWKS) URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL is not `https://` and plain HTTP was not allowed.
    #[error(
        "{url}: the issuer URL must start with https:// (STS fetches it over HTTPS only; --plain-http allows http:// for tests)"
    )]
    NotHttps {
        /// The URL.
        url: String,
    },
    /// The URL has a `?query`.
    #[error("{url}: the issuer URL must not have a query (?...): STS refuses it")]
    Query {
        /// The URL.
        url: String,
    },
    /// The URL has a `#fragment`.
    #[error("{url}: the issuer URL must not have a fragment (#...): STS refuses it")]
    Fragment {
        /// The URL.
        url: String,
    },
    /// Something else is wrong: no host, user info, a bad port, spaces, `..` segments.
    #[error("{url}: {why}")]
    Invalid {
        /// The URL.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// A validated issuer URL, kept exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerUrl {
    raw: String,
    https: bool,
    /// Byte offset where the path starts (end of the authority).
    path_start: usize,
    /// Byte offset where the authority starts (after `://`).
    authority_start: usize,
}

impl IssuerUrl {
    /// Validates `url`: `https://` (or `http://` when `allow_http`), a host, no user info, no query, no
    /// fragment, no whitespace, no `.`/`..` or empty path segments.
    pub fn parse(url: &str, allow_http: bool) -> Result<IssuerUrl, UrlError> {
        let invalid = |why| UrlError::Invalid {
            url: url.to_string(),
            why,
        };
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        let (https, authority_start) = if lower.starts_with("https://") {
            (true, 8)
        } else if lower.starts_with("http://") && allow_http {
            (false, 7)
        } else {
            return Err(UrlError::NotHttps {
                url: url.to_string(),
            });
        };
        if url.contains('#') {
            return Err(UrlError::Fragment {
                url: url.to_string(),
            });
        }
        if url.contains('?') {
            return Err(UrlError::Query {
                url: url.to_string(),
            });
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "the URL must not contain spaces or control characters",
            ));
        }
        let rest = &url[authority_start..];
        let authority_len = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        if authority.is_empty() {
            return Err(invalid("the URL has no host"));
        }
        if authority.contains('@') {
            return Err(invalid("the URL must not contain user info (user@host)"));
        }
        if let Some(port) = port_of(authority)
            && (!port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err())
        {
            return Err(invalid("the port is not a number from 0 to 65535"));
        }
        let path = &rest[authority_len..];
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        if !trimmed.is_empty() {
            for segment in trimmed[1..].split('/') {
                if segment.is_empty() {
                    return Err(invalid("the path must not contain empty segments (//)"));
                }
                if segment == "." || segment == ".." {
                    return Err(invalid("the path must not contain . or .. segments"));
                }
            }
        }
        Ok(IssuerUrl {
            raw: url.to_string(),
            https,
            authority_start,
            path_start: authority_start + authority_len,
        })
    }

    /// The URL exactly as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the scheme is https.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `host[:port]`.
    pub fn authority(&self) -> &str {
        &self.raw[self.authority_start..self.path_start]
    }

    /// The explicit port, if any (AWS refuses provider URLs with one; emulators need them).
    pub fn port(&self) -> Option<u16> {
        port_of(self.authority()).and_then(|p| p.parse().ok())
    }

    /// `scheme://authority`, as given.
    pub fn origin(&self) -> &str {
        &self.raw[..self.path_start]
    }

    /// The path as given: empty, `/`, `/a/b` or `/a/b/`.
    pub fn path(&self) -> &str {
        &self.raw[self.path_start..]
    }

    /// The path without its trailing slash: what the route suffixes are appended to.
    pub fn base_path(&self) -> &str {
        let p = self.path();
        p.strip_suffix('/').unwrap_or(p)
    }

    /// `<path>/.well-known/openid-configuration`.
    pub fn discovery_path(&self) -> String {
        format!("{}{DISCOVERY_SUFFIX}", self.base_path())
    }

    /// `<path>/openid/v1/jwks`.
    pub fn default_jwks_path(&self) -> String {
        format!("{}{JWKS_SUFFIX}", self.base_path())
    }
}

impl fmt::Display for IssuerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// The port part of an authority, skipping IPv6 brackets.
fn port_of(authority: &str) -> Option<&str> {
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(0, |i| i + 1)
    } else {
        0
    };
    authority[host_end..]
        .rfind(':')
        .map(|i| &authority[host_end + i + 1..])
}

/// The issuer, the published JWKS URI, and the two paths a server answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    /// The issuer.
    pub issuer: IssuerUrl,
    /// The `jwks_uri` published in the discovery document.
    pub jwks_uri: String,
    /// The path of the discovery document.
    pub discovery_path: String,
    /// A second path for the discovery document when the issuer ends with `/`: `<issuer>` +
    /// `/.well-known/...` concatenated naively, as some clients do.
    pub discovery_alias: Option<String>,
    /// The path of the JWKS: the path of `jwks_uri`. Served whatever its host, so a CDN or proxy in front
    /// of this server under another name can forward it unchanged.
    pub jwks_path: String,
}

impl Routes {
    /// Routes for `issuer`, with `jwks_uri` overriding the default `<issuer>/openid/v1/jwks`. The override is
    /// validated like the issuer.
    pub fn new(
        issuer: IssuerUrl,
        jwks_uri: Option<&str>,
        allow_http: bool,
    ) -> Result<Routes, UrlError> {
        let (jwks_uri, jwks_path) = match jwks_uri {
            Some(uri) => {
                let parsed = IssuerUrl::parse(uri, allow_http)?;
                let path = if parsed.path().is_empty() {
                    "/".to_string()
                } else {
                    parsed.path().to_string()
                };
                (uri.to_string(), path)
            }
            None => {
                let path = issuer.default_jwks_path();
                (format!("{}{path}", issuer.origin()), path)
            }
        };
        let discovery_path = issuer.discovery_path();
        let discovery_alias = issuer
            .path()
            .ends_with('/')
            .then(|| format!("{}{DISCOVERY_SUFFIX}", issuer.path()));
        Ok(Routes {
            issuer,
            jwks_uri,
            discovery_path,
            discovery_alias,
            jwks_path,
        })
    }

    /// Whether the JWKS is published on the issuer's own origin (otherwise it must be hosted elsewhere too).
    pub fn jwks_on_issuer_origin(&self) -> bool {
        self.jwks_uri
            .get(..self.issuer.origin().len())
            .is_some_and(|o| o.eq_ignore_ascii_case(self.issuer.origin()))
            && self.jwks_uri[self.issuer.origin().len()..].starts_with('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(u: &str) -> Result<IssuerUrl, UrlError> {
        IssuerUrl::parse(u, false)
    }

    #[test]
    fn keeps_the_url_and_derives_paths() {
        let cases = [
            (
                "https://example.com",
                "",
                "/.well-known/openid-configuration",
                "/openid/v1/jwks",
            ),
            (
                "https://example.com/",
                "/",
                "/.well-known/openid-configuration",
                "/openid/v1/jwks",
            ),
            (
                "https://h:8443/a/b",
                "/a/b",
                "/a/b/.well-known/openid-configuration",
                "/a/b/openid/v1/jwks",
            ),
            (
                "https://h/a/b/",
                "/a/b/",
                "/a/b/.well-known/openid-configuration",
                "/a/b/openid/v1/jwks",
            ),
        ];
        for (url, path, discovery, jwks) in cases {
            let u = parse(url).unwrap();
            assert_eq!(u.as_str(), url);
            assert_eq!(u.path(), path, "{url}");
            assert_eq!(u.discovery_path(), discovery, "{url}");
            assert_eq!(u.default_jwks_path(), jwks, "{url}");
        }
        assert_eq!(parse("https://h:8443/a").unwrap().port(), Some(8443));
        assert_eq!(
            parse("https://[::1]:8443/a").unwrap().authority(),
            "[::1]:8443"
        );
        assert_eq!(parse("https://[::1]/a").unwrap().port(), None);
    }

    #[test]
    fn refuses_what_sts_refuses() {
        assert!(matches!(
            parse("http://h/x"),
            Err(UrlError::NotHttps { .. })
        ));
        assert!(IssuerUrl::parse("http://h/x", true).is_ok());
        assert!(matches!(parse("ftp://h/x"), Err(UrlError::NotHttps { .. })));
        assert!(matches!(
            parse("https://h/x?a=b"),
            Err(UrlError::Query { .. })
        ));
        assert!(matches!(
            parse("https://h/x#f"),
            Err(UrlError::Fragment { .. })
        ));
        for bad in [
            "https://",
            "https:///x",
            "https://u@h/",
            "https://h:x/",
            "https://h/a//b",
            "https://h/../x",
            "https://h /",
        ] {
            assert!(matches!(parse(bad), Err(UrlError::Invalid { .. })), "{bad}");
        }
    }

    #[test]
    fn routes_default_and_override() {
        let r = Routes::new(parse("https://h/p/").unwrap(), None, false).unwrap();
        assert_eq!(r.jwks_uri, "https://h/p/openid/v1/jwks");
        assert_eq!(
            r.discovery_alias.as_deref(),
            Some("/p//.well-known/openid-configuration")
        );
        assert!(r.jwks_on_issuer_origin());
        let r = Routes::new(
            parse("https://h/p").unwrap(),
            Some("https://cdn.example/keys.json"),
            false,
        )
        .unwrap();
        assert_eq!(
            (r.jwks_uri.as_str(), r.jwks_path.as_str()),
            ("https://cdn.example/keys.json", "/keys.json")
        );
        assert_eq!(r.discovery_alias, None);
        assert!(!r.jwks_on_issuer_origin());
        assert!(Routes::new(parse("https://h").unwrap(), Some("http://h/k"), false).is_err());
    }
}
