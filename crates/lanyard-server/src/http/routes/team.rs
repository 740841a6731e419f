//! The calling team: who am I, and what happened.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use lanyard_core::{ErrorCode, Tier};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::domain::admin::{self, parse_email};
use crate::http::auth::TeamAuth;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::services::Services;
use lanyard_core::wire::ErrorEnvelope as ErrorBody;
use lanyard_store::TeamUpdate;

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub team_id: Uuid,
    pub team_name: String,
    /// One of anonymous, free, hobby, hobby_plus, pro, team, growth.
    #[schema(value_type = String, example = "free")]
    pub tier: Tier,
    pub is_test_cohort: bool,
    /// Present when the caller is a user (session JWT), absent for an API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// Where notifications go; when absent, to the team's primary user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_email: Option<String>,
}

impl MeResponse {
    fn of(team: &lanyard_store::TeamRecord, user_id: Option<Uuid>) -> Self {
        Self {
            team_id: team.id,
            team_name: team.name.clone(),
            tier: team.tier,
            is_test_cohort: team.is_test_cohort,
            user_id,
            notification_email: team.notification_email.clone(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeMe {
    /// An address, or `null` to clear it (notifications then go to the primary user).
    #[serde(default, deserialize_with = "super::admin::present")]
    #[schema(value_type = Option<String>)]
    pub notification_email: Option<Option<String>>,
}

/// The team (and user) behind the credential.
#[utoipa::path(get, path = "/v1/me", tag = "team", security(("bearer" = [])), responses(
    (status = 200, body = MeResponse),
))]
pub async fn me(auth: TeamAuth) -> Json<MeResponse> {
    Json(MeResponse::of(&auth.team, auth.user_id()))
}

/// Changes the team's own settings: its notification address.
#[utoipa::path(patch, path = "/v1/me", tag = "team", request_body = ChangeMe, security(("bearer" = [])), responses(
    (status = 200, body = MeResponse),
    (status = 400, description = "`invalid_body`: nothing to change", body = ErrorBody),
    (status = 422, description = "`invalid_team`: not an email address", body = ErrorBody),
))]
pub async fn change_me(
    State(svc): State<Services>,
    auth: TeamAuth,
    ApiJson(body): ApiJson<ChangeMe>,
) -> ApiResult<Json<MeResponse>> {
    let Some(email) = body.notification_email else {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "Send notification_email: an address, or null to clear it.",
        ));
    };
    let update = TeamUpdate {
        name: None,
        tier: None,
        notification_email: Some(email.as_deref().map(parse_email).transpose()?),
    };
    let team = admin::update(&svc, auth.team.id, update, &auth.actor()).await?;
    Ok(Json(MeResponse::of(&team, auth.user_id())))
}

pub const DEFAULT_AUDIT_LIMIT: u32 = 50;
pub const MAX_AUDIT_LIMIT: u32 = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: String,
    /// An audit kind, such as `team.created`.
    pub kind: String,
    /// `team`, `admin`, `operator`, `github`, `worker`, `sweep` or `e2e`.
    pub actor: String,
    /// Which key, user, session or worker acted, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditEventView>,
    /// Pass as `before` for the next, older page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The team's audit log, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "team", params(AuditQuery), security(("bearer" = [])), responses(
    (status = 200, body = AuditPage),
    (status = 400, description = "`invalid_query`", body = ErrorBody),
))]
pub async fn audit(
    State(state): State<Services>,
    auth: TeamAuth,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = query.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if !(1..=MAX_AUDIT_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("limit must be between 1 and {MAX_AUDIT_LIMIT}."),
        ));
    }
    let before =
        match query.before.as_deref() {
            None | Some("") => None,
            Some(cursor) => Some(cursor.parse::<i64>().ok().filter(|c| *c > 0).ok_or_else(
                || {
                    ApiError::new(
                        ErrorCode::InvalidQuery,
                        "before must be a next_cursor from a previous page.",
                    )
                },
            )?),
        };
    let records = state
        .store()
        .list_audit(auth.team.id, limit, before)
        .await?;
    let next_cursor = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.id.to_string()))
        .flatten();
    let events = records
        .into_iter()
        .map(|r| AuditEventView {
            id: r.id.to_string(),
            kind: r.kind,
            actor: r.actor,
            actor_id: r.actor_id,
            subject: r.subject,
            data: r.data,
            created_at: r.created_at,
        })
        .collect();
    Ok(Json(AuditPage {
        events,
        next_cursor,
    }))
}
