//! Agent sessions: create (strict repo parsing, connections, tier quota and TTL), stop (revoking
//! the tokens this session alone still held), and pick the credential a runner asks for.

use std::collections::{BTreeMap, BTreeSet};

use lanyard_core::github::{validate_permissions, RepoRef};
use lanyard_core::{BearerSecret, ErrorCode, SecretKind};
use lanyard_store::{NewScope, NewSession, RunnerSession, ScopeRecord, SessionRecord};
use secrecy::SecretString;
use uuid::Uuid;

use crate::auth::TeamAuth;
use crate::broker::cache_key;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// At most this many repositories per session.
pub const MAX_REPOS: usize = 100;

pub fn default_permissions() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("contents".into(), "write".into()),
        ("metadata".into(), "read".into()),
    ])
}

#[derive(Debug)]
pub struct CreateSession {
    pub repos: Vec<String>,
    pub permissions: Option<BTreeMap<String, String>>,
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug)]
pub struct CreatedSession {
    pub session: SessionRecord,
    pub runner_token: SecretString,
}

/// Parses every repo URL against the configured hosts; the error names the first bad one.
fn parse_repos(state: &AppState, raw: &[String]) -> ApiResult<Vec<RepoRef>> {
    if raw.is_empty() || raw.len() > MAX_REPOS {
        return Err(ApiError::new(
            ErrorCode::InvalidRepoUrl,
            format!("repos must list 1 to {MAX_REPOS} repository URLs."),
        ));
    }
    let mut repos = BTreeSet::new();
    for url in raw {
        let repo = RepoRef::parse(url).map_err(|e| ApiError::new(ErrorCode::InvalidRepoUrl, e))?;
        let Some(host) = state.broker().hosts().get(&repo.host) else {
            return Err(ApiError::new(
                ErrorCode::UnknownGithubHost,
                format!(
                    "{url:?} is on {:?}, which is not configured on this deployment.",
                    repo.host
                ),
            ));
        };
        if !host.api_url().starts_with(&format!("{}://", repo.scheme)) {
            return Err(ApiError::new(
                ErrorCode::InvalidRepoUrl,
                format!(
                    "{url:?} must use the {} scheme of its host.",
                    host.api_url().split("://").next().unwrap_or("https")
                ),
            ));
        }
        repos.insert(repo);
    }
    Ok(repos.into_iter().collect())
}

pub async fn create(
    state: &AppState,
    auth: &TeamAuth,
    input: CreateSession,
) -> ApiResult<CreatedSession> {
    let repos = parse_repos(state, &input.repos)?;
    let permissions = input.permissions.unwrap_or_else(default_permissions);
    validate_permissions(&permissions)
        .map_err(|e| ApiError::new(ErrorCode::InvalidPermissions, e))?;
    let limits = auth.team.tier.limits();
    let ttl = match input.ttl_seconds {
        None => limits.default_session_ttl,
        Some(s) if s <= 0 => {
            return Err(ApiError::new(
                ErrorCode::InvalidTtl,
                "ttl_seconds must be positive.",
            ))
        }
        Some(s) => std::time::Duration::from_secs(s.unsigned_abs()),
    };
    if ttl > limits.max_session_ttl {
        return Err(ApiError::new(
            ErrorCode::TtlTooLong,
            format!(
                "The {} tier allows sessions of at most {} seconds.",
                auth.team.tier,
                limits.max_session_ttl.as_secs()
            ),
        ));
    }
    let connections = state.store().list_connections(auth.team.id).await?;
    let mut by_owner: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for repo in &repos {
        by_owner
            .entry((repo.host.clone(), repo.owner.clone()))
            .or_default()
            .push(repo.name.clone());
    }
    let mut scopes = Vec::with_capacity(by_owner.len());
    for ((host, owner), names) in by_owner {
        let Some(connection) = connections
            .iter()
            .find(|c| c.host == host && c.owner == owner)
        else {
            let repo = repos
                .iter()
                .find(|r| r.host == host && r.owner == owner)
                .expect("grouped from repos");
            return Err(ApiError::new(
                ErrorCode::RepoNotConnected,
                format!(
                    "{repo} cannot be served: {owner} is not connected to this team on {host}."
                ),
            )
            .with_detail("repo", repo.to_string().into()));
        };
        scopes.push(NewScope {
            cache_key: cache_key(auth.team.id, &host, connection, &names, &permissions),
            host,
            owner,
            repositories: names,
        });
    }
    let runner = BearerSecret::generate(SecretKind::RunnerToken);
    let now = state.clock().now();
    let new = NewSession {
        team_id: auth.team.id,
        runner_lookup: runner.lookup.clone(),
        runner_hash: runner.hash.clone(),
        repos: repos.iter().map(ToString::to_string).collect(),
        permissions,
        expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1)),
        scopes,
    };
    let session = state
        .store()
        .create_session(&new, limits.max_active_sessions, &auth.actor(), now)
        .await?
        .map_err(|q| {
            ApiError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "The team has {} active sessions, the most its {} tier allows.",
                    q.active, auth.team.tier
                ),
            )
        })?;
    Ok(CreatedSession {
        session,
        runner_token: runner.plaintext,
    })
}

/// Stops a session; returns it and how many tokens were revoked at GitHub.
pub async fn stop(
    state: &AppState,
    team_id: Uuid,
    id: Uuid,
    actor: &str,
) -> ApiResult<(SessionRecord, usize)> {
    let outcome = state
        .store()
        .stop_session(team_id, id, actor, state.clock().now())
        .await?
        .ok_or_else(ApiError::not_found)?;
    state.broker().forget_session(id);
    let revoked = state.broker().revoke(outcome.revoke).await;
    Ok((outcome.session, revoked))
}

/// The scope a credential request names. `host` may be omitted when the session is on one host,
/// `owner` when it is under one owner there; otherwise 422 `owner_required` with the choices.
pub fn pick_scope<'a>(
    session: &'a RunnerSession,
    host: Option<&str>,
    owner: Option<&str>,
) -> ApiResult<&'a ScopeRecord> {
    let host = host.map(str::to_ascii_lowercase);
    let owner = owner.map(str::to_ascii_lowercase);
    let matching: Vec<&ScopeRecord> = session
        .scopes
        .iter()
        .filter(|s| host.as_deref().is_none_or(|h| s.host == h))
        .filter(|s| owner.as_deref().is_none_or(|o| s.owner == o))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(ApiError::new(
            ErrorCode::NotFound,
            "This session has no repositories under that host and owner.",
        )),
        many => {
            let choices: Vec<_> = many
                .iter()
                .map(|s| serde_json::json!({"host": s.host, "owner": s.owner}))
                .collect();
            Err(ApiError::new(
                ErrorCode::OwnerRequired,
                "This session spans several hosts or owners; pass host and owner.",
            )
            .with_detail("choices", choices.into()))
        }
    }
}
