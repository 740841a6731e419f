//! GitHub connections: which owners on which hosts the team's sessions can reach.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use lanyard_store::{ConnectionKind, ConnectionRecord, ConnectionStatus};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::connections::{self, Connect, Trust};
use crate::http::auth::TeamAuth;
use crate::http::error::ApiResult;
use crate::http::extract::{ApiJson, ApiPath};
use crate::services::Services;
use lanyard_core::wire::ErrorEnvelope as ErrorBody;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// The host as it appears in repo URLs, e.g. `github.com`.
    pub host: String,
    /// The GitHub user or organisation.
    pub owner: String,
    /// A GitHub App installation on `owner`; checked with GitHub.
    pub installation_id: Option<u64>,
    /// A personal access token; stored encrypted and never returned.
    #[schema(value_type = Option<String>)]
    pub pat: Option<SecretString>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotatePat {
    /// The new personal access token; verified with GitHub, stored encrypted, never returned.
    #[schema(value_type = String)]
    pub pat: SecretString,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    pub connection_id: Uuid,
    pub host: String,
    pub owner: String,
    /// `github_app` or `pat`.
    #[schema(value_type = String, example = "github_app")]
    pub kind: ConnectionKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<i64>,
    /// `active`, or `suspended` while the installation is suspended at GitHub. (An uninstalled
    /// App's connections are removed.)
    #[schema(value_type = String, example = "active")]
    pub status: ConnectionStatus,
    /// When the PAT expires, if GitHub reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pat_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<ConnectionRecord> for ConnectionView {
    fn from(c: ConnectionRecord) -> Self {
        Self {
            connection_id: c.id,
            host: c.host.to_string(),
            owner: c.owner.to_string(),
            kind: c.kind,
            installation_id: c.installation_id.map(|i| i.get()),
            status: c.status,
            pat_expires_at: c.pat_expires_at,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub connections: Vec<ConnectionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedConnection {
    pub connection_id: Uuid,
    pub deleted: bool,
}

/// Connect a GitHub owner to the team with a PAT. (A team binds an App installation through the
/// installation flow: `{installation_id}` here is refused with `installation_proof_required`.)
#[utoipa::path(post, path = "/v1/github/connections", tag = "github", request_body = CreateConnection, security(("bearer" = [])), responses(
    (status = 201, body = ConnectionView),
    (status = 403, description = "`installation_proof_required`", body = ErrorBody),
    (status = 409, description = "`connection_exists`", body = ErrorBody),
    (status = 422, description = "`pat_invalid`, `unknown_github_host` or `invalid_connection`", body = ErrorBody),
    (status = 429, description = "`rate_limited`", body = ErrorBody),
    (status = 502, description = "`github_rejected`", body = ErrorBody),
    (status = 503, description = "`github_unavailable`", body = ErrorBody),
))]
pub async fn create(
    State(state): State<Services>,
    auth: TeamAuth,
    ApiJson(body): ApiJson<CreateConnection>,
) -> ApiResult<(StatusCode, Json<ConnectionView>)> {
    let input = Connect::parse(&body.host, &body.owner, body.installation_id, body.pat)?;
    let record =
        connections::connect(&state, auth.team.id, input, Trust::Team, &auth.actor()).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// List the team's GitHub connections (never a PAT).
#[utoipa::path(get, path = "/v1/github/connections", tag = "github", security(("bearer" = [])), responses(
    (status = 200, body = ConnectionList),
))]
pub async fn list(
    State(state): State<Services>,
    auth: TeamAuth,
) -> ApiResult<Json<ConnectionList>> {
    let connections = state.store().list_connections(auth.team.id).await?;
    Ok(Json(ConnectionList {
        connections: connections.into_iter().map(Into::into).collect(),
    }))
}

/// Remove a connection. Sessions that used it stop getting credentials for that owner.
#[utoipa::path(delete, path = "/v1/github/connections/{connection_id}", tag = "github", params(("connection_id" = Uuid, Path)), security(("bearer" = [])), responses(
    (status = 200, body = DeletedConnection),
    (status = 404, description = "`not_found`", body = ErrorBody),
))]
pub async fn delete(
    State(state): State<Services>,
    auth: TeamAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<DeletedConnection>> {
    connections::disconnect(&state, auth.team.id, id, &auth.actor()).await?;
    Ok(Json(DeletedConnection {
        connection_id: id,
        deleted: true,
    }))
}

/// Rotate a PAT connection's token in place; live sessions get the new one on their next fetch.
#[utoipa::path(patch, path = "/v1/github/connections/{connection_id}", tag = "github", params(("connection_id" = Uuid, Path)), request_body = RotatePat, security(("bearer" = [])), responses(
    (status = 200, body = ConnectionView),
    (status = 404, description = "`not_found`", body = ErrorBody),
    (status = 422, description = "`pat_invalid` or `invalid_connection` (not a PAT connection)", body = ErrorBody),
    (status = 429, description = "`rate_limited`", body = ErrorBody),
    (status = 502, description = "`github_rejected`", body = ErrorBody),
    (status = 503, description = "`github_unavailable`", body = ErrorBody),
))]
pub async fn rotate(
    State(state): State<Services>,
    auth: TeamAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RotatePat>,
) -> ApiResult<Json<ConnectionView>> {
    let record = connections::rotate_pat(&state, auth.team.id, id, body.pat, &auth.actor()).await?;
    Ok(Json(record.into()))
}
