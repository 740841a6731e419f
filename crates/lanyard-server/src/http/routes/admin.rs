//! The admin API (`/admin/v1/…`): how a platform provisions one Lanyard team per project.
//!
//! Every route sits behind [`guard`]: until `Authorization: Bearer` matches `LANYARD_ADMIN_TOKEN`
//! (compared in constant time) the answer is the unknown-route 404, whatever the method, and it
//! is counted as an unknown route; with no admin token configured the surface does not exist.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use lanyard_core::secret::constant_time_eq;
use lanyard_core::wire::ErrorEnvelope as ErrorBody;
use lanyard_core::{Actor, Tier};
use lanyard_store::{TeamRecord, TeamUpdate};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::connections::{ConnectionView, CreateConnection};
use crate::domain::admin::{self, parse_email, parse_external_id, parse_name, parse_tier};
use crate::domain::admin::{Provision, Provisioned};
use crate::domain::connections::Connect;
use crate::http::error::{unknown_route, ApiResult};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::observe::CountAsUnmatched;
use crate::services::Services;

/// Whether the request carries the configured admin token (compared in constant time).
pub fn authorized(svc: &Services, headers: &axum::http::HeaderMap) -> bool {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match (&svc.config().admin_token, presented) {
        (Some(expected), Some(presented)) => {
            constant_time_eq(presented.as_bytes(), expected.expose_secret().as_bytes())
        }
        _ => false,
    }
}

/// The answer to an admin call without the token: exactly an unknown route's, counted as one.
pub fn hidden() -> Response {
    let mut response = unknown_route().into_response();
    response.extensions_mut().insert(CountAsUnmatched);
    response
}

/// Lets a request through only with the admin token; otherwise answers like an unknown route.
pub async fn guard(State(svc): State<Services>, request: Request, next: Next) -> Response {
    if authorized(&svc, request.headers()) {
        return next.run(request).await;
    }
    hidden()
}

/// The guard when no services are at hand: nothing gets through.
pub async fn closed(_request: Request, _next: Next) -> Response {
    hidden()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionTeam {
    pub name: String,
    /// `free` unless given.
    pub tier: Option<String>,
    /// The platform's id for the team: a second call with it returns the same team.
    pub external_id: Option<String>,
    /// Where notifications go (else the team's primary user).
    pub notification_email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProvisionedTeam {
    pub team_id: Uuid,
    /// The team's first API key, shown only when the team was created now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[schema(value_type = String, example = "free")]
    pub tier: Tier,
    pub external_id: Option<String>,
    /// `false` when a team with this external id already existed (and no key was issued).
    pub created: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTeamView {
    pub team_id: Uuid,
    pub name: String,
    #[schema(value_type = String, example = "pro")]
    pub tier: Tier,
    pub external_id: Option<String>,
    pub notification_email: Option<String>,
    pub is_test_cohort: bool,
    pub created_at: DateTime<Utc>,
}

impl From<TeamRecord> for AdminTeamView {
    fn from(t: TeamRecord) -> Self {
        Self {
            team_id: t.id,
            name: t.name,
            tier: t.tier,
            external_id: t.external_id,
            notification_email: t.notification_email,
            is_test_cohort: t.is_test_cohort,
            created_at: t.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTeamList {
    pub teams: Vec<AdminTeamView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindTeams {
    /// The platform's id; without it, the newest 200 teams.
    pub external_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeTeam {
    pub name: Option<String>,
    pub tier: Option<String>,
    /// An address, or `null` to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub notification_email: Option<Option<String>>,
}

/// A field that was sent (even as `null`) is `Some`; one left out is `None`.
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueKey {
    pub label: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKey {
    pub key_id: Uuid,
    /// The key (`lk_…`), shown only here.
    pub api_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedTeam {
    pub team_id: Uuid,
    pub sessions_stopped: usize,
    /// Always `true`.
    pub team_deleted: bool,
}

/// Create a team (idempotent on `external_id`) with its first API key.
#[utoipa::path(post, path = "/admin/v1/teams", tag = "admin", request_body = ProvisionTeam, security(("admin" = [])), responses(
    (status = 201, description = "Created", body = ProvisionedTeam),
    (status = 200, description = "A team with this external_id exists; nothing was created", body = ProvisionedTeam),
    (status = 400, description = "`invalid_body` or `invalid_tier`", body = ErrorBody),
    (status = 404, description = "`not_found`: no admin token configured, or a wrong one", body = ErrorBody),
    (status = 422, description = "`invalid_team`", body = ErrorBody),
))]
pub async fn create_team(
    State(svc): State<Services>,
    ApiJson(body): ApiJson<ProvisionTeam>,
) -> ApiResult<(StatusCode, Json<ProvisionedTeam>)> {
    let input = Provision {
        name: parse_name(&body.name)?,
        tier: body.tier.as_deref().map_or(Ok(Tier::Free), parse_tier)?,
        external_id: body
            .external_id
            .as_deref()
            .map(parse_external_id)
            .transpose()?,
        notification_email: body
            .notification_email
            .as_deref()
            .map(parse_email)
            .transpose()?,
        is_test_cohort: false,
        primary_user: None,
        actor: Actor::admin(),
    };
    Ok(match admin::provision(&svc, input).await? {
        Provisioned::Created { team, api_key } => (
            StatusCode::CREATED,
            Json(ProvisionedTeam {
                team_id: team.id,
                api_key: Some(api_key.expose_secret().to_string()),
                tier: team.tier,
                external_id: team.external_id,
                created: true,
            }),
        ),
        Provisioned::Existing(team) => (
            StatusCode::OK,
            Json(ProvisionedTeam {
                team_id: team.id,
                api_key: None,
                tier: team.tier,
                external_id: team.external_id,
                created: false,
            }),
        ),
    })
}

/// Find teams by the platform's external id.
#[utoipa::path(get, path = "/admin/v1/teams", tag = "admin", params(FindTeams), security(("admin" = [])), responses(
    (status = 200, body = AdminTeamList),
    (status = 400, description = "`invalid_query`", body = ErrorBody),
    (status = 404, description = "`not_found`: no admin token configured, or a wrong one", body = ErrorBody),
    (status = 422, description = "`invalid_team`: a malformed external_id", body = ErrorBody),
))]
pub async fn find_teams(
    State(svc): State<Services>,
    ApiQuery(query): ApiQuery<FindTeams>,
) -> ApiResult<Json<AdminTeamList>> {
    let teams = admin::find(&svc, query.external_id.as_deref()).await?;
    Ok(Json(AdminTeamList {
        teams: teams.into_iter().map(Into::into).collect(),
    }))
}

/// Change a team's name, tier or notification address.
#[utoipa::path(patch, path = "/admin/v1/teams/{team_id}", tag = "admin", params(("team_id" = Uuid, Path)), request_body = ChangeTeam, security(("admin" = [])), responses(
    (status = 200, body = AdminTeamView),
    (status = 400, description = "`invalid_body` or `invalid_tier`", body = ErrorBody),
    (status = 404, description = "`not_found`", body = ErrorBody),
    (status = 422, description = "`invalid_team`", body = ErrorBody),
))]
pub async fn change_team(
    State(svc): State<Services>,
    ApiPath(team_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ChangeTeam>,
) -> ApiResult<Json<AdminTeamView>> {
    let update = TeamUpdate {
        name: body.name.as_deref().map(parse_name).transpose()?,
        tier: body.tier.as_deref().map(parse_tier).transpose()?,
        notification_email: body
            .notification_email
            .map(|e| e.as_deref().map(parse_email).transpose())
            .transpose()?,
    };
    Ok(Json(
        admin::update(&svc, team_id, update, &Actor::admin())
            .await?
            .into(),
    ))
}

/// Issue another API key for a team.
#[utoipa::path(post, path = "/admin/v1/teams/{team_id}/api-keys", tag = "admin", params(("team_id" = Uuid, Path)), request_body = IssueKey, security(("admin" = [])), responses(
    (status = 201, body = IssuedKey),
    (status = 404, description = "`not_found`", body = ErrorBody),
    (status = 422, description = "`invalid_label`", body = ErrorBody),
))]
pub async fn issue_key(
    State(svc): State<Services>,
    ApiPath(team_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<IssueKey>,
) -> ApiResult<(StatusCode, Json<IssuedKey>)> {
    let label = super::api_keys::parse_label(body.label.as_deref())?;
    let (record, secret): (_, SecretString) =
        admin::issue_key(&svc, team_id, label, &Actor::admin()).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedKey {
            key_id: record.id,
            api_key: secret.expose_secret().to_string(),
        }),
    ))
}

/// Bind a GitHub connection to a team directly: the platform is trusted, and an installation
/// is checked with GitHub (its account must be `owner`).
#[utoipa::path(post, path = "/admin/v1/teams/{team_id}/github/connections", tag = "admin", params(("team_id" = Uuid, Path)), request_body = CreateConnection, security(("admin" = [])), responses(
    (status = 201, body = ConnectionView),
    (status = 404, description = "`not_found`", body = ErrorBody),
    (status = 409, description = "`connection_exists`", body = ErrorBody),
    (status = 422, description = "`installation_mismatch`, `pat_invalid`, `unknown_github_host` or `invalid_connection`", body = ErrorBody),
    (status = 502, description = "`github_rejected`", body = ErrorBody),
    (status = 503, description = "`github_unavailable`", body = ErrorBody),
))]
pub async fn connect(
    State(svc): State<Services>,
    ApiPath(team_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateConnection>,
) -> ApiResult<(StatusCode, Json<ConnectionView>)> {
    let input = Connect::parse(&body.host, &body.owner, body.installation_id, body.pat)?;
    let record = admin::connect(&svc, team_id, input, &Actor::admin()).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// Delete a team: stop its sessions (revoking what only they held), then delete it. The audit
/// is kept.
#[utoipa::path(delete, path = "/admin/v1/teams/{team_id}", tag = "admin", params(("team_id" = Uuid, Path)), security(("admin" = [])), responses(
    (status = 200, body = DeletedTeam),
    (status = 404, description = "`not_found`", body = ErrorBody),
))]
pub async fn delete_team(
    State(svc): State<Services>,
    ApiPath(team_id): ApiPath<Uuid>,
) -> ApiResult<Json<DeletedTeam>> {
    let deleted = admin::delete(&svc, team_id, &Actor::admin()).await?;
    Ok(Json(DeletedTeam {
        team_id,
        sessions_stopped: deleted.sessions_stopped,
        team_deleted: true,
    }))
}
