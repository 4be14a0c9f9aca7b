//! The issuer's router in process (`oneshot`, no socket, no TLS): which path answers, with which headers, and
//! how conditional and HEAD requests are answered. TLS, reload, drain and the admin port are `server.rs`'s.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use common::{fixture, kid_of, kids};
use http::{HeaderMap, Method, Request, StatusCode};
use irsa_core::IssuerUrl;
use irsa_issuer::documents::{DocumentStore, Documents};
use irsa_issuer::keys;
use irsa_issuer::metrics::Metrics;
use irsa_issuer::paths::Paths;
use irsa_issuer::routes::{self, DEFAULT_MAX_AGE};
use prometheus_client::registry::Registry;
use serde_json::Value;
use tower::ServiceExt as _;

const DISCOVERY: &str = "/.well-known/openid-configuration";
const JWKS: &str = "/openid/v1/jwks";

/// A router for `issuer_url` (and `jwks_uri`), serving the keys of `key_files`, or nothing yet when empty.
struct Issuer {
    router: Router,
    registry: Registry,
}

fn issuer_with(
    issuer_url: &str,
    jwks_uri: Option<&str>,
    key_files: &[&str],
    max_age: u32,
) -> Issuer {
    let url = IssuerUrl::parse(issuer_url, false).unwrap();
    let paths = Paths::new(url, jwks_uri, false).unwrap();
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let store = Arc::new(DocumentStore::new());
    if !key_files.is_empty() {
        let files: Vec<_> = key_files.iter().map(|f| fixture(f)).collect();
        let (docs, _) = Documents::render(&paths, &keys::load_files(&files).unwrap().keys);
        assert!(store.set(docs));
    }
    Issuer {
        router: routes::router(&paths, store, &metrics, max_age),
        registry,
    }
}

fn issuer(issuer_url: &str, key_files: &[&str]) -> Issuer {
    issuer_with(issuer_url, None, key_files, DEFAULT_MAX_AGE)
}

/// What came back.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

impl Issuer {
    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: axum::body::to_bytes(body, usize::MAX).await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[]).await
    }

    fn metrics(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text
    }
}

#[tokio::test]
async fn serves_both_documents_under_a_path_prefix_with_their_headers() {
    let s = issuer(
        "https://oidc.example.com/some/prefix",
        &["rsa2048.pub", "p256.crt"],
    );

    let r = s.get(&format!("/some/prefix{DISCOVERY}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("cache-control"), "public, max-age=3600");
    let etag = r.header("etag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );
    let discovery = r.json();
    assert_eq!(discovery["issuer"], "https://oidc.example.com/some/prefix");
    assert_eq!(
        discovery["jwks_uri"],
        "https://oidc.example.com/some/prefix/openid/v1/jwks"
    );
    assert_eq!(
        discovery["response_types_supported"],
        serde_json::json!(["id_token"])
    );
    assert_eq!(
        discovery["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256", "RS256"])
    );

    let r = s.get(&format!("/some/prefix{JWKS}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/jwk-set+json");
    assert_eq!(r.header("cache-control"), "public, max-age=3600");
    assert_ne!(r.header("etag"), etag, "each document has its own ETag");
    assert_eq!(kids(&r.json()), [kid_of("rsa2048.pub"), kid_of("p256.pub")]);

    // A query string (a CDN's cache buster) does not change the path.
    assert_eq!(
        s.get(&format!("/some/prefix{JWKS}?v=2")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn max_age_is_the_configured_one() {
    let s = issuer_with("https://h", None, &["p256.pub"], 60);
    for path in [DISCOVERY, JWKS] {
        assert_eq!(
            s.get(path).await.header("cache-control"),
            "public, max-age=60",
            "{path}"
        );
    }
}

#[tokio::test]
async fn conditional_requests_answer_304_with_the_validators() {
    let s = issuer("https://h/c", &["p384.pub"]);
    for (path, other) in [
        (format!("/c{JWKS}"), format!("/c{DISCOVERY}")),
        (format!("/c{DISCOVERY}"), format!("/c{JWKS}")),
    ] {
        let etag = s.get(&path).await.header("etag").to_string();
        let other_etag = s.get(&other).await.header("etag").to_string();
        for matching in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"stale\", {etag}"),
            "*".to_string(),
        ] {
            let r = s
                .send(Method::GET, &path, &[("if-none-match", &matching)])
                .await;
            assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{path} {matching}");
            assert_eq!(r.header("etag"), etag);
            assert_eq!(r.header("cache-control"), "public, max-age=3600");
            assert!(r.headers.get("content-type").is_none(), "{:?}", r.headers);
            assert!(r.body.is_empty());
        }
        for stale in ["\"stale\"", &other_etag] {
            let r = s
                .send(Method::GET, &path, &[("if-none-match", stale)])
                .await;
            assert_eq!(r.status, StatusCode::OK, "{path} {stale}");
            assert!(!r.body.is_empty());
        }
    }
    assert!(
        s.metrics()
            .contains(r#"irsa_issuer_requests_total{route="jwks",status="304"} 4"#),
        "{}",
        s.metrics()
    );
}

#[tokio::test]
async fn head_has_the_headers_of_get_and_no_body() {
    let s = issuer("https://h", &["p256.pub"]);
    for (path, content_type) in [
        (DISCOVERY, "application/json"),
        (JWKS, "application/jwk-set+json"),
    ] {
        let get = s.get(path).await;
        let head = s.send(Method::HEAD, path, &[]).await;
        assert_eq!(head.status, StatusCode::OK, "{path}");
        assert_eq!(head.header("content-type"), content_type);
        assert_eq!(head.header("etag"), get.header("etag"));
        assert_eq!(head.header("cache-control"), get.header("cache-control"));
        assert!(head.body.is_empty(), "{path}: {:?}", head.body);
        // And conditionally.
        let r = s
            .send(Method::HEAD, path, &[("if-none-match", get.header("etag"))])
            .await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{path}");
    }
}

#[tokio::test]
async fn only_the_two_paths_answer_and_only_to_get_and_head() {
    let s = issuer("https://h/some/prefix", &["p256.pub"]);
    for path in [
        "/",
        "/some/prefix",
        "/some/prefix/",
        DISCOVERY,
        JWKS,
        "/some/prefix/.well-known/openid-configuration/",
        "/some/prefix/openid/v1/jwks.json",
        "/some/prefix/openid/v1/jwks/",
        "/SOME/prefix/openid/v1/jwks",
        "/some/prefix//.well-known/openid-configuration",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.body.is_empty(), "{path}");
    }
    for path in [
        format!("/some/prefix{DISCOVERY}"),
        format!("/some/prefix{JWKS}"),
    ] {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            let r = s.send(method.clone(), &path, &[]).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(r.header("allow"), "GET, HEAD");
        }
    }
    // An unknown path is a 404 whatever the method.
    assert_eq!(
        s.send(Method::POST, "/elsewhere", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    let metrics = s.metrics();
    assert!(
        metrics.contains(r#"irsa_issuer_requests_total{route="other",status="404"} 11"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"irsa_issuer_requests_total{route="jwks",status="405"} 4"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_trailing_slash_issuer_is_kept_and_its_naive_discovery_path_answers() {
    for (issuer_url, prefix) in [
        ("https://oidc.example.com/", ""),
        ("https://oidc.example.com/c1/", "/c1"),
    ] {
        let s = issuer(issuer_url, &["p384.pub"]);
        let r = s.get(&format!("{prefix}{DISCOVERY}")).await;
        assert_eq!(r.status, StatusCode::OK, "{issuer_url}");
        let discovery = r.json();
        assert_eq!(discovery["issuer"], issuer_url, "byte for byte");
        assert_eq!(
            discovery["jwks_uri"],
            format!("https://oidc.example.com{prefix}{JWKS}")
        );
        // `<issuer>` + `/.well-known/...` concatenated naively, as some clients do.
        let alias = s.get(&format!("{prefix}/{DISCOVERY}")).await;
        assert_eq!(alias.status, StatusCode::OK, "{issuer_url}");
        assert_eq!(alias.body, r.body);
        assert_eq!(alias.header("content-type"), "application/json");
        assert_eq!(
            s.get(&format!("{prefix}{JWKS}")).await.status,
            StatusCode::OK
        );
        // No alias for the JWKS: its path is the jwks_uri's.
        assert_eq!(
            s.get(&format!("{prefix}/{JWKS}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    // Without a trailing slash there is no alias.
    let s = issuer("https://oidc.example.com/c1", &["p384.pub"]);
    assert_eq!(
        s.get(&format!("/c1/{DISCOVERY}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_jwks_is_answered_on_the_path_of_a_jwks_uri_elsewhere() {
    let s = issuer_with(
        "https://oidc.example.com",
        Some("https://cdn.example/keys/jwks.json"),
        &["p256.pub"],
        DEFAULT_MAX_AGE,
    );
    let discovery = s.get(DISCOVERY).await.json();
    assert_eq!(discovery["jwks_uri"], "https://cdn.example/keys/jwks.json");
    let r = s.get("/keys/jwks.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/jwk-set+json");
    assert_eq!(s.get(JWKS).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn nothing_published_yet_is_503_with_retry_after() {
    let s = issuer("https://h", &[]);
    for path in [DISCOVERY, JWKS] {
        let r = s.get(path).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(r.header("retry-after"), "5");
    }
    assert_eq!(s.get("/other").await.status, StatusCode::NOT_FOUND);
}
