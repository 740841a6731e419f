//! The request middleware: a request id, one tracing span per request (request id, route, and
//! once authenticated the team), metrics, and one access-log line. Never logs headers or bodies.
//!
//! Every response is `Cache-Control: no-store` unless its route set its own (the documentation
//! pages): many carry a secret (a token, a key, a runner token, a JWT), and one rule for all
//! means no new route can forget it (CONTRACT §17).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use axum::response::IntoResponse;
use tower_http::request_id::{MakeRequestId, RequestId};

use super::error::{ApiError, RequestContext, REQUEST};
use super::{RouteLabels, REQUEST_ID_HEADER};
use crate::metrics::Method;
use crate::services::Services;

/// Set on a response that must be counted as an unknown route (a refused hidden surface).
#[derive(Debug, Clone, Copy)]
pub struct CountAsUnmatched;

/// Makes the id of a request that brought none worth keeping: 32 hex digits.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// Drops an incoming `x-request-id` unless it is short and plain (letters, digits, `-`, `_`, at
/// most 64), so that a made-up one cannot carry text into the logs; `SetRequestId` then makes one.
/// A plain function on the request (`MapRequestLayer`): no boxed future per request.
pub fn plain_request_id(mut req: Request) -> Request {
    let plain = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !plain {
        req.headers_mut().remove(REQUEST_ID_HEADER);
    }
    req
}

/// What a panicking handler answers: the 500 envelope (inside the request's span and context,
/// so it carries the request id), not a dropped connection.
pub fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    ApiError::internal(anyhow::anyhow!("a handler panicked: {what}")).into_response()
}

pub async fn observe(
    State((svc, labels)): State<(Services, Arc<RouteLabels>)>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id: Arc<str> = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("none")
        .into();
    let method = Method::of(req.method());
    let route = labels
        .of(req
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str))
        .clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = method.as_str(),
        route = %route.0,
        team = tracing::field::Empty,
    );
    let ctx = RequestContext {
        request_id: id.clone(),
        public_url: svc.public_url().clone(),
    };
    let mut response = REQUEST
        .scope(ctx, next.run(req))
        .instrument(span.clone())
        .await;
    response
        .headers_mut()
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    let route = if response.extensions().get::<CountAsUnmatched>().is_some() {
        labels.of(None)
    } else {
        &route
    };
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    svc.metrics()
        .observe_http(route, method, status, elapsed.as_secs_f64());
    if let Some(code) = response.extensions().get::<lanyard_core::ErrorCode>() {
        svc.metrics().observe_error(route, method, *code);
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    /// A handler that panics answers the 500 envelope, not a dropped connection.
    #[tokio::test]
    async fn a_panic_is_the_500_envelope() {
        let app = axum::Router::new()
            .route(
                "/boom",
                get(|| async {
                    panic!("boom");
                    #[allow(unreachable_code)]
                    ""
                }),
            )
            .layer(CatchPanicLayer::custom(panicked));
        let request = axum::http::Request::get("/boom")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "internal_error");
        assert!(
            !body.to_string().contains("boom"),
            "the cause stays in the log: {body}"
        );
    }
}
