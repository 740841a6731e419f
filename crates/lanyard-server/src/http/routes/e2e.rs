//! `POST /internal/e2e/account` and `DELETE /internal/e2e/account/{team_id}`: hidden, guarded.
//!
//! Until the guard passes, every answer is byte-for-byte the unknown-route 404 (apart from the
//! request id): any method, any body, any content type. Only then are method, body and id read.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use lanyard_core::secret::{constant_time_eq, sha256_hex};
use lanyard_core::{Actor, ErrorCode, Tier};
use secrecy::ExposeSecret;
use serde::Serialize;
use uuid::Uuid;

use crate::domain::e2e::{self, E2eAccount, Reaped};
use crate::http::error::{unknown_route, ApiError};
use crate::http::extract::BODY_LIMIT;
use crate::http::observe::CountAsUnmatched;
use crate::metrics::{E2eLabels, E2eOp, E2eResult, Label};
use crate::ratelimit::{Decision, LimitKey};
use crate::services::Services;

#[derive(Debug, Serialize)]
struct SeededView {
    /// Always `runner_token`.
    kind: &'static str,
    session_id: Uuid,
    token: String,
}

#[derive(Debug, Serialize)]
struct AccountView {
    team_id: Uuid,
    user_id: Uuid,
    email: String,
    tier: Tier,
    session_jwt: String,
    expires_at: DateTime<Utc>,
    seeded_count: usize,
    seeded_tokens: Vec<SeededView>,
}

impl From<E2eAccount> for AccountView {
    fn from(a: E2eAccount) -> Self {
        let seeded_tokens: Vec<SeededView> = a
            .seeded
            .into_iter()
            .map(|s| SeededView {
                kind: "runner_token",
                session_id: s.session_id,
                token: s.token.expose_secret().to_string(),
            })
            .collect();
        Self {
            team_id: a.team_id,
            user_id: a.user_id,
            email: a.email.to_string(),
            tier: a.tier,
            session_jwt: a.session_jwt.expose_secret().to_string(),
            expires_at: a.expires_at,
            seeded_count: seeded_tokens.len(),
            seeded_tokens,
        }
    }
}

#[derive(Debug, Serialize)]
struct ReapView {
    ok: bool,
    team_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    already_gone: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions_stopped: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    team_deleted: Option<bool>,
}

impl ReapView {
    fn new(team_id: Uuid, reaped: Reaped) -> Self {
        let deleted = match reaped {
            Reaped::AlreadyGone => None,
            Reaped::Deleted { sessions_stopped } => Some(sessions_stopped),
        };
        Self {
            ok: true,
            team_id,
            already_gone: deleted.is_none().then_some(true),
            sessions_stopped: deleted,
            team_deleted: deleted.map(|_| true),
        }
    }
}

pub const TOKEN_HEADER: &str = "x-e2e-token";

/// The caller's rate-limit key if `X-E2E-Token` matches the configured token.
fn guard(state: &Services, headers: &HeaderMap) -> Option<String> {
    let expected = state.config().e2e_account_token.as_ref()?;
    let presented = headers.get(TOKEN_HEADER)?.as_bytes();
    constant_time_eq(presented, expected.expose_secret().as_bytes())
        .then(|| sha256_hex(expected.expose_secret()))
}

fn result_label(e: &ApiError) -> E2eResult {
    match e.code {
        ErrorCode::NotTestCohort => E2eResult::NotTestCohort,
        ErrorCode::RateLimited => E2eResult::RateLimited,
        _ if e.status().is_client_error() => E2eResult::BadRequest,
        _ => E2eResult::Error,
    }
}

/// Guard, rate limit, then the operation; counts the outcome.
async fn guarded<F, Fut, T>(state: &Services, op: E2eOp, headers: &HeaderMap, run: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
    T: Serialize,
{
    let count = |result| {
        state
            .metrics()
            .e2e_accounts
            .get_or_create(&E2eLabels {
                op: Label(op),
                result: Label(result),
            })
            .inc()
    };
    let Some(key) = guard(state, headers) else {
        count(E2eResult::Unauthorized);
        let mut response = unknown_route().into_response();
        response.extensions_mut().insert(CountAsUnmatched);
        return response;
    };
    let result = match state.limiters().e2e.check(LimitKey::SecretHash(&key)).await {
        Decision::Limited { retry_after } => Err(ApiError::new(
            ErrorCode::RateLimited,
            "Too many e2e account calls for this token in the last hour.",
        )
        .with_retry_after(retry_after)),
        Decision::Allowed => run().await,
    };
    match result {
        Ok(body) => {
            count(E2eResult::Ok);
            Json(body).into_response()
        }
        Err(e) => {
            count(result_label(&e));
            e.into_response()
        }
    }
}

/// Create a test account.
pub async fn account(State(state): State<Services>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let inner = state.clone();
    guarded(
        &state,
        E2eOp::Create,
        &parts.headers.clone(),
        || async move {
            if parts.method != Method::POST {
                return Err(unknown_route());
            }
            let bytes = axum::body::to_bytes(body, BODY_LIMIT)
                .await
                .map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge, "The body is too large."))?;
            let (tier, with_resources) = parse_create(&bytes)?;
            let account = e2e::create(&inner, tier, with_resources).await?;
            Ok(AccountView::from(account))
        },
    )
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
        Some(_) => return Err(e2e::E2eError::InvalidTier.into()),
    };
    let with_resources = match object.get("with_resources") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => return Err(invalid()),
    };
    Ok((e2e::parse_tier(tier)?, with_resources))
}

/// Reap a test account.
pub async fn reap(State(state): State<Services>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let raw_id = parts
        .uri
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let inner = state.clone();
    guarded(&state, E2eOp::Reap, &parts.headers.clone(), || async move {
        if parts.method != Method::DELETE {
            return Err(unknown_route());
        }
        let team_id = Uuid::parse_str(&raw_id)
            .map_err(|_| ApiError::new(ErrorCode::InvalidTeamId, "The team id must be a UUID."))?;
        let reaped = e2e::reap(&inner, team_id, &Actor::e2e()).await?;
        Ok(ReapView::new(team_id, reaped))
    })
    .await
}
