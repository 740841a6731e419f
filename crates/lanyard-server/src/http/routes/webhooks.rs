//! `POST /v1/github/webhooks/{host}`: GitHub's deliveries for a host's App.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lanyard_core::wire::ErrorEnvelope as ErrorBody;
use lanyard_core::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::webhooks::{self, Incoming, Received, MAX_BODY};
use crate::http::error::ApiError;
use crate::http::extract::ApiPath;
use crate::services::Services;

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAccepted {
    /// Always `true`.
    pub ok: bool,
}

/// Receive a GitHub webhook delivery for `host`. Signed with the host's webhook secret
/// (`X-Hub-Signature-256`); a redelivery (`X-GitHub-Delivery` seen before) changes nothing.
#[utoipa::path(post, path = "/v1/github/webhooks/{host}", tag = "github", params(("host" = String, Path, description = "The GitHub host, as configured")), request_body(content = Object, description = "GitHub's event payload", content_type = "application/json"), responses(
    (status = 200, description = "Processed, or a delivery seen before", body = WebhookAccepted),
    (status = 204, description = "An event or action Lanyard does not act on"),
    (status = 400, description = "`invalid_body`: no delivery id, or an unreadable payload", body = ErrorBody),
    (status = 401, description = "`invalid_signature`", body = ErrorBody),
    (status = 404, description = "`not_found`: no webhook is configured for the host", body = ErrorBody),
))]
pub async fn receive(
    State(svc): State<Services>,
    ApiPath(host): ApiPath<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("A delivery is at most {} MiB.", MAX_BODY / (1024 * 1024)),
        )
        .into_response();
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let incoming = Incoming {
        host: &host,
        event: header("x-github-event"),
        delivery: header("x-github-delivery"),
        signature: header("x-hub-signature-256"),
        body: &body,
    };
    match webhooks::receive(&svc, incoming).await {
        Ok(Received::Processed | Received::Duplicate) => {
            Json(WebhookAccepted { ok: true }).into_response()
        }
        Ok(Received::Ignored) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
