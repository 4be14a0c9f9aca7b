//! The request body limit, enforced before the body is read.
//!
//! axum's `DefaultBodyLimit` counts the bytes as they are read, so a body announced too large by its
//! `Content-Length` is still asked for: hyper answers `Expect: 100-continue` with "100 Continue" when the
//! body is first polled, and the client sends the body only to be refused. Here the length is judged from the
//! header, and the body is never polled. A 413 on HTTP/1 also says `Connection: close`: the rest of the body
//! is on its way and the connection will not be reused (the server's lingering close lets the client read the
//! answer before the connection goes).

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, Version, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

/// `router` with request bodies limited to `max_bytes`: refused with 413 from their `Content-Length`
/// before they are read (and before any "100 Continue"), or when a body without one grows past the limit.
pub fn limit<S>(router: Router<S>, max_bytes: usize) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .layer(DefaultBodyLimit::max(max_bytes))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            refuse_oversized(request, next, max_bytes)
        }))
}

async fn refuse_oversized(request: Request, next: Next, max_bytes: usize) -> Response {
    let version = request.version();
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let mut response = match announced {
        Some(length) if length > max_bytes as u64 => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is {length} bytes; at most {max_bytes} are accepted\n"),
        )
            .into_response(),
        _ => next.run(request).await,
    };
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
