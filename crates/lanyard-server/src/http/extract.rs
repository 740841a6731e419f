//! Extractors whose rejections are envelopes, never a framework's plain-text body.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use lanyard_core::ErrorCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body. Malformed → 400 `invalid_body`, wrong content type → 415, too large → 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the body with Content-Type: application/json.",
        ),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "The body is larger than the {} KiB this server accepts.",
                BODY_LIMIT / 1024
            ),
        ),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::new(ErrorCode::InvalidBody, "The body is not valid JSON.")
        }
        JsonRejection::JsonDataError(e) => ApiError::new(
            ErrorCode::InvalidBody,
            format!(
                "The body does not have the expected shape: {}",
                describe_data_error(&e.body_text())
            ),
        ),
        _ => ApiError::new(ErrorCode::InvalidBody, "The body could not be read."),
    }
}

/// serde's messages can quote the offending value, which may be a secret sent in the wrong
/// field; keep the field path and the kind of problem, and drop any quoted value.
fn describe_data_error(text: &str) -> String {
    let detail = text.split_once("target type: ").map_or(text, |(_, d)| d);
    let position = detail.find(" at line").map_or("", |i| &detail[i..]);
    let backticked = |prefix: &str| {
        let start = detail.find(prefix)?;
        let rest = &detail[start + prefix.len()..];
        let end = rest.find('`')?;
        Some(format!("{prefix}{}`", &rest[..end]))
    };
    if let Some(m) = backticked("missing field `").or_else(|| backticked("unknown field `")) {
        return format!("{m}{position}");
    }
    let field = detail
        .split_once(": ")
        .map(|(path, _)| path)
        .filter(|p| !p.contains(' ') && *p != ".")
        .map_or(String::new(), |p| format!(" `{p}`"));
    let problem = if detail.contains("invalid type") {
        "has the wrong type"
    } else {
        "has an invalid value"
    };
    format!("field{field} {problem}{position}")
}

/// Query parameters. Invalid → 400 `invalid_query`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::new(
                ErrorCode::InvalidQuery,
                // Axum's text names the parameter and what is wrong with it; keep both.
                format!(
                    "Invalid query string: {}.",
                    e.body_text()
                        .trim_start_matches("Failed to deserialize query string")
                        .trim_start_matches(':')
                        .trim()
                        .trim_end_matches('.')
                ),
            )),
            Err(_) => Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "Invalid query string.",
            )),
        }
    }
}

/// Path parameters. A malformed id is simply not found (CONTRACT §3).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::not_found()),
            Err(e) => Err(ApiError::internal(anyhow::anyhow!("path extraction: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_keep_field_names_but_drop_values() {
        let msg = describe_data_error(
            "Failed to deserialize the JSON body into the target type: missing field `name` at line 1 column 2",
        );
        assert_eq!(msg, "missing field `name` at line 1 column 2");
        let msg = describe_data_error(
            "Failed to deserialize the JSON body into the target type: tier: invalid type: string \"ghp_secretvalue\", expected u32 at line 1 column 30",
        );
        assert_eq!(msg, "field `tier` has the wrong type at line 1 column 30");
    }
}
