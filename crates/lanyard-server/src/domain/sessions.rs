//! Agent sessions: create (repositories on configured hosts and connected owners, tier quota and
//! TTL) and stop (revoking the tokens this session alone still held).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lanyard_core::github::{
    Owner, PermissionError, PermissionSet, RepoName, RepoRef, RepoRefError, Scheme,
};
use lanyard_core::Host;
use lanyard_core::{Actor, BearerSecret, SecretKind, Tier};
use lanyard_store::{NewScope, NewSession, SessionRecord, StoreError, TeamRecord};
use secrecy::SecretString;
use uuid::Uuid;

use crate::broker::cache_key;
use crate::ratelimit::{Decision, LimitKey};
use crate::services::Services;

/// At most this many repositories per session.
pub const MAX_REPOS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("repos must list 1 to {MAX_REPOS} repository URLs")]
    RepoCount,
    #[error(transparent)]
    InvalidRepo(#[from] RepoRefError),
    #[error("{repo} is on {host:?}, which is not configured on this deployment")]
    UnknownHost { repo: String, host: String },
    #[error("{repo} must use the {scheme} scheme of its host")]
    WrongScheme { repo: String, scheme: Scheme },
    #[error(transparent)]
    InvalidPermissions(#[from] PermissionError),
    #[error("ttl_seconds must be positive")]
    InvalidTtl,
    #[error("the {tier} tier allows sessions of at most {max_seconds} seconds")]
    TtlTooLong { tier: Tier, max_seconds: u64 },
    #[error("{repo} cannot be served: {owner} is not connected to this team on {host}")]
    RepoNotConnected {
        repo: String,
        host: String,
        owner: Owner,
    },
    #[error("the team has {active} active sessions, the most its {tier} tier allows")]
    QuotaExceeded { active: i64, tier: Tier },
    #[error("the team has no such session")]
    NotFound,
    #[error("too many sessions created by this team in the last minute")]
    RateLimited { retry_after: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A session to create, parsed from the wire form.
#[derive(Debug, Clone)]
pub struct CreateSession {
    /// Distinct, sorted.
    pub repos: Vec<RepoRef>,
    pub permissions: PermissionSet,
    /// `None`: the tier's default.
    pub ttl: Option<Duration>,
}

impl CreateSession {
    /// Parses repository URLs, permissions (the defaults when absent) and the TTL. The error
    /// names the first bad value.
    pub fn parse(
        repos: &[String],
        permissions: Option<&BTreeMap<String, String>>,
        ttl_seconds: Option<i64>,
    ) -> Result<Self, SessionError> {
        if repos.is_empty() || repos.len() > MAX_REPOS {
            return Err(SessionError::RepoCount);
        }
        let repos: BTreeSet<RepoRef> = repos
            .iter()
            .map(|r| RepoRef::parse(r))
            .collect::<Result<_, _>>()?;
        let permissions = match permissions {
            None => PermissionSet::defaults(),
            Some(p) => PermissionSet::parse(p.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
        };
        let ttl = match ttl_seconds {
            None => None,
            Some(s) if s <= 0 => return Err(SessionError::InvalidTtl),
            Some(s) => Some(Duration::from_secs(s.unsigned_abs())),
        };
        Ok(Self {
            repos: repos.into_iter().collect(),
            permissions,
            ttl,
        })
    }
}

#[derive(Debug)]
pub struct CreatedSession {
    pub session: SessionRecord,
    pub runner_token: SecretString,
}

/// Checks every repository against the configured hosts and the team's connections, and groups
/// them into one scope per (host, owner).
async fn scopes(
    svc: &Services,
    team_id: Uuid,
    input: &CreateSession,
) -> Result<Vec<NewScope>, SessionError> {
    for repo in &input.repos {
        let Some(host) = svc.hosts().get(&repo.host) else {
            return Err(SessionError::UnknownHost {
                repo: repo.to_string(),
                host: repo.host.to_string(),
            });
        };
        if repo.scheme != host.scheme {
            return Err(SessionError::WrongScheme {
                repo: repo.to_string(),
                scheme: host.scheme,
            });
        }
    }
    let connections = svc.store().list_connections(team_id).await?;
    let mut by_owner: BTreeMap<(&Host, &Owner), Vec<RepoName>> = BTreeMap::new();
    for repo in &input.repos {
        by_owner
            .entry((&repo.host, &repo.owner))
            .or_default()
            .push(repo.name.clone());
    }
    let mut scopes = Vec::with_capacity(by_owner.len());
    for ((host, owner), names) in by_owner {
        let Some(connection) = connections
            .iter()
            .find(|c| &c.host == host && &c.owner == owner)
        else {
            let repo = input
                .repos
                .iter()
                .find(|r| &r.host == host && &r.owner == owner)
                .expect("grouped from repos");
            return Err(SessionError::RepoNotConnected {
                repo: repo.to_string(),
                host: host.to_string(),
                owner: owner.clone(),
            });
        };
        scopes.push(NewScope {
            cache_key: cache_key(
                team_id,
                host,
                connection,
                &names,
                &input.permissions,
                svc.broker()
                    .providers()
                    .renewal(host.as_str(), connection.kind),
            ),
            host: host.clone(),
            owner: owner.clone(),
            repositories: names,
        });
    }
    Ok(scopes)
}

/// Creates a session for the team; its runner token is returned once.
pub async fn create(
    svc: &Services,
    team: &TeamRecord,
    input: CreateSession,
    actor: &Actor,
) -> Result<CreatedSession, SessionError> {
    let limits = team.tier.limits();
    if let Decision::Limited { retry_after } = svc
        .limiters()
        .sessions
        .check_limit(LimitKey::Team(team.id), team.tier.sessions_per_minute())
        .await
    {
        return Err(SessionError::RateLimited { retry_after });
    }
    let ttl = input.ttl.unwrap_or(limits.default_session_ttl);
    if ttl > limits.max_session_ttl {
        return Err(SessionError::TtlTooLong {
            tier: team.tier,
            max_seconds: limits.max_session_ttl.as_secs(),
        });
    }
    let scopes = scopes(svc, team.id, &input).await?;
    let runner = BearerSecret::generate(SecretKind::RunnerToken);
    let now = svc.clock().now();
    let new = NewSession {
        team_id: team.id,
        runner_lookup: runner.lookup.clone(),
        runner_hash: runner.hash.clone(),
        repos: input.repos.iter().map(ToString::to_string).collect(),
        permissions: input.permissions,
        expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1)),
        scopes,
    };
    let session = svc
        .store()
        .create_session(&new, limits.max_active_sessions, actor, now)
        .await?
        .map_err(|q| SessionError::QuotaExceeded {
            active: q.active,
            tier: team.tier,
        })?;
    Ok(CreatedSession {
        session,
        runner_token: runner.plaintext,
    })
}

/// A stopped session and how many tokens were revoked at GitHub because of it.
#[derive(Debug)]
pub struct Stopped {
    pub session: SessionRecord,
    pub tokens_revoked: usize,
}

/// Stops a session: its runner gets 410 at once on this replica (within the session cache's
/// lifetime on others), and tokens only it held are revoked at GitHub.
pub async fn stop(
    svc: &Services,
    team_id: Uuid,
    id: Uuid,
    actor: &Actor,
) -> Result<Stopped, SessionError> {
    let outcome = svc
        .store()
        .stop_session(team_id, id, actor, svc.clock().now())
        .await?
        .ok_or(SessionError::NotFound)?;
    svc.broker().forget_session(&outcome.runner_lookup);
    let tokens_revoked = svc.broker().revoke(outcome.revoke).await;
    Ok(Stopped {
        session: outcome.session,
        tokens_revoked,
    })
}
