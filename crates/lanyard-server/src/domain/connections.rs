//! Binding a GitHub owner on a host to a team, by App installation or PAT.
//!
//! Who may bind what is the point of this module. A team binds an installation only through the
//! installation flow (`domain::installations`), which proves its user can see it; here a team
//! may only connect a PAT, which GitHub verifies. The operator (CLI) and a platform (admin API)
//! are trusted to bind installations directly, checked against the installation's account.

use chrono::{DateTime, Utc};
use lanyard_core::github::InstallationId;
use lanyard_core::github::{echo, Owner, OwnerError};
use lanyard_core::Actor;
use lanyard_core::Host;
use lanyard_github::GithubError;
use lanyard_store::{ConnectionKind, ConnectionRecord, ConnectionStatus, StoreError};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::broker::pat_aad;
use crate::hosts::ConfiguredHost;
use crate::ratelimit::{Decision, LimitKey};
use crate::services::Services;

/// How the team reaches the owner.
#[derive(Debug)]
pub enum Credential {
    Installation(InstallationId),
    Pat(SecretString),
}

/// A connection to make, parsed from the wire form.
#[derive(Debug)]
pub struct Connect {
    pub host: Host,
    pub owner: Owner,
    pub credential: Credential,
}

/// Who is binding: a team must prove an installation through the installation flow; the
/// operator and a platform's admin API are trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    Team,
    Operator,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("owner is not valid: {0}")]
    InvalidOwner(#[from] OwnerError),
    #[error("host is required, like github.com")]
    MissingHost,
    #[error("send exactly one of installation_id or pat")]
    OneCredential,
    #[error("pat must be a non-empty token of at most 512 characters, without spaces")]
    InvalidPat,
    #[error("installation_id is out of range")]
    InstallationOutOfRange,
    #[error("GitHub host {0:?} is not configured on this deployment")]
    UnknownHost(String),
    #[error("GitHub host {0:?} has no GitHub App configured; connect it with a PAT")]
    NoApp(String),
    /// Says nothing of the installation: its account must not be learnt by guessing ids.
    #[error("a team binds an App installation through the installation flow (POST /v1/github/installations)")]
    ProofRequired,
    #[error("installation {installation} belongs to {found}, not {owner}")]
    InstallationMismatch {
        installation: InstallationId,
        found: String,
        owner: Owner,
    },
    #[error("installation {installation} does not exist for this GitHub App on {host}")]
    InstallationMissing {
        installation: InstallationId,
        host: String,
    },
    #[error("GitHub refused the personal access token")]
    PatInvalid,
    #[error("the team already has a connection for {owner} on {host}")]
    Exists { host: String, owner: Owner },
    #[error("the team has no such connection")]
    NotFound,
    #[error("only a PAT connection's token can be rotated")]
    NotPat,
    #[error("too many connection attempts for this team in the last hour")]
    RateLimited { retry_after: u32 },
    #[error(transparent)]
    Github(GithubError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn check_pat_text(pat: &SecretString) -> Result<(), ConnectionError> {
    let p = pat.expose_secret();
    if p.is_empty() || p.len() > 512 || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConnectionError::InvalidPat);
    }
    Ok(())
}

impl Connect {
    /// From the wire form: a host, an owner, and exactly one of an installation and a PAT.
    pub fn parse(
        host: &str,
        owner: &str,
        installation_id: Option<u64>,
        pat: Option<SecretString>,
    ) -> Result<Self, ConnectionError> {
        if host.trim().is_empty() {
            return Err(ConnectionError::MissingHost);
        }
        // Not a host at all: no configured host has that name either.
        let host = Host::parse(host).map_err(|_| ConnectionError::UnknownHost(echo(host)))?;
        let owner = Owner::parse(owner)?;
        let credential = match (installation_id, pat) {
            (Some(id), None) => Credential::Installation(
                InstallationId::try_from(id)
                    .map_err(|_| ConnectionError::InstallationOutOfRange)?,
            ),
            (None, Some(pat)) => {
                check_pat_text(&pat)?;
                Credential::Pat(pat)
            }
            _ => return Err(ConnectionError::OneCredential),
        };
        Ok(Self {
            host,
            owner,
            credential,
        })
    }
}

/// Counts one connection attempt of a team against its hourly limit; `Err` carries the seconds
/// to wait.
pub(crate) async fn count_attempt(svc: &Services, team_id: Uuid) -> Result<(), u32> {
    match svc
        .limiters()
        .connections
        .check(LimitKey::Team(team_id))
        .await
    {
        Decision::Allowed => Ok(()),
        Decision::Limited { retry_after } => Err(retry_after),
    }
}

fn limited(retry_after: u32) -> ConnectionError {
    ConnectionError::RateLimited { retry_after }
}

/// Asks GitHub whose PAT this is; a refusal is `PatInvalid`. Returns its expiry, if reported.
async fn verify_pat(
    host: &ConfiguredHost,
    pat: &SecretString,
) -> Result<Option<DateTime<Utc>>, ConnectionError> {
    match host.client.check_pat(pat).await {
        Ok(check) => Ok(check.expires_at),
        Err(GithubError::Rejected {
            status: 401 | 403, ..
        }) => Err(ConnectionError::PatInvalid),
        Err(e) => Err(ConnectionError::Github(e)),
    }
}

/// Binds the owner to the team. An installation is bound only by trusted callers, checked with
/// GitHub: its account must be the owner. A PAT is verified with GitHub and stored encrypted.
pub async fn connect(
    svc: &Services,
    team_id: Uuid,
    input: Connect,
    trust: Trust,
    actor: &Actor,
) -> Result<ConnectionRecord, ConnectionError> {
    if trust == Trust::Team {
        count_attempt(svc, team_id).await.map_err(limited)?;
    }
    let Some(host) = svc.hosts().get(&input.host) else {
        return Err(ConnectionError::UnknownHost(input.host.to_string()));
    };
    let id = Uuid::new_v4();
    let (kind, installation_id, pat_ciphertext, pat_expires_at) = match input.credential {
        Credential::Installation(_) if trust == Trust::Team => {
            return Err(ConnectionError::ProofRequired)
        }
        Credential::Installation(installation) => {
            if !host.client.has_app() {
                return Err(ConnectionError::NoApp(input.host.to_string()));
            }
            match host.client.installation(installation).await {
                Ok(found)
                    if found
                        .account_login
                        .eq_ignore_ascii_case(input.owner.as_str()) => {}
                Ok(found) => {
                    return Err(ConnectionError::InstallationMismatch {
                        installation,
                        found: found.account_login,
                        owner: input.owner,
                    })
                }
                Err(GithubError::Rejected { status: 404, .. }) => {
                    return Err(ConnectionError::InstallationMissing {
                        installation,
                        host: input.host.to_string(),
                    })
                }
                Err(e) => return Err(ConnectionError::Github(e)),
            }
            (ConnectionKind::GithubApp, Some(installation), None, None)
        }
        Credential::Pat(pat) => {
            let expires_at = verify_pat(host, &pat).await?;
            let sealed = svc.sealer().seal(&pat, &pat_aad(id));
            (ConnectionKind::Pat, None, Some(sealed), expires_at)
        }
    };
    let record = ConnectionRecord {
        id,
        team_id,
        host: input.host,
        owner: input.owner,
        kind,
        installation_id,
        status: ConnectionStatus::Active,
        pat_expires_at,
        pat_ciphertext,
        refresh_ciphertext: None,
        refresh_generation: 0,
        created_at: svc.clock().now(),
    };
    svc.store()
        .create_connection(&record, actor)
        .await?
        .ok_or(ConnectionError::Exists {
            host: record.host.to_string(),
            owner: record.owner.clone(),
        })
}

/// Replaces a PAT connection's token after GitHub verifies the new one. Live sessions get it
/// on their next fetch.
pub async fn rotate_pat(
    svc: &Services,
    team_id: Uuid,
    id: Uuid,
    pat: SecretString,
    actor: &Actor,
) -> Result<ConnectionRecord, ConnectionError> {
    check_pat_text(&pat)?;
    count_attempt(svc, team_id).await.map_err(limited)?;
    let existing = svc
        .store()
        .get_connection(team_id, id)
        .await?
        .ok_or(ConnectionError::NotFound)?;
    if existing.kind != ConnectionKind::Pat {
        return Err(ConnectionError::NotPat);
    }
    let host = svc
        .hosts()
        .get(&existing.host)
        .ok_or_else(|| ConnectionError::UnknownHost(existing.host.to_string()))?;
    let expires_at = verify_pat(host, &pat).await?;
    let sealed = svc.sealer().seal(&pat, &pat_aad(id));
    let rotated = svc
        .store()
        .rotate_pat(team_id, id, &sealed, expires_at, actor, svc.clock().now())
        .await?
        .ok_or(ConnectionError::NotFound)?;
    svc.broker().forget_team(team_id);
    Ok(rotated)
}

/// Removes one of the team's connections, and revokes at GitHub every token minted through it
/// (CONTRACT §17): its sessions can no longer be served through it, so nothing it minted is left
/// live.
pub async fn disconnect(
    svc: &Services,
    team_id: Uuid,
    id: Uuid,
    actor: &Actor,
) -> Result<(), ConnectionError> {
    let revoke = svc
        .store()
        .delete_connection(team_id, id, actor, svc.clock().now())
        .await?
        .ok_or(ConnectionError::NotFound)?;
    svc.broker().forget_team(team_id);
    svc.broker().revoke(revoke).await;
    Ok(())
}
