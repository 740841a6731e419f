//! The credential path: a runner token fetches its session's GitHub credential.
//! This is the hot path: the session and the token are served from memory when cached, and the
//! response borrows from them.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lanyard_core::github::Scheme;
use lanyard_core::wire::{
    CompatCredential, CredentialSource, ErrorEnvelope as ErrorBody, GithubCredential,
};
use lanyard_store::{RunnerSession, ScopeRecord};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::broker::Served;
use crate::domain::credentials;
use crate::http::auth::RunnerAuth;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::services::Services;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CredentialQuery {
    /// Needed when the session's repositories span several hosts.
    pub host: Option<String>,
    /// Needed when they span several owners on the host.
    pub owner: Option<String>,
}

/// The domain's answer for the scope the query names.
async fn serve<'s>(
    svc: &Services,
    session: &'s RunnerSession,
    session_id: Uuid,
    query: &CredentialQuery,
) -> ApiResult<(&'s ScopeRecord, Served)> {
    let host = query.host.as_deref();
    let owner = query.owner.as_deref();
    Ok(credentials::serve(svc, session, session_id, host, owner).await?)
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
    (status = 400, description = "`invalid_query`", body = ErrorBody),
    (status = 404, description = "`not_found`: another session, or no such host/owner", body = ErrorBody),
    (status = 410, description = "`session_ended`", body = ErrorBody),
    (status = 422, description = "`owner_required` (with `choices`) or `repo_not_connected`", body = ErrorBody),
    (status = 502, description = "`github_rejected`", body = ErrorBody),
    (status = 503, description = "`github_unavailable`", body = ErrorBody),
))]
pub async fn github(
    State(svc): State<Services>,
    RunnerAuth(session): RunnerAuth,
    ApiPath(session_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<CredentialQuery>,
) -> ApiResult<Response> {
    let (scope, served) = serve(&svc, &session, session_id, &query).await?;
    let credential = &served.credential;
    let render = || {
        serde_json::to_vec(&GithubCredential {
            token: Cow::Borrowed(credential.token.expose_secret()),
            expires_at: served.expires_at,
            host: Cow::Borrowed(scope.host.as_str()),
            owner: Cow::Borrowed(scope.owner.as_str()),
            // The only scheme repositories on the host are served over: that of its API.
            scheme: svc
                .hosts()
                .get(&scope.host)
                .map_or(Scheme::Https, |h| h.scheme),
            source: served.source,
            repositories: Cow::Borrowed(&credential.repositories),
            permissions: Cow::Borrowed(&credential.permissions),
        })
        .expect("a credential serialises")
    };
    // An App token's body is the same for every session of its scope: render it once. A PAT is
    // read afresh for each request, so it is rendered each time.
    let body = match served.source {
        CredentialSource::GithubApp => credential
            .rendered
            .get_or_init(|| Bytes::from(render().into_boxed_slice()))
            .clone(),
        _ => Bytes::from(render()),
    };
    let mut response = (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Compatibility route for existing agent runners, with the runner token as Bearer.
#[utoipa::path(get, path = "/api/projects/{team_id}/agentic-sessions/{session_id}/credentials/github", tag = "credentials", params(("team_id" = Uuid, Path), ("session_id" = Uuid, Path), CredentialQuery), security(("bearer" = [])), responses(
    (status = 200, body = CompatCredential),
    (status = 400, description = "`invalid_query`", body = ErrorBody),
    (status = 404, description = "`not_found`", body = ErrorBody),
    (status = 410, description = "`session_ended`", body = ErrorBody),
    (status = 422, description = "`owner_required` (with `choices`) or `repo_not_connected`", body = ErrorBody),
    (status = 502, description = "`github_rejected`", body = ErrorBody),
    (status = 503, description = "`github_unavailable`", body = ErrorBody),
))]
pub async fn compat(
    State(svc): State<Services>,
    RunnerAuth(session): RunnerAuth,
    ApiPath((team_id, session_id)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(query): ApiQuery<CredentialQuery>,
) -> ApiResult<Response> {
    if session.team.id != team_id {
        return Err(ApiError::not_found());
    }
    let (_, served) = serve(&svc, &session, session_id, &query).await?;
    let (user_name, email) = match &session.primary_email {
        Some(email) => (email.split('@').next().unwrap_or(email), email.as_str()),
        None => ("lanyard[bot]", "lanyard[bot]@users.noreply.github.com"),
    };
    Ok(no_store(CompatCredential {
        token: Cow::Borrowed(served.credential.token.expose_secret()),
        user_name: Cow::Borrowed(user_name),
        email: Cow::Borrowed(email),
        provider: Cow::Borrowed("github"),
        expires_at: served.expires_at,
    }))
}
