//! Authentication (CONTRACT §3): who is calling, from the `Authorization: Bearer` header.
//!
//! Team routes accept a team API key (`lk_…`) or a session JWT. Runner tokens (`lrt_…`) are valid
//! only on their session's runner routes, so here they are refused like any unknown credential.
//! Once known, the team goes on the request's span, so every later log line names it.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use lanyard_core::{Actor, BearerSecret, SecretKind};
use lanyard_store::{RunnerSession, TeamRecord};
use uuid::Uuid;

use super::error::ApiError;
use crate::services::Services;

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ApiKey { key_id: Uuid },
    SessionJwt { user_id: Uuid },
}

/// An authenticated caller acting for a team.
#[derive(Debug, Clone)]
pub struct TeamAuth {
    pub team: TeamRecord,
    pub method: AuthMethod,
}

impl TeamAuth {
    pub fn user_id(&self) -> Option<Uuid> {
        match self.method {
            AuthMethod::SessionJwt { user_id } => Some(user_id),
            AuthMethod::ApiKey { .. } => None,
        }
    }

    /// The actor recorded in the audit log.
    pub fn actor(&self) -> Actor {
        match self.method {
            AuthMethod::ApiKey { key_id } => Actor::api_key(key_id),
            AuthMethod::SessionJwt { user_id } => Actor::user(user_id),
        }
    }
}

/// The bearer credential, or 401. Never logged.
pub(crate) fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("Send Authorization: Bearer <credential>."))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("The Authorization header is not valid text."))?;
    let (scheme, credential) = value.split_once(' ').ok_or_else(|| {
        ApiError::unauthorized("The Authorization header must be Bearer <credential>.")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "The Authorization header must be Bearer <credential>.",
        ));
    }
    Ok(credential.trim())
}

const REFUSED: &str = "The credential is not valid.";

/// For a credential that starts like one of Lanyard's secrets but is not one (cut short when
/// copied, or a placeholder like `lk_...` pasted from a guide): says which, instead of trying it
/// as something else.
fn misshapen(credential: &str) -> Option<ApiError> {
    let kind = SecretKind::ALL
        .iter()
        .find(|k| credential.starts_with(k.as_str()))?;
    let what = match kind {
        SecretKind::ApiKey => "API key",
        SecretKind::RunnerToken => "runner token",
    };
    Some(ApiError::unauthorized(format!(
        "This {what} is not well formed: send the whole {}… value as it was printed when it was issued.",
        kind.as_str()
    )))
}

fn on_span(team: &TeamRecord) {
    tracing::Span::current().record("team", tracing::field::display(team.id));
}

impl FromRequestParts<Services> for TeamAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, svc: &Services) -> Result<Self, ApiError> {
        let credential = bearer(parts)?;
        let auth = if let Some(presented) = BearerSecret::parse(credential) {
            if presented.kind != SecretKind::ApiKey {
                return Err(ApiError::unauthorized(REFUSED));
            }
            match svc.store().api_key_principal(presented.lookup).await? {
                Some(p) if presented.matches(&p.hash) => TeamAuth {
                    team: p.team,
                    method: AuthMethod::ApiKey { key_id: p.key_id },
                },
                _ => return Err(ApiError::unauthorized(REFUSED)),
            }
        } else if let Some(refused) = misshapen(credential) {
            return Err(refused);
        } else {
            let claims = svc
                .jwt()
                .verify(credential, svc.clock().now())
                .map_err(|e| {
                    ApiError::unauthorized(format!("The session token was refused: {e}."))
                })?;
            // The user and team must still exist: a reaped team's JWT stops working at once.
            let principal = svc
                .store()
                .user_principal(claims.uid, claims.tid)
                .await?
                .ok_or_else(|| ApiError::unauthorized(REFUSED))?;
            TeamAuth {
                team: principal.team,
                method: AuthMethod::SessionJwt {
                    user_id: principal.user_id,
                },
            }
        };
        on_span(&auth.team);
        Ok(auth)
    }
}

/// A runner token's session. Valid only on that session's runner routes; the domain checks that
/// the path names this session and answers 404 otherwise.
#[derive(Debug, Clone)]
pub struct RunnerAuth(pub Arc<RunnerSession>);

impl FromRequestParts<Services> for RunnerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, svc: &Services) -> Result<Self, ApiError> {
        let credential = bearer(parts)?;
        let presented = BearerSecret::parse(credential)
            .filter(|p| p.kind == SecretKind::RunnerToken)
            .ok_or_else(|| match misshapen(credential) {
                Some(refused) if credential.starts_with(SecretKind::RunnerToken.as_str()) => {
                    refused
                }
                _ => {
                    ApiError::unauthorized("Runner routes take the session's runner token (lrt_…).")
                }
            })?;
        let session = svc
            .broker()
            .runner_session(&presented)
            .await?
            .ok_or_else(|| ApiError::unauthorized(REFUSED))?;
        on_span(&session.team);
        Ok(RunnerAuth(session))
    }
}
