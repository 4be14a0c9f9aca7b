//! Where the issuer publishes its two documents: the `jwks_uri` it announces and the URL paths it answers on.
//!
//! The issuer URL itself and its rules are [`irsa_core::issuer_url`]'s; what is only the issuer's business is
//! here: the `--jwks-uri` override, the naive discovery alias of a trailing-slash issuer, and the warning when
//! the JWKS is announced on another host. [`crate::routes`] answers on these paths, [`crate::publish`] writes
//! files at them.

use irsa_core::issuer_url::{DISCOVERY_SUFFIX, IssuerUrl, UrlError};

use crate::Warning;

/// The issuer, the published JWKS URI, and the two paths a server answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
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

impl Paths {
    /// Paths for `issuer`, with `jwks_uri` overriding the default `<issuer>/openid/v1/jwks`. The override is
    /// validated like the issuer.
    pub fn new(
        issuer: IssuerUrl,
        jwks_uri: Option<&str>,
        allow_http: bool,
    ) -> Result<Paths, UrlError> {
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
        Ok(Paths {
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

    /// What is legal here but will bite in AWS or in the cluster: the issuer URL's own warnings (the shared
    /// rules), and a `jwks_uri` on another host, which this server cannot serve for that host.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out: Vec<Warning> = self
            .issuer
            .warnings()
            .into_iter()
            .map(|w| Warning::new(self.issuer.as_str(), w.to_string()))
            .collect();
        if !self.jwks_on_issuer_origin() {
            out.push(Warning::new(
                &self.jwks_uri,
                "the jwks_uri is on another host: serve the JWKS there too (this server answers on its path)",
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(u: &str) -> IssuerUrl {
        IssuerUrl::parse(u, false).unwrap()
    }

    #[test]
    fn paths_default_and_override() {
        let r = Paths::new(parse("https://h/p/"), None, false).unwrap();
        assert_eq!(r.jwks_uri, "https://h/p/openid/v1/jwks");
        assert_eq!(
            r.discovery_alias.as_deref(),
            Some("/p//.well-known/openid-configuration")
        );
        assert!(r.jwks_on_issuer_origin());
        let r = Paths::new(
            parse("https://h/p"),
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
        assert!(Paths::new(parse("https://h"), Some("http://h/k"), false).is_err());
    }

    #[test]
    fn paths_follow_the_issuer_path() {
        // url, discovery path, alias, jwks path
        let cases = [
            (
                "https://h",
                "/.well-known/openid-configuration",
                None,
                "/openid/v1/jwks",
            ),
            (
                "https://h/",
                "/.well-known/openid-configuration",
                Some("//.well-known/openid-configuration"),
                "/openid/v1/jwks",
            ),
            (
                "https://h:8443/a/b",
                "/a/b/.well-known/openid-configuration",
                None,
                "/a/b/openid/v1/jwks",
            ),
            (
                "https://h/a/b/",
                "/a/b/.well-known/openid-configuration",
                Some("/a/b//.well-known/openid-configuration"),
                "/a/b/openid/v1/jwks",
            ),
        ];
        for (url, discovery, alias, jwks) in cases {
            let r = Paths::new(parse(url), None, false).unwrap();
            assert_eq!(r.issuer.as_str(), url, "kept verbatim");
            assert_eq!(r.discovery_path, discovery, "{url}");
            assert_eq!(r.discovery_alias.as_deref(), alias, "{url}");
            assert_eq!(r.jwks_path, jwks, "{url}");
            assert_eq!(r.jwks_uri, format!("{}{jwks}", r.issuer.origin()), "{url}");
        }
        // A jwks_uri without a path is answered on `/`.
        let r = Paths::new(parse("https://h/p"), Some("https://cdn.example"), false).unwrap();
        assert_eq!(r.jwks_path, "/");
    }

    #[test]
    fn warnings_are_the_urls_plus_a_jwks_uri_elsewhere() {
        let messages =
            |r: &Paths| -> Vec<String> { r.warnings().iter().map(ToString::to_string).collect() };
        assert!(
            Paths::new(parse("https://h/p"), None, false)
                .unwrap()
                .warnings()
                .is_empty()
        );
        // The issuer URL's own warnings, from the shared rules, about the issuer.
        let issuer = IssuerUrl::parse("http://h:8080/p/", true).unwrap();
        let expected: Vec<String> = issuer
            .warnings()
            .iter()
            .map(|w| format!("http://h:8080/p/: {w}"))
            .collect();
        assert_eq!(
            expected.len(),
            3,
            "plain http, port, trailing slash: {expected:?}"
        );
        let r = Paths::new(issuer, None, true).unwrap();
        assert_eq!(messages(&r), expected);
        // The issuer's only own warning: a jwks_uri this server cannot answer for, about that URI.
        let r = Paths::new(parse("https://h/p"), Some("https://cdn.example/k"), false).unwrap();
        assert_eq!(
            messages(&r),
            [
                "https://cdn.example/k: the jwks_uri is on another host: serve the JWKS there too (this server answers on its path)"
            ]
        );
        // The same host spelled in another case is the same host (the scheme must be lower case: core's rule).
        let r = Paths::new(parse("https://h/p"), Some("https://H/k"), false).unwrap();
        assert!(r.jwks_on_issuer_origin());
        assert!(Paths::new(parse("https://h/p"), Some("HTTPS://h/k"), false).is_err());
        // A longer host sharing the prefix is another host.
        let r = Paths::new(parse("https://h"), Some("https://h2/k"), false).unwrap();
        assert!(!r.jwks_on_issuer_origin());
    }
}
