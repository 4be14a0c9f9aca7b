//! The issuer URL: the tokens' `iss`, the apiserver's `--service-account-issuer`, the IAM OIDC provider URL.
//!
//! One type for every command, because the same string is judged at each hop: STS compares the discovery
//! document's `issuer` with the tokens' `iss` byte for byte, IAM stores the provider URL without its scheme and
//! compares it with both, and OpenID Discovery appends `/.well-known/openid-configuration` to the path without
//! its trailing `/`. So the URL is validated with a real parser (the `url` crate) but kept verbatim: nothing
//! is lower-cased, re-encoded or stripped. What is legal but bites later (a port, a non-canonical spelling, a
//! trailing slash, plain HTTP) is a [`UrlWarning`], not an error.

use std::fmt;

/// Where the apiserver serves its JWKS, relative to the issuer path.
pub const JWKS_SUFFIX: &str = "/openid/v1/jwks";
/// The discovery document, relative to the issuer path.
pub const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";
/// IAM refuses provider URLs longer than this many characters.
pub const MAX_URL_LEN: usize = 255;

/// Why an issuer (or JWKS) URL is refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL is not `https://` (and plain HTTP was not allowed).
    #[error(
        "issuer URL {url:?} must start with https:// in lower case (STS fetches discovery and keys over HTTPS only, and IAM refuses other schemes)"
    )]
    NotHttps {
        /// The URL as given.
        url: String,
    },
    /// The URL has a `?query`.
    #[error(
        "issuer URL {url:?} has a query string; STS and IAM allow a host and a path only: drop everything from '?'"
    )]
    Query {
        /// The URL as given.
        url: String,
    },
    /// The URL has a `#fragment`.
    #[error(
        "issuer URL {url:?} has a fragment; STS and IAM allow a host and a path only: drop everything from '#'"
    )]
    Fragment {
        /// The URL as given.
        url: String,
    },
    /// The URL carries a user name or password.
    #[error(
        "issuer URL {url:?} carries credentials (user@host); IAM allows a host and a path only"
    )]
    Credentials {
        /// The URL as given.
        url: String,
    },
    /// The URL contains white space or control characters.
    #[error("issuer URL {url:?} contains white space or control characters")]
    WhiteSpace {
        /// The URL as given.
        url: String,
    },
    /// The URL is longer than IAM accepts.
    #[error("issuer URL is {len} characters long; IAM accepts at most {MAX_URL_LEN}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// Something else is wrong: no host, a bad port, empty or `.`/`..` path segments, unparsable.
    #[error("issuer URL {url:?} is not valid: {reason}")]
    Invalid {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// Something legal about an issuer URL that will bite in AWS or in a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlWarning {
    /// `http://` (allowed for tests only).
    PlainHttp,
    /// An explicit port (`:443` included).
    Port,
    /// The parser spells it otherwise (upper-case host, IDN, default port, percent-encoding).
    NotCanonical {
        /// How a URL parser (and so many clients) writes it.
        canonical: String,
    },
    /// A trailing `/`, which every other place must then spell too.
    TrailingSlash,
}

impl fmt::Display for UrlWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlWarning::PlainHttp => f.write_str("http:// issuer: STS only fetches https:// (tests only)"),
            UrlWarning::Port => f.write_str(
                "the URL has a port: AWS IAM refuses OIDC provider URLs with a port (fine for emulators)",
            ),
            UrlWarning::NotCanonical { canonical } => write!(
                f,
                "the URL is not in canonical form ({canonical:?}); IAM and STS compare it byte for byte with the tokens' iss"
            ),
            UrlWarning::TrailingSlash => f.write_str(
                "the URL ends with '/': the apiserver's --service-account-issuer and the discovery document must end with '/' too",
            ),
        }
    }
}

/// A validated issuer URL, kept exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerUrl {
    raw: String,
    https: bool,
    /// The host as the parser reads it (lower-cased, punycode), for connecting and for certificates.
    host: String,
    /// Byte offset where the authority starts (after `://`).
    authority_start: usize,
    /// Byte offset where the path starts (end of the authority).
    path_start: usize,
}

impl IssuerUrl {
    /// Validates `url`: `https://` (or `http://` when `allow_http`, for tests behind no TLS), a host, no user
    /// info, no query, no fragment, no white space, no empty or `.`/`..` path segments, at most
    /// [`MAX_URL_LEN`] characters.
    pub fn parse(url: &str, allow_http: bool) -> Result<IssuerUrl, UrlError> {
        let owned = || url.to_owned();
        let invalid = |reason: &str| UrlError::Invalid {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::WhiteSpace { url: owned() });
        }
        // Exactly lower case: IAM refuses other spellings of the scheme, and STS compares `iss` byte for byte.
        let (https, authority_start) = if url.starts_with("https://") {
            (true, "https://".len())
        } else if url.starts_with("http://") && allow_http {
            (false, "http://".len())
        } else {
            return Err(UrlError::NotHttps { url: owned() });
        };
        if url.contains('#') {
            return Err(UrlError::Fragment { url: owned() });
        }
        if url.contains('?') {
            return Err(UrlError::Query { url: owned() });
        }
        if url.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong { len: url.len() });
        }
        let rest = &url[authority_start..];
        let authority_len = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        if authority.is_empty() {
            return Err(invalid("it has no host"));
        }
        if authority.contains('@') {
            return Err(UrlError::Credentials { url: owned() });
        }
        let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(invalid("it has no host")),
        };
        let path = &rest[authority_len..];
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        // Checked on the raw path: the parser would silently resolve these, and STS compares the raw string.
        for segment in trimmed.split('/').skip(1) {
            if segment.is_empty() {
                return Err(invalid("the path must not contain empty segments (//)"));
            }
            if is_dot_segment(segment) {
                return Err(invalid("the path must not contain . or .. segments"));
            }
        }
        Ok(IssuerUrl {
            raw: url.to_owned(),
            https,
            host,
            authority_start,
            path_start: authority_start + authority_len,
        })
    }

    /// The URL exactly as given (the tokens' `iss`).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the scheme is https.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `host[:port]`, as given.
    pub fn authority(&self) -> &str {
        &self.raw[self.authority_start..self.path_start]
    }

    /// The host as a client connects to it: lower-cased, IDNs in punycode, IPv6 without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port, if the URL spells one (`:443` included).
    pub fn port(&self) -> Option<u16> {
        port_of(self.authority()).and_then(|p| p.parse().ok())
    }

    /// The port a client connects to: the explicit one, else the scheme's default.
    pub fn port_or_default(&self) -> u16 {
        self.port().unwrap_or(if self.https { 443 } else { 80 })
    }

    /// `scheme://authority`, as given.
    pub fn origin(&self) -> &str {
        &self.raw[..self.path_start]
    }

    /// The URL without its scheme: the form in provider ARNs and trust-policy condition keys.
    pub fn host_path(&self) -> &str {
        &self.raw[self.authority_start..]
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

    /// Where OpenID discovery lives: `<origin><path without trailing '/'>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}{}", self.origin(), self.discovery_path())
    }

    /// The ARN IAM gives this issuer's OIDC provider in `account`.
    pub fn provider_arn(&self, partition: crate::Partition, account: &str) -> String {
        crate::arn::oidc_provider_arn(partition, account, self.host_path())
    }

    /// What is legal here but will bite in AWS or in the cluster.
    pub fn warnings(&self) -> Vec<UrlWarning> {
        let mut out = Vec::new();
        if !self.https {
            out.push(UrlWarning::PlainHttp);
        }
        if self.port().is_some() {
            out.push(UrlWarning::Port);
        }
        if let Ok(parsed) = url::Url::parse(&self.raw) {
            // The parser adds a '/' to an empty path; any other difference is a spelling IAM keeps verbatim.
            let canonical = parsed.as_str();
            if canonical != self.raw && canonical != format!("{}/", self.raw) {
                out.push(UrlWarning::NotCanonical {
                    canonical: canonical.to_owned(),
                });
            }
        }
        if self.raw.ends_with('/') {
            out.push(UrlWarning::TrailingSlash);
        }
        out
    }
}

impl fmt::Display for IssuerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for IssuerUrl {
    type Err = UrlError;

    /// An `https://` issuer URL (see [`IssuerUrl::parse`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IssuerUrl::parse(s, false)
    }
}

/// `.` and `..`, also percent-encoded: URL parsers resolve all of them.
fn is_dot_segment(segment: &str) -> bool {
    let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
    decoded == "." || decoded == ".."
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(u: &str) -> Result<IssuerUrl, UrlError> {
        IssuerUrl::parse(u, false)
    }

    /// The tricky URLs, each with its verdict: this table is the one statement of the rules, and both
    /// `irsa issuer` and `irsa associate-oidc-provider` are tested against it from the binary.
    #[test]
    fn tricky_urls() {
        use UrlWarning::*;
        let canonical = |c: &str| NotCanonical {
            canonical: c.to_owned(),
        };
        let ok: &[(&str, &[UrlWarning])] = &[
            ("https://oidc.example.com", &[]),
            ("https://oidc.example.com/", &[TrailingSlash]),
            ("https://oidc.example.com/cluster-1", &[]),
            ("https://oidc.example.com/cluster-1/", &[TrailingSlash]),
            ("https://s3.amazonaws.com/bucket/cluster-1", &[]),
            (
                "https://OIDC.Example.com/c",
                &[canonical("https://oidc.example.com/c")],
            ),
            (
                "https://oidc.example.com:443/c",
                &[Port, canonical("https://oidc.example.com/c")],
            ),
            ("https://127.0.0.1:8443/c", &[Port]),
            ("https://[::1]:8443", &[Port]),
            ("https://[::1]/x", &[]),
            (
                "https://bücher.example/c",
                &[canonical("https://xn--bcher-kva.example/c")],
            ),
            ("https://xn--bcher-kva.example/c", &[]),
            ("https://h/a%20b", &[]),
        ];
        for (url, warnings) in ok {
            let parsed = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.as_str(), *url, "kept verbatim");
            assert_eq!(parsed.warnings(), *warnings, "{url}");
        }
        type IsExpected = fn(&UrlError) -> bool;
        let bad: &[(&str, IsExpected)] = &[
            ("http://oidc.example.com", |e| {
                matches!(e, UrlError::NotHttps { .. })
            }),
            // IAM's provider URLs start with a lower-case `https://`; so must the issuer, which equals them.
            ("HTTPS://oidc.example.com/c", |e| {
                matches!(e, UrlError::NotHttps { .. })
            }),
            ("ftp://oidc.example.com", |e| {
                matches!(e, UrlError::NotHttps { .. })
            }),
            ("oidc.example.com", |e| {
                matches!(e, UrlError::NotHttps { .. })
            }),
            ("https://h/c?x=1", |e| matches!(e, UrlError::Query { .. })),
            ("https://h/c?", |e| matches!(e, UrlError::Query { .. })),
            ("https://h/c#f", |e| matches!(e, UrlError::Fragment { .. })),
            ("https://user@h/c", |e| {
                matches!(e, UrlError::Credentials { .. })
            }),
            ("https://user:pw@h/c", |e| {
                matches!(e, UrlError::Credentials { .. })
            }),
            ("https://h/c d", |e| {
                matches!(e, UrlError::WhiteSpace { .. })
            }),
            ("https://h /", |e| matches!(e, UrlError::WhiteSpace { .. })),
            ("https://h/c\n", |e| {
                matches!(e, UrlError::WhiteSpace { .. })
            }),
            ("https://exa mple.com", |e| {
                matches!(e, UrlError::WhiteSpace { .. })
            }),
            ("https://", |e| matches!(e, UrlError::Invalid { .. })),
            ("https:///c", |e| matches!(e, UrlError::Invalid { .. })),
            ("https://h:99999/c", |e| {
                matches!(e, UrlError::Invalid { .. })
            }),
            ("https://h:port/c", |e| {
                matches!(e, UrlError::Invalid { .. })
            }),
            ("https://h//c", |e| matches!(e, UrlError::Invalid { .. })),
            ("https://h/a//b", |e| matches!(e, UrlError::Invalid { .. })),
            ("https://h/../x", |e| matches!(e, UrlError::Invalid { .. })),
            ("https://h/a/../c", |e| {
                matches!(e, UrlError::Invalid { .. })
            }),
            ("https://h/a/./c", |e| matches!(e, UrlError::Invalid { .. })),
            ("https://h/a/%2E%2e/c", |e| {
                matches!(e, UrlError::Invalid { .. })
            }),
        ];
        for (url, is_expected) in bad {
            match parse(url) {
                Ok(u) => panic!("{url:?} must be refused, got {u:?}"),
                Err(e) => {
                    assert!(is_expected(&e), "{url:?}: unexpected {e:?}");
                    // Printed as one `error:` line by every command.
                    assert!(!e.to_string().contains('\n'), "{url:?}: {e}");
                }
            }
        }
        let long = format!("https://h/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(parse(&long), Err(UrlError::TooLong { len: long.len() }));
    }

    #[test]
    fn plain_http_only_when_allowed_and_then_warned() {
        assert!(parse("http://h/x").is_err());
        let u = IssuerUrl::parse("http://h/x", true).unwrap();
        assert!(!u.is_https());
        assert_eq!(u.port_or_default(), 80);
        assert_eq!(u.warnings(), [UrlWarning::PlainHttp]);
    }

    #[test]
    fn derives_paths_and_forms() {
        let cases = [
            // url, path, discovery path, jwks path, host_path
            (
                "https://h",
                "",
                "/.well-known/openid-configuration",
                "/openid/v1/jwks",
                "h",
            ),
            (
                "https://h/",
                "/",
                "/.well-known/openid-configuration",
                "/openid/v1/jwks",
                "h/",
            ),
            (
                "https://h/a/b",
                "/a/b",
                "/a/b/.well-known/openid-configuration",
                "/a/b/openid/v1/jwks",
                "h/a/b",
            ),
            (
                "https://h:8443/a/",
                "/a/",
                "/a/.well-known/openid-configuration",
                "/a/openid/v1/jwks",
                "h:8443/a/",
            ),
        ];
        for (url, path, discovery, jwks, host_path) in cases {
            let u = parse(url).unwrap();
            assert_eq!(u.path(), path, "{url}");
            assert_eq!(u.discovery_path(), discovery, "{url}");
            assert_eq!(u.default_jwks_path(), jwks, "{url}");
            assert_eq!(u.host_path(), host_path, "{url}");
        }
        let u = parse("https://Oidc.Example.com:8443/t/").unwrap();
        assert_eq!(u.host(), "oidc.example.com");
        assert_eq!(u.port(), Some(8443));
        assert_eq!(u.port_or_default(), 8443);
        assert_eq!(u.authority(), "Oidc.Example.com:8443");
        assert_eq!(u.origin(), "https://Oidc.Example.com:8443");
        assert_eq!(
            u.discovery_url(),
            "https://Oidc.Example.com:8443/t/.well-known/openid-configuration"
        );
        let v6 = parse("https://[::1]:8443/a").unwrap();
        assert_eq!((v6.authority(), v6.port()), ("[::1]:8443", Some(8443)));
        assert_eq!(parse("https://[::1]/a").unwrap().port(), None);
        assert_eq!(parse("https://[::1]/a").unwrap().host(), "::1");
        assert_eq!(parse("https://h/a").unwrap().port_or_default(), 443);
        assert_eq!(
            parse("https://oidc.example.com/c1")
                .unwrap()
                .provider_arn(crate::Partition::AwsCn, "111122223333"),
            "arn:aws-cn:iam::111122223333:oidc-provider/oidc.example.com/c1"
        );
    }
}
