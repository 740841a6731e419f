//! The team's API keys: issue (shown once), list (never the secret), revoke.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use lanyard_core::{ErrorCode, Label};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::accounts;
use crate::http::auth::TeamAuth;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ApiPath};
use crate::services::Services;
use lanyard_core::wire::ErrorEnvelope as ErrorBody;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// A name to recognise the key by (default `default`).
    pub label: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub key_id: Uuid,
    /// The key itself (`lk_…`). Shown only in this response; Lanyard keeps only its hash.
    pub api_key: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub key_id: Uuid,
    pub label: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedApiKey {
    pub key_id: Uuid,
    pub revoked: bool,
}

/// A key's label as sent: `default` when absent.
pub(crate) fn parse_label(raw: Option<&str>) -> ApiResult<Label> {
    match raw {
        None => Ok(Label::default_label()),
        Some(raw) => Label::parse(raw)
            .map_err(|e| ApiError::new(ErrorCode::InvalidLabel, format!("The {e}."))),
    }
}

/// Issue a new API key for the calling team.
#[utoipa::path(post, path = "/v1/api-keys", tag = "team", request_body = CreateApiKey, security(("bearer" = [])), responses(
    (status = 201, body = CreatedApiKey),
    (status = 422, description = "`invalid_label`", body = ErrorBody),
))]
pub async fn create(
    State(state): State<Services>,
    auth: TeamAuth,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let label = parse_label(body.label.as_deref())?;
    let (record, secret) =
        accounts::issue_api_key(&state, auth.team.id, label, &auth.actor()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key_id: record.id,
            api_key: secret.expose_secret().to_string(),
            label: record.label,
            created_at: record.created_at,
        }),
    ))
}

/// List the team's API keys (never their secrets).
#[utoipa::path(get, path = "/v1/api-keys", tag = "team", security(("bearer" = [])), responses(
    (status = 200, body = ApiKeyList),
))]
pub async fn list(State(state): State<Services>, auth: TeamAuth) -> ApiResult<Json<ApiKeyList>> {
    let keys = state.store().list_api_keys(auth.team.id).await?;
    let api_keys = keys
        .into_iter()
        .map(|k| ApiKeyView {
            key_id: k.id,
            label: k.label,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        })
        .collect();
    Ok(Json(ApiKeyList { api_keys }))
}

/// Revoke one of the team's API keys. It stops working at once.
#[utoipa::path(delete, path = "/v1/api-keys/{key_id}", tag = "team", params(("key_id" = Uuid, Path)), security(("bearer" = [])), responses(
    (status = 200, body = RevokedApiKey),
    (status = 404, description = "`not_found`: no such live key in this team", body = ErrorBody),
))]
pub async fn revoke(
    State(state): State<Services>,
    auth: TeamAuth,
    ApiPath(key_id): ApiPath<Uuid>,
) -> ApiResult<Json<RevokedApiKey>> {
    accounts::revoke_api_key(&state, auth.team.id, key_id, &auth.actor()).await?;
    Ok(Json(RevokedApiKey {
        key_id,
        revoked: true,
    }))
}
