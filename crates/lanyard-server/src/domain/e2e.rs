//! Guarded ephemeral test accounts (CONTRACT §8): create an isolated test-cohort team with a
//! verified primary user, and reap it. Nothing here can touch a team that is not a test cohort.

use lanyard_core::{AuditKind, BearerSecret, Email, ErrorCode, SecretKind, TeamName, Tier};
use lanyard_store::{AuditEvent, NewSession, NewTeam};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::domain::sessions::{default_permissions, stop};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Tiers a test account may have.
pub const ALLOWED_TIERS: &[Tier] = &[
    Tier::Anonymous,
    Tier::Free,
    Tier::Hobby,
    Tier::HobbyPlus,
    Tier::Pro,
];
/// The JWT of a test account lives this long.
pub const SESSION_JWT_TTL: chrono::Duration = chrono::Duration::hours(1);
const EMAIL_DOMAIN: &str = "e2e.lanyard.invalid";
pub const ACTOR: &str = "e2e";

/// The answer to a tier that is not a tier name (or not a string at all).
pub fn invalid_tier() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidTier,
        "tier must be one of anonymous, free, hobby, hobby_plus or pro.",
    )
}

/// Parses a requested tier: `team` and `growth` are real-customer tiers and refused.
pub fn parse_tier(raw: Option<&str>) -> ApiResult<Tier> {
    let Some(raw) = raw else {
        return Ok(Tier::Free);
    };
    match Tier::parse(raw) {
        Some(t) if ALLOWED_TIERS.contains(&t) => Ok(t),
        Some(t) => Err(ApiError::new(
            ErrorCode::TierNotAllowed,
            format!("Test accounts cannot use the {t} tier."),
        )),
        None => Err(invalid_tier()),
    }
}

pub async fn create(
    state: &AppState,
    tier: Tier,
    with_resources: bool,
) -> ApiResult<serde_json::Value> {
    let tag = Uuid::new_v4().simple().to_string();
    let email = Email::parse(&format!("e2e-cohort+{}@{EMAIL_DOMAIN}", &tag[..16]))
        .map_err(|e| ApiError::internal(anyhow::anyhow!("generated email: {e}")))?;
    let new = NewTeam {
        name: TeamName::parse(&format!("e2e cohort {}", &tag[..8])).expect("valid generated name"),
        tier,
        is_test_cohort: true,
        primary_user: Some(email.clone()),
        actor: ACTOR.into(),
        extra_audit: vec![AuditEvent::new(AuditKind::E2eAccountCreated, ACTOR)
            .data(serde_json::json!({ "tier": tier.as_str(), "with_resources": with_resources }))],
    };
    let now = state.clock().now();
    let created = state.store().create_team(&new, None, now).await?;
    let user_id = created.user_id.expect("created with a primary user");
    let (jwt, claims) = state.jwt().issue(
        user_id,
        created.team.id,
        email.as_str(),
        now,
        SESSION_JWT_TTL,
    );
    let mut seeded = Vec::new();
    if with_resources {
        let runner = BearerSecret::generate(SecretKind::RunnerToken);
        let session = NewSession {
            team_id: created.team.id,
            runner_lookup: runner.lookup.clone(),
            runner_hash: runner.hash.clone(),
            repos: vec![],
            permissions: default_permissions(),
            expires_at: now
                + chrono::Duration::from_std(tier.limits().default_session_ttl)
                    .unwrap_or(SESSION_JWT_TTL),
            scopes: vec![],
        };
        let limit = tier.limits().max_active_sessions;
        match state.store().create_session(&session, limit, ACTOR, now).await {
            Ok(Ok(s)) => seeded.push(serde_json::json!({
                "kind": "runner_token", "session_id": s.id, "token": runner.plaintext.expose_secret(),
            })),
            outcome => {
                // Leave nothing half-made behind.
                let _ = state.store().delete_test_team(created.team.id, None, now).await;
                return Err(ApiError::internal(anyhow::anyhow!("seeding the test session failed: {outcome:?}")));
            }
        }
    }
    Ok(serde_json::json!({
        "team_id": created.team.id,
        "user_id": user_id,
        "email": email.as_str(),
        "tier": tier.as_str(),
        "session_jwt": jwt,
        "expires_at": chrono::DateTime::from_timestamp(claims.exp, 0),
        "seeded_count": seeded.len(),
        "seeded_tokens": seeded,
    }))
}

pub async fn reap(state: &AppState, team_id: Uuid) -> ApiResult<serde_json::Value> {
    let gone = serde_json::json!({"ok": true, "team_id": team_id, "already_gone": true});
    let Some(team) = state.store().get_team(team_id).await? else {
        return Ok(gone);
    };
    if !team.is_test_cohort {
        return Err(ApiError::new(
            ErrorCode::NotTestCohort,
            "This team is not a test cohort; the e2e surface never changes it.",
        ));
    }
    let mut stopped = 0;
    for session in state.store().list_sessions(team.id, u32::MAX).await? {
        if session.stopped_at.is_some() {
            continue;
        }
        match stop(state, team.id, session.id, ACTOR).await {
            Ok(_) => stopped += 1,
            Err(e) if e.code == ErrorCode::NotFound => {} // raced with another reap
            Err(e) => return Err(e),
        }
    }
    let event = AuditEvent::new(AuditKind::E2eAccountReaped, ACTOR)
        .subject(team.id)
        .data(serde_json::json!({ "sessions_stopped": stopped, "tier": team.tier.as_str() }));
    if !state
        .store()
        .delete_test_team(team.id, Some(&event), state.clock().now())
        .await?
    {
        return Ok(gone);
    }
    Ok(
        serde_json::json!({"ok": true, "team_id": team_id, "sessions_stopped": stopped, "team_deleted": true}),
    )
}
