//! The credential path: a runner token fetches its session's GitHub credential.
//! This is the hot path: the session and the token are served from memory when cached.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use lanyard_core::ErrorCode;
use lanyard_store::{RunnerSession, ScopeRecord};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::RunnerAuth;
use crate::broker::{BrokerError, Served};
use crate::domain::connections::github_error;
use crate::domain::sessions::pick_scope;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CredentialQuery {
    /// Needed when the session's repositories span several hosts.
    pub host: Option<String>,
    /// Needed when they span several owners on the host.
    pub owner: Option<String>,
}

/// Borrows from the cached credential: the hot path copies no strings to answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct GithubCredential<'a> {
    pub token: &'a str,
    /// Present exactly for `github_app` tokens; at least `token_min_remaining` away.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub host: &'a str,
    pub owner: &'a str,
    /// `github_app` or `pat`.
    pub source: &'static str,
    /// Repository names the token is scoped to.
    #[schema(value_type = Vec<String>)]
    pub repositories: &'a [String],
    #[schema(value_type = BTreeMap<String, String>)]
    pub permissions: &'a BTreeMap<String, String>,
}

/// The compatibility shape for existing agent runners (camelCase).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatCredential<'a> {
    pub token: &'a str,
    /// The git identity to commit as.
    pub user_name: String,
    pub email: String,
    /// Always `github`.
    pub provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

fn broker_error(e: BrokerError) -> ApiError {
    match e {
        BrokerError::Unavailable { retry_after } => {
            let mut err = ApiError::new(
                ErrorCode::GithubUnavailable,
                "GitHub is unavailable and no cached token has enough life left; retry shortly.",
            );
            if let Some(s) = retry_after {
                err = err.with_retry_after(u32::try_from(s).unwrap_or(u32::MAX).max(1));
            }
            err
        }
        BrokerError::Rejected(rejected) => github_error(&rejected),
        BrokerError::NotConnected { host, owner } => ApiError::new(
            ErrorCode::RepoNotConnected,
            format!("{owner} is no longer connected to this team on {host}."),
        ),
        BrokerError::Store(e) => e.into(),
        BrokerError::Internal(m) => ApiError::internal(anyhow::anyhow!(m)),
    }
}

/// Checks the runner's session is the one in the path and still live, then serves.
async fn serve<'s>(
    state: &AppState,
    session: &'s RunnerSession,
    session_id: Uuid,
    query: &CredentialQuery,
) -> ApiResult<(&'s ScopeRecord, Served)> {
    if session.session.id != session_id {
        return Err(ApiError::not_found());
    }
    if session.session.status(state.clock().now()) != lanyard_store::SessionStatus::Active {
        return Err(ApiError::new(
            ErrorCode::SessionEnded,
            "This session has ended; it serves no more credentials.",
        ));
    }
    let scope = pick_scope(session, query.host.as_deref(), query.owner.as_deref())?;
    let served = state
        .broker()
        .credential(session, scope)
        .await
        .map_err(broker_error)?;
    Ok((scope, served))
}

fn no_store(body: impl Serialize) -> Response {
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A GitHub credential for this session, with at least `token_min_remaining` of life.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/credentials/github", tag = "credentials", params(("session_id" = Uuid, Path), CredentialQuery), security(("bearer" = [])), responses(
    (status = 200, body = GithubCredential, headers(("cache-control" = String, description = "no-store"))),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 404, description = "`not_found`: another session, or no such host/owner", body = ErrorBody),
    (status = 410, description = "`session_ended`", body = ErrorBody),
    (status = 422, description = "`owner_required` (with `choices`) or `repo_not_connected`", body = ErrorBody),
    (status = 503, description = "`github_unavailable`", body = ErrorBody),
))]
pub async fn github(
    State(state): State<AppState>,
    RunnerAuth(session): RunnerAuth,
    ApiPath(session_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<CredentialQuery>,
) -> ApiResult<Response> {
    let (scope, served) = serve(&state, &session, session_id, &query).await?;
    let credential = &served.credential;
    Ok(no_store(GithubCredential {
        token: credential.token.expose_secret(),
        expires_at: served.expires_at(),
        host: &scope.host,
        owner: &scope.owner,
        source: served.source.as_str(),
        repositories: &credential.repositories,
        permissions: &credential.permissions,
    }))
}

/// Compatibility route for existing agent runners, with the runner token as Bearer.
#[utoipa::path(get, path = "/api/projects/{team_id}/agentic-sessions/{session_id}/credentials/github", tag = "credentials", params(("team_id" = Uuid, Path), ("session_id" = Uuid, Path), CredentialQuery), security(("bearer" = [])), responses(
    (status = 200, body = CompatCredential),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 404, description = "`not_found`", body = ErrorBody),
    (status = 410, description = "`session_ended`", body = ErrorBody),
    (status = 503, description = "`github_unavailable`", body = ErrorBody),
))]
pub async fn compat(
    State(state): State<AppState>,
    RunnerAuth(session): RunnerAuth,
    ApiPath((team_id, session_id)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(query): ApiQuery<CredentialQuery>,
) -> ApiResult<Response> {
    if session.team.id != team_id {
        return Err(ApiError::not_found());
    }
    let (_, served) = serve(&state, &session, session_id, &query).await?;
    let (user_name, email) = match &session.primary_email {
        Some(email) => (
            email.split('@').next().unwrap_or(email).to_string(),
            email.clone(),
        ),
        None => (
            "lanyard[bot]".to_string(),
            "lanyard[bot]@users.noreply.github.com".to_string(),
        ),
    };
    Ok(no_store(CompatCredential {
        token: served.credential.token.expose_secret(),
        user_name,
        email,
        provider: "github",
        expires_at: served.expires_at(),
    }))
}
