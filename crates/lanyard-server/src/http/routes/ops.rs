//! Unauthenticated operational routes.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use lanyard_core::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::{unknown_route, ApiError};
use crate::http::observe::CountAsUnmatched;
use crate::services::Services;
use lanyard_core::wire::ErrorEnvelope as ErrorBody;

/// The rendered API description: built on its first request, then kept. Not at start-up: the
/// document and its page take a few MB to build, which a server that never serves them would
/// hold for nothing (the allocator keeps what a start-up peak freed).
#[derive(Debug, Default)]
pub struct PublishedDocs {
    built: std::sync::OnceLock<(String, String)>,
}

impl PublishedDocs {
    fn built(&self) -> &(String, String) {
        self.built.get_or_init(|| {
            let json = super::openapi_json();
            let value: serde_json::Value =
                serde_json::from_str(&json).expect("the OpenAPI document is JSON");
            let html = crate::http::docs::render(&value);
            (json, html)
        })
    }

    /// The OpenAPI document.
    pub fn openapi_json(&self) -> &str {
        &self.built().0
    }

    /// The page for people.
    pub fn html(&self) -> &str {
        &self.built().1
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`
    pub status: &'static str,
    /// Each dependency: `ok` or `not_configured`.
    #[schema(value_type = Object)]
    pub checks: serde_json::Map<String, serde_json::Value>,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database (and Redis, when configured) answer.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, body = Readiness),
    (status = 503, description = "A dependency is down (`not_ready`)", body = ErrorBody),
))]
pub async fn readyz(State(state): State<Services>) -> Result<Json<Readiness>, ApiError> {
    let mut checks = serde_json::Map::new();
    let mut failed = Vec::new();
    let db = tokio::time::timeout(std::time::Duration::from_secs(2), state.store().ping()).await;
    let db_ok = matches!(db, Ok(Ok(())));
    if !db_ok {
        tracing::warn!(?db, "readiness: database check failed");
        failed.push("database");
    }
    checks.insert(
        "database".into(),
        if db_ok { "ok" } else { "unavailable" }.into(),
    );
    match state.redis() {
        None => {
            checks.insert("redis".into(), "not_configured".into());
        }
        Some(redis) => {
            let result = redis.ping().await;
            if let Err(e) = &result {
                tracing::warn!(error = %e, "readiness: redis check failed");
                failed.push("redis");
            }
            checks.insert(
                "redis".into(),
                if result.is_ok() { "ok" } else { "unavailable" }.into(),
            );
        }
    }
    if failed.is_empty() {
        Ok(Json(Readiness {
            status: "ready",
            checks,
        }))
    } else {
        Err(ApiError::new(
            ErrorCode::NotReady,
            format!("Not ready: {} not answering.", failed.join(" and ")),
        )
        .with_detail("checks", checks.into()))
    }
}

/// Metrics in the Prometheus (OpenMetrics) text format. With `LANYARD_METRICS_LISTEN` set they
/// are served only there, and this route answers like an unknown one.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"),
    (status = 404, description = "`not_found`: metrics are served on a separate listener", body = ErrorBody),
))]
pub async fn metrics(State(state): State<Services>) -> Response {
    if state.config().metrics_listen.is_some() {
        let mut response = unknown_route().into_response();
        response.extensions_mut().insert(CountAsUnmatched);
        return response;
    }
    scrape(State(state)).await
}

/// The scrape itself, on whichever listener serves it.
pub async fn scrape(State(state): State<Services>) -> Response {
    state.publish_gauges();
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().encode(),
    )
        .into_response()
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses(
    (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"),
))]
pub async fn openapi_json(Extension(docs): Extension<Arc<PublishedDocs>>) -> Response {
    (
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-cache"),
        ],
        docs.openapi_json().to_string(),
    )
        .into_response()
}

/// A human-readable page for the API, with the error-code table. Needs no network.
#[utoipa::path(get, path = "/docs", tag = "ops", responses(
    (status = 200, description = "HTML", content_type = "text/html"),
))]
pub async fn docs(Extension(docs): Extension<Arc<PublishedDocs>>) -> Response {
    ([(CACHE_CONTROL, "no-cache")], Html(docs.html().to_string())).into_response()
}
