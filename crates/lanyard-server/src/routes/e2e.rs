//! `POST /internal/e2e/account` and `DELETE /internal/e2e/account/{team_id}`: hidden, guarded.
//!
//! Until the guard passes, every answer is byte-for-byte the unknown-route 404 (apart from the
//! request id): any method, any body, any content type. Only then are method, body and id read.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lanyard_core::secret::{constant_time_eq, sha256_hex};
use lanyard_core::ErrorCode;
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::app::{unknown_route, BODY_LIMIT};
use crate::domain::e2e;
use crate::error::ApiError;
use crate::metrics::E2eLabels;
use crate::ratelimit::Decision;
use crate::state::AppState;

pub const TOKEN_HEADER: &str = "x-e2e-token";

/// The caller's rate-limit key if `X-E2E-Token` matches the configured token.
fn guard(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let expected = state.config().e2e_account_token.as_ref()?;
    let presented = headers.get(TOKEN_HEADER)?.as_bytes();
    constant_time_eq(presented, expected.expose_secret().as_bytes())
        .then(|| sha256_hex(expected.expose_secret()))
}

fn result_label(e: &ApiError) -> &'static str {
    match e.code {
        ErrorCode::NotTestCohort => "not_test_cohort",
        ErrorCode::RateLimited => "rate_limited",
        _ if e.status().is_client_error() => "bad_request",
        _ => "error",
    }
}

/// Guard, rate limit, then the operation; counts the outcome.
async fn guarded<F, Fut>(
    state: &AppState,
    op: &'static str,
    headers: &HeaderMap,
    run: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, ApiError>>,
{
    let count = |result| {
        state
            .metrics()
            .e2e_accounts
            .get_or_create(&E2eLabels { op, result })
            .inc()
    };
    let Some(key) = guard(state, headers) else {
        count("unauthorized");
        return unknown_route().into_response();
    };
    let result = match state.e2e_limiter().check(&key).await {
        Decision::Limited { retry_after } => Err(ApiError::new(
            ErrorCode::RateLimited,
            "Too many e2e account calls for this token in the last hour.",
        )
        .with_retry_after(retry_after)),
        Decision::Allowed => run().await,
    };
    match result {
        Ok(body) => {
            count("ok");
            Json(body).into_response()
        }
        Err(e) => {
            count(result_label(&e));
            e.into_response()
        }
    }
}

/// Create a test account.
pub async fn account(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let inner = state.clone();
    guarded(&state, "create", &parts.headers.clone(), || async move {
        if parts.method != Method::POST {
            return Err(unknown_route());
        }
        let bytes = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge, "The body is too large."))?;
        let (tier, with_resources) = parse_create(&bytes)?;
        e2e::create(&inner, tier, with_resources).await
    })
    .await
}

/// An empty body means `{"tier": "free"}`.
fn parse_create(bytes: &[u8]) -> Result<(lanyard_core::Tier, bool), ApiError> {
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidBody,
            "The body must be a JSON object like {\"tier\": \"free\"}.",
        )
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok((lanyard_core::Tier::Free, false));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| invalid())?;
    let object = value.as_object().ok_or_else(invalid)?;
    let tier = match object.get("tier") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(e2e::invalid_tier()),
    };
    let with_resources = match object.get("with_resources") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => return Err(invalid()),
    };
    Ok((e2e::parse_tier(tier)?, with_resources))
}

/// Reap a test account.
pub async fn reap(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let raw_id = parts
        .uri
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let inner = state.clone();
    guarded(&state, "reap", &parts.headers.clone(), || async move {
        if parts.method != Method::DELETE {
            return Err(unknown_route());
        }
        let team_id = Uuid::parse_str(&raw_id)
            .map_err(|_| ApiError::new(ErrorCode::InvalidTeamId, "The team id must be a UUID."))?;
        e2e::reap(&inner, team_id).await
    })
    .await
}
