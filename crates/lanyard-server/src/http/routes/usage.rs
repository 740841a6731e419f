//! What the team used, and what Lanyard told it (CONTRACT §12).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use lanyard_core::wire::ErrorEnvelope as ErrorBody;
use lanyard_core::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::auth::TeamAuth;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::ApiQuery;
use crate::services::Services;

/// The longest range `GET /v1/usage` answers, in days.
pub const MAX_USAGE_DAYS: i64 = 366;
/// The range when none is given: the last 30 days, today included.
pub const DEFAULT_USAGE_DAYS: i64 = 30;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// First day, `YYYY-MM-DD` (UTC). Default: 29 days before `to`.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), included. Default: today.
    pub to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageDayView {
    /// `YYYY-MM-DD`, a UTC day.
    #[schema(value_type = String, example = "2026-11-25")]
    pub date: NaiveDate,
    /// Minutes of that day during which each session was active (every minute begun counts);
    /// live sessions up to the meter's last run.
    pub session_minutes: i64,
    /// Tokens minted at GitHub for the team that day.
    pub mints: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageResponse {
    pub team_id: Uuid,
    /// Every day of the range, oldest first; a day without use has zeros.
    pub days: Vec<UsageDayView>,
}

fn parse_day(name: &str, raw: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("{name} must be a date written YYYY-MM-DD."),
        )
    })
}

/// The team's usage per UTC day.
#[utoipa::path(get, path = "/v1/usage", tag = "team", params(UsageQuery), security(("bearer" = [])), responses(
    (status = 200, body = UsageResponse),
    (status = 400, description = "`invalid_query`: a bad date, `from` after `to`, or more than 366 days", body = ErrorBody),
))]
pub async fn usage(
    State(svc): State<Services>,
    auth: TeamAuth,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> ApiResult<Json<UsageResponse>> {
    let to = match query.to.as_deref() {
        Some(raw) => parse_day("to", raw)?,
        None => svc.clock().now().date_naive(),
    };
    let from = match query.from.as_deref() {
        Some(raw) => parse_day("from", raw)?,
        None => to - Duration::days(DEFAULT_USAGE_DAYS - 1),
    };
    if from > to {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "from must not be after to.",
        ));
    }
    if (to - from).num_days() + 1 > MAX_USAGE_DAYS {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("A range may span at most {MAX_USAGE_DAYS} days."),
        ));
    }
    let stored = svc
        .store()
        .list_usage(
            auth.team.id,
            &from.format("%Y-%m-%d").to_string(),
            &to.format("%Y-%m-%d").to_string(),
        )
        .await?;
    let mut stored = stored.into_iter().peekable();
    let days = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|date| {
            let key = date.format("%Y-%m-%d").to_string();
            match stored.next_if(|row| row.day == key) {
                Some(row) => UsageDayView {
                    date,
                    session_minutes: row.session_minutes,
                    mints: row.mints,
                },
                None => UsageDayView {
                    date,
                    session_minutes: 0,
                    mints: 0,
                },
            }
        })
        .collect();
    Ok(Json(UsageResponse {
        team_id: auth.team.id,
        days,
    }))
}

pub const DEFAULT_NOTIFICATION_LIMIT: u32 = 50;
pub const MAX_NOTIFICATION_LIMIT: u32 = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// How many, newest first: 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    /// Also the email's Message-ID (`<id@domain>`).
    pub id: Uuid,
    /// `quota_nudge`, `refresh_failing`, `pat_expiring` or `churn_risk`.
    #[schema(value_type = String, example = "quota_nudge")]
    pub kind: lanyard_core::NotificationKind,
    /// `queued`, `sent`, `undeliverable` or `failed`.
    #[schema(value_type = String, example = "sent")]
    pub status: lanyard_core::NotificationStatus,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    /// Newest first.
    pub notifications: Vec<NotificationView>,
}

/// What Lanyard told the team, newest first.
#[utoipa::path(get, path = "/v1/notifications", tag = "team", params(NotificationQuery), security(("bearer" = [])), responses(
    (status = 200, body = NotificationList),
    (status = 400, description = "`invalid_query`", body = ErrorBody),
))]
pub async fn notifications(
    State(svc): State<Services>,
    auth: TeamAuth,
    ApiQuery(query): ApiQuery<NotificationQuery>,
) -> ApiResult<Json<NotificationList>> {
    let limit = query.limit.unwrap_or(DEFAULT_NOTIFICATION_LIMIT);
    if !(1..=MAX_NOTIFICATION_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("limit must be between 1 and {MAX_NOTIFICATION_LIMIT}."),
        ));
    }
    let rows = svc.store().list_notifications(auth.team.id, limit).await?;
    Ok(Json(NotificationList {
        notifications: rows
            .into_iter()
            .map(|n| NotificationView {
                id: n.id,
                kind: n.kind,
                status: n.status,
                created_at: n.created_at,
                sent_at: n.sent_at,
            })
            .collect(),
    }))
}
