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

use super::error::{RequestContext, REQUEST};
use super::{RouteLabels, REQUEST_ID_HEADER};
use crate::metrics::Method;
use crate::services::Services;

/// Set on a response that must be counted as an unknown route (a refused hidden surface).
#[derive(Debug, Clone, Copy)]
pub struct CountAsUnmatched;

/// An incoming request id is kept when it is short and plain; otherwise a new one is made.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .filter(|v| {
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_string)
}

pub async fn observe(
    State((svc, labels)): State<(Services, Arc<RouteLabels>)>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id: Arc<str> = request_id(&req).into();
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
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
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
