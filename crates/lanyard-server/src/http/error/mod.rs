//! `ApiError`: the one error type handlers return, rendered as the envelope of CONTRACT §5.
//! [`from_domain`] is the one place where every domain error becomes an envelope.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lanyard_core::wire::{ErrorEnvelope, HostOwner};
use lanyard_core::ErrorCode;

mod documented;
mod from_domain;

pub use documented::{codes_of, Documented};

/// Per-request facts the error renderer needs, set by the request middleware.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: Arc<str>,
    pub public_url: Arc<str>,
}

tokio::task_local! {
    pub static REQUEST: RequestContext;
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    message: Cow<'static, str>,
    retry_after: Option<u32>,
    choices: Option<Vec<HostOwner>>,
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
            choices: None,
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
        self.retry_after = Some(seconds.max(1));
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

    /// What went wrong underneath a 5xx (logged, never sent).
    pub fn cause(&self) -> Option<&anyhow::Error> {
        self.cause.as_ref()
    }
}

/// `code: message`: what the CLI prints of an error the API would answer.
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The unknown-route answer. The e2e guard answers with exactly this too.
pub fn unknown_route() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "No such route.")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let ctx = REQUEST.try_with(Clone::clone).ok();
        let request_id: Cow<'_, str> = ctx.as_ref().map_or(Cow::Borrowed("none"), |c| {
            Cow::Owned(c.request_id.to_string())
        });
        let public_url = ctx.as_ref().map_or("", |c| &c.public_url);
        let message = if status.is_server_error() {
            match &self.cause {
                Some(cause) => {
                    tracing::error!(code = %self.code, error = format!("{cause:#}"), "request failed")
                }
                None => {
                    tracing::error!(code = %self.code, message = %self.message, "request failed")
                }
            }
            if self.code == ErrorCode::InternalError {
                OPAQUE_MESSAGE.into()
            } else {
                self.message
            }
        } else {
            self.message
        };
        let body = ErrorEnvelope {
            ok: false,
            error: Cow::Borrowed(self.code.as_str()),
            message,
            request_id,
            agent_action: self.code.agent_action(public_url),
            retry_after_seconds: self.retry_after,
            choices: self.choices,
            details: self.details,
        };
        let mut response = (status, axum::Json(body)).into_response();
        // For the request middleware's count of error codes.
        response.extensions_mut().insert(self.code);
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
