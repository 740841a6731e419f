//! `ApiError`: the one error type handlers return, rendered as the envelope of CONTRACT §5.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lanyard_core::ErrorCode;
use lanyard_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Per-request facts the error renderer needs, set by the request middleware.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub public_url: Arc<str>,
}

tokio::task_local! {
    pub static REQUEST: RequestContext;
}

/// The error envelope, as documented in the OpenAPI document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always `false`.
    pub ok: bool,
    /// A code from the registry; see the error table on `/docs`.
    pub error: &'static str,
    pub message: String,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
    /// Code-specific fields, such as `choices`.
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    message: Cow<'static, str>,
    retry_after: Option<u32>,
    details: serde_json::Map<String, serde_json::Value>,
    /// For 5xx: the cause, logged but never sent.
    cause: Option<anyhow::Error>,
}

/// What a 5xx says to the client; the cause stays in the log.
const OPAQUE_MESSAGE: &str =
    "Lanyard could not complete the request; the server log has the cause under this request id.";

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: code.spec().retry_after_seconds,
            details: serde_json::Map::new(),
            cause: None,
        }
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "No such resource.")
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// An unexpected failure: logged with its cause chain, answered opaquely.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(ErrorCode::InternalError, OPAQUE_MESSAGE);
        e.cause = Some(cause.into());
        e
    }

    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn with_detail(mut self, key: &str, value: serde_json::Value) -> Self {
        self.details.insert(key.to_string(), value);
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.spec().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                let mut err = ApiError::new(
                    ErrorCode::ServiceUnavailable,
                    "The database is not answering; retry shortly.",
                );
                err.cause = Some(e.into());
                err
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let ctx = REQUEST.try_with(Clone::clone).ok();
        let request_id = ctx
            .as_ref()
            .map_or_else(|| "none".to_string(), |c| c.request_id.clone());
        let public_url = ctx.as_ref().map_or("", |c| &c.public_url);
        let message = if status.is_server_error() {
            if let Some(cause) = &self.cause {
                tracing::error!(code = %self.code, request_id, error = format!("{cause:#}"), "request failed");
            } else {
                tracing::error!(code = %self.code, request_id, message = %self.message, "request failed");
            }
            if self.code == ErrorCode::InternalError {
                OPAQUE_MESSAGE.into()
            } else {
                self.message
            }
        } else {
            self.message
        };
        let body = ErrorBody {
            ok: false,
            error: self.code.as_str(),
            message: message.into_owned(),
            request_id,
            agent_action: self.code.agent_action(public_url),
            retry_after_seconds: self.retry_after,
            details: self.details,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// `Result` for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
