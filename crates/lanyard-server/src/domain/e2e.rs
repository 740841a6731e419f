//! Guarded ephemeral test accounts (CONTRACT §8): create an isolated test-cohort team with a
//! verified primary user, and reap it. Nothing here can touch a team that is not a test cohort.

use chrono::{DateTime, Utc};
use lanyard_core::github::PermissionSet;
use lanyard_core::{Actor, AuditKind, BearerSecret, Email, SecretKind, TeamName, Tier};
use lanyard_store::{AuditEvent, NewSession, NewTeam, StoreError, TeamRecord};
use secrecy::SecretString;
use uuid::Uuid;

use crate::config::{E2eSeed, SeedCredential};
use crate::domain::connections::{self, Connect, ConnectionError, Trust};
use crate::domain::sessions::{self, CreateSession, SessionError};
use crate::services::Services;

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

#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    #[error("tier must be one of anonymous, free, hobby, hobby_plus or pro")]
    InvalidTier,
    #[error("test accounts cannot use the {0} tier")]
    TierNotAllowed(Tier),
    #[error("this team is not a test cohort; the e2e surface never changes it")]
    NotTestCohort,
    #[error("seeding the test session failed: {0}")]
    Seed(String),
    #[error("binding the e2e seed's connection failed: {0}")]
    SeedConnection(#[from] ConnectionError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses a requested tier: `team` and `growth` are real-customer tiers and refused.
pub fn parse_tier(raw: Option<&str>) -> Result<Tier, E2eError> {
    let Some(raw) = raw else {
        return Ok(Tier::Free);
    };
    match Tier::parse(raw) {
        Some(t) if ALLOWED_TIERS.contains(&t) => Ok(t),
        Some(t) => Err(E2eError::TierNotAllowed(t)),
        None => Err(E2eError::InvalidTier),
    }
}

/// A token seeded into a test account.
#[derive(Debug)]
pub struct SeededToken {
    pub session_id: Uuid,
    pub token: SecretString,
}

/// A created test account. Its secrets are shown once.
#[derive(Debug)]
pub struct E2eAccount {
    pub team_id: Uuid,
    pub user_id: Uuid,
    pub email: Email,
    pub tier: Tier,
    pub session_jwt: SecretString,
    pub expires_at: DateTime<Utc>,
    pub seeded: Vec<SeededToken>,
}

/// Creates a test-cohort team with a verified primary user in one transaction, and with
/// `with_resources` one active session.
pub async fn create(
    svc: &Services,
    tier: Tier,
    with_resources: bool,
) -> Result<E2eAccount, E2eError> {
    let tag = Uuid::new_v4().simple().to_string();
    let email = Email::parse(&format!("e2e-cohort+{}@{EMAIL_DOMAIN}", &tag[..16]))
        .expect("a generated address is valid");
    let new = NewTeam {
        name: TeamName::parse(&format!("e2e cohort {}", &tag[..8])).expect("valid generated name"),
        tier,
        is_test_cohort: true,
        primary_user: Some(email.clone()),
        external_id: None,
        notification_email: None,
        actor: Actor::e2e(),
        extra_audit: vec![AuditEvent::new(AuditKind::E2eAccountCreated, Actor::e2e())
            .data(serde_json::json!({ "tier": tier, "with_resources": with_resources }))],
    };
    let now = svc.clock().now();
    let created = svc.store().create_team(&new, None, now).await?;
    let user_id = created.user_id.expect("created with a primary user");
    let (jwt, claims) = svc.jwt().issue(
        user_id,
        created.team.id,
        email.as_str(),
        now,
        SESSION_JWT_TTL,
    );
    let mut seeded = Vec::new();
    if with_resources {
        let seeding = match &svc.config().e2e_seed {
            Some(seed) => seed_from(svc, &created.team, seed).await,
            None => seed_session(svc, created.team.id, tier, now).await,
        };
        match seeding {
            Ok(token) => seeded.push(token),
            Err(e) => {
                // Leave nothing half-made behind.
                let _ = svc
                    .store()
                    .delete_test_team(created.team.id, None, now)
                    .await;
                return Err(e);
            }
        }
    }
    Ok(E2eAccount {
        team_id: created.team.id,
        user_id,
        email,
        tier,
        session_jwt: SecretString::from(jwt),
        expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(now + SESSION_JWT_TTL),
        seeded,
    })
}

/// With an operator's `[e2e_seed]`: binds its connection to the test team (the operator is
/// trusted, as with `admin connect-github`) and opens a session on its repositories, so the
/// runner token fetches a real credential. The reap revokes what it minted.
async fn seed_from(
    svc: &Services,
    team: &TeamRecord,
    seed: &E2eSeed,
) -> Result<SeededToken, E2eError> {
    if svc
        .store()
        .connected_by_a_real_team(
            seed.host.as_str(),
            seed.owner.as_str(),
            seed.installation_row_id(),
        )
        .await?
    {
        return Err(E2eError::Seed(format!(
            "{} on {} is connected to a team that is not a test cohort; the e2e seed must be an owner only test accounts use",
            seed.owner, seed.host
        )));
    }
    let (installation, pat) = match &seed.credential {
        SeedCredential::Installation(id) => (Some(id.as_u64()), None),
        SeedCredential::PatFile(path) => (None, Some(read_seed_pat(path).await?)),
    };
    let connect = Connect::parse(seed.host.as_str(), seed.owner.as_str(), installation, pat)?;
    connections::connect(svc, team.id, connect, Trust::Operator, &Actor::e2e()).await?;
    let input = CreateSession::parse(&seed.repo_urls, None, None)?;
    let created = sessions::create(svc, team, input, &Actor::e2e()).await?;
    Ok(SeededToken {
        session_id: created.session.id,
        token: created.runner_token,
    })
}

/// The seed's PAT, read at each seeding (so it can be rotated), checked like any secret file
/// (`lanyard doctor` reads it the same way).
pub async fn read_seed_pat(path: &std::path::Path) -> Result<SecretString, E2eError> {
    const MAX_PAT_FILE: u64 = 4096;
    let unreadable =
        |why: String| E2eError::Seed(format!("the seed's pat_file {}: {why}", path.display()));
    use tokio::io::AsyncReadExt;
    crate::config::require_private(path).map_err(unreadable)?;
    // Read through the cap, so a file that grows meanwhile is refused all the same.
    let mut text = String::new();
    tokio::fs::File::open(path)
        .await
        .map_err(|e| unreadable(e.to_string()))?
        .take(MAX_PAT_FILE + 1)
        .read_to_string(&mut text)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    if text.len() as u64 > MAX_PAT_FILE {
        return Err(unreadable(format!(
            "more than {MAX_PAT_FILE} bytes is too long for a PAT"
        )));
    }
    Ok(SecretString::from(text.trim().to_string()))
}

/// Without a seed: a session on no repository, so its runner token authenticates but fetches
/// nothing.
async fn seed_session(
    svc: &Services,
    team_id: Uuid,
    tier: Tier,
    now: DateTime<Utc>,
) -> Result<SeededToken, E2eError> {
    let runner = BearerSecret::generate(SecretKind::RunnerToken);
    let session = NewSession {
        team_id,
        runner_lookup: runner.lookup.clone(),
        runner_hash: runner.hash.clone(),
        repos: vec![],
        permissions: PermissionSet::defaults(),
        expires_at: now
            + chrono::Duration::from_std(tier.limits().default_session_ttl)
                .unwrap_or(SESSION_JWT_TTL),
        scopes: vec![],
    };
    let limit = tier.limits().max_active_sessions;
    match svc
        .store()
        .create_session(&session, limit, &Actor::e2e(), now)
        .await?
    {
        Ok(s) => Ok(SeededToken {
            session_id: s.id,
            token: runner.plaintext,
        }),
        Err(quota) => Err(E2eError::Seed(format!(
            "the tier allows no session ({} active)",
            quota.active
        ))),
    }
}

/// What a reap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// No such team (never created, or reaped before).
    AlreadyGone,
    Deleted {
        sessions_stopped: usize,
    },
}

/// Stops every session of a test team (revoking what only they held) and deletes it. `actor`
/// is `e2e` for CI, `sweep` for the backstop sweep.
pub async fn reap(svc: &Services, team_id: Uuid, actor: &Actor) -> Result<Reaped, E2eError> {
    let Some(team) = svc.store().get_team(team_id).await? else {
        return Ok(Reaped::AlreadyGone);
    };
    if !team.is_test_cohort {
        return Err(E2eError::NotTestCohort);
    }
    let mut stopped = 0;
    for session in svc.store().list_sessions(team.id, u32::MAX).await? {
        if session.stopped_at.is_some() {
            continue;
        }
        match sessions::stop(svc, team.id, session.id, actor).await {
            Ok(_) => stopped += 1,
            Err(SessionError::NotFound) => {} // raced with another reap
            Err(e) => return Err(e.into()),
        }
    }
    let event = AuditEvent::new(AuditKind::E2eAccountReaped, actor.clone())
        .subject(team.id)
        .data(serde_json::json!({ "sessions_stopped": stopped, "tier": team.tier }));
    let deleted = svc
        .store()
        .delete_test_team(team.id, Some(&event), svc.clock().now())
        .await?;
    svc.broker().forget_team(team.id);
    Ok(if deleted {
        Reaped::Deleted {
            sessions_stopped: stopped,
        }
    } else {
        Reaped::AlreadyGone
    })
}
