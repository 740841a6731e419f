//! Agent sessions: create, list, inspect, stop.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use lanyard_store::{SessionRecord, SessionStatus};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::sessions::{self, CreateSession};
use crate::http::auth::TeamAuth;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ApiPath};
use crate::services::Services;
use lanyard_core::wire::ErrorEnvelope as ErrorBody;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionBody {
    /// `https://HOST/OWNER/REPO` URLs (`http` for a local host); `.git` and a trailing `/` are fine.
    #[schema(min_items = 1, max_items = 100)]
    pub repos: Vec<String>,
    /// GitHub App permissions, e.g. `{"contents": "write"}`. Absent: `{"contents": "read", "metadata": "read"}`; `{}` is refused.
    pub permissions: Option<BTreeMap<String, String>>,
    /// Session lifetime; defaults to the tier's default and may not exceed its maximum.
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSessionView {
    pub session_id: Uuid,
    /// The runner's credential (`lrt_…`), shown only here.
    pub runner_token: String,
    pub expires_at: DateTime<Utc>,
    pub repos: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub session_id: Uuid,
    /// `active`, `stopped` or `expired`.
    #[schema(value_type = String, example = "active")]
    pub status: SessionStatus,
    pub repos: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoppedSession {
    pub session_id: Uuid,
    /// Always `stopped`.
    #[schema(value_type = String, example = "stopped")]
    pub status: SessionStatus,
    /// Tokens revoked at GitHub because this session was their last live holder.
    pub tokens_revoked: usize,
}

fn view(s: SessionRecord, now: DateTime<Utc>) -> SessionView {
    SessionView {
        session_id: s.id,
        status: s.status(now),
        repos: s.repos.clone(),
        created_at: s.created_at,
        expires_at: s.expires_at,
    }
}

/// Start an agent session over some repositories; returns its runner token once.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = CreateSessionBody, security(("bearer" = [])), responses(
    (status = 201, body = CreatedSessionView),
    (status = 403, description = "`quota_exceeded`", body = ErrorBody),
    (status = 422, description = "`repo_not_connected`, `invalid_repo_url`, `unknown_github_host`, `invalid_permissions`, `invalid_ttl` or `ttl_too_long`", body = ErrorBody),
))]
pub async fn create(
    State(state): State<Services>,
    auth: TeamAuth,
    ApiJson(body): ApiJson<CreateSessionBody>,
) -> ApiResult<(StatusCode, Json<CreatedSessionView>)> {
    let input = CreateSession::parse(&body.repos, body.permissions.as_ref(), body.ttl_seconds)?;
    let created = sessions::create(&state, &auth.team, input, &auth.actor()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSessionView {
            session_id: created.session.id,
            runner_token: created.runner_token.expose_secret().to_string(),
            expires_at: created.session.expires_at,
            repos: created.session.repos,
        }),
    ))
}

/// The team's sessions, newest first (at most 200).
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])), responses(
    (status = 200, body = SessionList),
))]
pub async fn list(State(state): State<Services>, auth: TeamAuth) -> ApiResult<Json<SessionList>> {
    let now = state.clock().now();
    let sessions = state.store().list_sessions(auth.team.id, 200).await?;
    Ok(Json(SessionList {
        sessions: sessions.into_iter().map(|s| view(s, now)).collect(),
    }))
}

/// One session.
#[utoipa::path(get, path = "/v1/sessions/{session_id}", tag = "sessions", params(("session_id" = Uuid, Path)), security(("bearer" = [])), responses(
    (status = 200, body = SessionView),
    (status = 404, description = "`not_found`", body = ErrorBody),
))]
pub async fn get(
    State(state): State<Services>,
    auth: TeamAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SessionView>> {
    let session = state
        .store()
        .get_session(auth.team.id, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(view(session, state.clock().now())))
}

/// Stop a session: its runner gets 410, and tokens only it still held are revoked at GitHub.
#[utoipa::path(delete, path = "/v1/sessions/{session_id}", tag = "sessions", params(("session_id" = Uuid, Path)), security(("bearer" = [])), responses(
    (status = 200, body = StoppedSession),
    (status = 404, description = "`not_found`", body = ErrorBody),
))]
pub async fn stop(
    State(state): State<Services>,
    auth: TeamAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<StoppedSession>> {
    let stopped = sessions::stop(&state, auth.team.id, id, &auth.actor()).await?;
    Ok(Json(StoppedSession {
        session_id: stopped.session.id,
        status: SessionStatus::Stopped,
        tokens_revoked: stopped.tokens_revoked,
    }))
}
