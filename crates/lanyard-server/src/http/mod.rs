//! The HTTP edge: the router, the request middleware, authentication, extractors, and the one
//! mapping from domain errors to the error envelope.
//!
//! A request reads top to bottom: [`routes`] → [`auth`] (who is calling) → `crate::domain` (what
//! it means) → the store or the broker → a response, or an [`error::ApiError`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::{Extension, Router};
use lanyard_core::ErrorCode;
use tower::util::MapRequestLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};

use crate::metrics::Fixed;
use crate::services::Services;

pub mod auth;
pub mod docs;
pub mod error;
pub mod extract;
pub mod observe;
pub mod routes;
pub mod serve;

use error::{unknown_route, ApiError};
use extract::BODY_LIMIT;
use routes::ops::PublishedDocs;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The route label of a request that matched no route (or a guard that hides one).
pub const UNMATCHED: &str = "unmatched";

/// Route templates as metric labels, built once from the router's own list: a label value is
/// never taken from the request.
#[derive(Debug)]
pub struct RouteLabels {
    known: HashMap<String, Fixed>,
    unmatched: Fixed,
}

impl RouteLabels {
    fn new(templates: impl IntoIterator<Item = String>) -> Self {
        Self {
            known: templates
                .into_iter()
                .map(|t| {
                    let label = Fixed(t.as_str().into());
                    (t, label)
                })
                .collect(),
            unmatched: Fixed(UNMATCHED.into()),
        }
    }

    pub fn of(&self, matched: Option<&str>) -> &Fixed {
        matched
            .and_then(|m| self.known.get(m))
            .unwrap_or(&self.unmatched)
    }
}

/// Builds the full router for the services.
pub fn router(svc: Services) -> Router {
    let (api, openapi) = routes::api_with(Some(&svc));
    let docs = Arc::new(PublishedDocs::default());
    let templates = openapi.paths.paths.keys().cloned().chain(
        routes::HIDDEN_ROUTES
            .iter()
            .map(|(_, path, _)| (*path).to_string()),
    );
    let labels = Arc::new(RouteLabels::new(templates));
    routes::hidden(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(Extension(docs))
        .layer(middleware::from_fn_with_state(svc.clone(), serve::deadline))
        .layer(CatchPanicLayer::custom(observe::panicked))
        .layer(middleware::from_fn_with_state(
            (svc.clone(), labels),
            observe::observe,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(observe::MakeId))
        .layer(MapRequestLayer::new(observe::plain_request_id))
        .with_state(svc)
}

/// The router of the separate metrics listener (`LANYARD_METRICS_LISTEN`): `/metrics` alone.
pub fn metrics_router(svc: Services) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(routes::ops::scrape))
        .fallback(|| async { axum::http::StatusCode::NOT_FOUND })
        .with_state(svc)
}

async fn not_found() -> ApiError {
    unknown_route()
}

/// 405, except under `/admin/` without the admin token, where even a route's existence is
/// hidden: there the answer is the unknown route's.
async fn method_not_allowed(
    axum::extract::State(svc): axum::extract::State<Services>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/admin/") && !routes::admin::authorized(&svc, &headers) {
        return routes::admin::hidden();
    }
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "This route does not accept that method.",
    )
    .into_response()
}
