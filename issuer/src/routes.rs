//! The HTTP routes: the discovery document and the JWKS, from pre-rendered bytes.
//!
//! One fallback handler matches the two paths exactly (the issuer path is arbitrary, so a route table buys
//! nothing) and answers 404 elsewhere and 405 for methods other than GET and HEAD.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use prometheus_client::metrics::counter::Counter;

use crate::documents::{DocumentStore, Documents};
use crate::metrics::Metrics;
use crate::paths::Paths;

/// The default `Cache-Control: max-age`, in seconds. STS misbehaves with uncacheable JWKS.
pub const DEFAULT_MAX_AGE: u32 = 3600;

/// `Content-Type` of the discovery document.
pub const DISCOVERY_CONTENT_TYPE: &str = "application/json";
/// `Content-Type` of the JWKS.
pub const JWKS_CONTENT_TYPE: &str = "application/jwk-set+json";

#[derive(Clone, Copy)]
enum Doc {
    Discovery,
    Jwks,
}

struct RouteCounters {
    ok: Counter,
    not_modified: Counter,
    not_allowed: Counter,
    unavailable: Counter,
}

impl RouteCounters {
    fn new(metrics: &Metrics, route: &'static str) -> RouteCounters {
        RouteCounters {
            ok: metrics.requests(route, 200),
            not_modified: metrics.requests(route, 304),
            not_allowed: metrics.requests(route, 405),
            unavailable: metrics.requests(route, 503),
        }
    }
}

struct Inner {
    store: Arc<DocumentStore>,
    discovery_path: String,
    discovery_alias: Option<String>,
    jwks_path: String,
    cache_control: HeaderValue,
    discovery_counters: RouteCounters,
    jwks_counters: RouteCounters,
    not_found: Counter,
}

/// The issuer's router: GET and HEAD on the discovery and JWKS paths of `paths`, from `store`, with
/// `Cache-Control: public, max-age=<max_age>`.
pub fn router(paths: &Paths, store: Arc<DocumentStore>, metrics: &Metrics, max_age: u32) -> Router {
    let inner = Arc::new(Inner {
        store,
        discovery_path: paths.discovery_path.clone(),
        discovery_alias: paths.discovery_alias.clone(),
        jwks_path: paths.jwks_path.clone(),
        cache_control: HeaderValue::from_str(&format!("public, max-age={max_age}"))
            .expect("a number is a valid header value"),
        discovery_counters: RouteCounters::new(metrics, "discovery"),
        jwks_counters: RouteCounters::new(metrics, "jwks"),
        not_found: metrics.requests("other", 404),
    });
    Router::new().fallback(handle).with_state(inner)
}

async fn handle(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let path = request.uri().path();
    let doc = if path == inner.discovery_path || inner.discovery_alias.as_deref() == Some(path) {
        Doc::Discovery
    } else if path == inner.jwks_path {
        Doc::Jwks
    } else {
        inner.not_found.inc();
        return status_only(StatusCode::NOT_FOUND);
    };
    let counters = match doc {
        Doc::Discovery => &inner.discovery_counters,
        Doc::Jwks => &inner.jwks_counters,
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        counters.not_allowed.inc();
        let mut response = status_only(StatusCode::METHOD_NOT_ALLOWED);
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let Some(docs) = inner.store.get() else {
        counters.unavailable.inc();
        let mut response = status_only(StatusCode::SERVICE_UNAVAILABLE);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    let (body, etag, content_type) = pick(&docs, doc);
    let not_modified = if_none_match(request.headers(), etag);
    let mut response = if not_modified {
        counters.not_modified.inc();
        status_only(StatusCode::NOT_MODIFIED)
    } else {
        counters.ok.inc();
        Response::new(Body::from(body.clone()))
    };
    let headers = response.headers_mut();
    if !not_modified {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    headers.insert(CACHE_CONTROL, inner.cache_control.clone());
    headers.insert(ETAG, etag.clone());
    response
}

fn pick(docs: &Documents, doc: Doc) -> (&bytes::Bytes, &HeaderValue, &'static str) {
    match doc {
        Doc::Discovery => (
            &docs.discovery,
            &docs.discovery_etag,
            DISCOVERY_CONTENT_TYPE,
        ),
        Doc::Jwks => (&docs.jwks, &docs.jwks_etag, JWKS_CONTENT_TYPE),
    }
}

fn status_only(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// Whether `If-None-Match` matches `etag` (weak comparison, as RFC 9110 wants for this header).
fn if_none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    headers.get_all(IF_NONE_MATCH).iter().any(|value| {
        value.as_bytes().split(|&b| b == b',').any(|candidate| {
            let candidate = candidate.trim_ascii();
            candidate == b"*" || candidate.strip_prefix(b"W/").unwrap_or(candidate) == etag
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let etag = HeaderValue::from_static("\"abc\"");
        let check = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(IF_NONE_MATCH, HeaderValue::from_static(v));
            if_none_match(&h, &etag)
        };
        assert!(check("\"abc\""));
        assert!(check("\"x\", W/\"abc\""));
        assert!(check("*"));
        assert!(!check("\"abcd\""));
        assert!(!if_none_match(&HeaderMap::new(), &etag));
    }
}
