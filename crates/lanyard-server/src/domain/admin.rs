//! Teams as a platform (the admin API) or the operator (`lanyard admin …`) provisions them: one
//! per project, found again by the platform's own id, changed, given keys and connections, and
//! deleted with every session stopped and its audit kept. Both callers are trusted and call
//! these same functions; only the actor they audit as differs.

use lanyard_core::{Actor, AuditKind, Email, Label, NameError, TeamName, Tier};
use lanyard_store::{
    ApiKeyRecord, AuditEvent, ConnectionRecord, CreateOutcome, NewTeam, StoreError, TeamRecord,
    TeamUpdate,
};
use secrecy::SecretString;
use uuid::Uuid;

use crate::domain::accounts::{self, new_api_key, AccountError};
use crate::domain::connections::{self, Connect, ConnectionError, Trust};
use crate::services::Services;

/// An external id: the platform's key for the team.
const MAX_EXTERNAL_ID: usize = 200;
/// Teams listed at most, without an external id to look for.
pub const LIST_LIMIT: u32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the {0}")]
    InvalidName(NameError),
    #[error("tier must be one of anonymous, free, hobby, hobby_plus, pro, team or growth")]
    InvalidTier,
    #[error("external_id must be 1 to {MAX_EXTERNAL_ID} characters with no control characters")]
    InvalidExternalId,
    #[error("notification_email is not a valid email address")]
    InvalidEmail,
    #[error("no such team")]
    NotFound,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A team to provision, parsed from the wire form.
#[derive(Debug, Clone)]
pub struct Provision {
    pub name: TeamName,
    pub tier: Tier,
    pub external_id: Option<String>,
    pub notification_email: Option<Email>,
    /// Skipped by billing and email workers (the operator's `--test-cohort`).
    pub is_test_cohort: bool,
    /// A verified primary user: the git identity agents commit as (the operator's `--email`).
    pub primary_user: Option<Email>,
    pub actor: Actor,
}

pub fn parse_name(raw: &str) -> Result<TeamName, AdminError> {
    TeamName::parse(raw).map_err(AdminError::InvalidName)
}

pub fn parse_tier(raw: &str) -> Result<Tier, AdminError> {
    Tier::parse(raw).ok_or(AdminError::InvalidTier)
}

pub fn parse_email(raw: &str) -> Result<Email, AdminError> {
    Email::parse(raw).map_err(|_| AdminError::InvalidEmail)
}

pub fn parse_external_id(raw: &str) -> Result<String, AdminError> {
    let id = raw.trim();
    let ok = !id.is_empty()
        && id.chars().nth(MAX_EXTERNAL_ID).is_none()
        && !id.chars().any(char::is_control);
    ok.then(|| id.to_string())
        .ok_or(AdminError::InvalidExternalId)
}

/// The outcome of provisioning.
#[derive(Debug)]
pub enum Provisioned {
    /// A new team and its first API key (shown once).
    Created {
        team: TeamRecord,
        api_key: SecretString,
    },
    /// A team with this external id already existed: nothing was created, no key issued.
    Existing(TeamRecord),
}

/// Creates a team with its first API key, unless one with the same external id exists.
pub async fn provision(svc: &Services, input: Provision) -> Result<Provisioned, AdminError> {
    let (secret, key) = new_api_key(lanyard_core::Label::default_label());
    let new = NewTeam {
        name: input.name,
        tier: input.tier,
        is_test_cohort: input.is_test_cohort,
        primary_user: input.primary_user,
        external_id: input.external_id,
        notification_email: input.notification_email,
        actor: input.actor,
        extra_audit: vec![],
    };
    match svc
        .store()
        .create_team_once(&new, Some(&key), svc.clock().now())
        .await?
    {
        CreateOutcome::Created(created) => Ok(Provisioned::Created {
            team: created.team,
            api_key: secret.plaintext,
        }),
        CreateOutcome::Existing(team) => Ok(Provisioned::Existing(team)),
    }
}

pub async fn find(
    svc: &Services,
    external_id: Option<&str>,
) -> Result<Vec<TeamRecord>, AdminError> {
    let external_id = external_id.map(parse_external_id).transpose()?;
    Ok(svc
        .store()
        .teams_by_external_id(external_id.as_deref(), LIST_LIMIT)
        .await?)
}

pub async fn update(
    svc: &Services,
    team_id: Uuid,
    update: TeamUpdate,
    actor: &Actor,
) -> Result<TeamRecord, AdminError> {
    let team = svc
        .store()
        .update_team(team_id, &update, actor, svc.clock().now())
        .await?
        .ok_or(AdminError::NotFound)?;
    // Its sessions hold the team (its tier sets their limits): read them again here at once
    // (other replicas within their 2 s).
    svc.broker().forget_team(team_id);
    Ok(team)
}

async fn require_team(svc: &Services, team_id: Uuid) -> Result<TeamRecord, AdminError> {
    svc.store()
        .get_team(team_id)
        .await?
        .ok_or(AdminError::NotFound)
}

/// Another API key for the team; the plaintext is returned once.
pub async fn issue_key(
    svc: &Services,
    team_id: Uuid,
    label: Label,
    actor: &Actor,
) -> Result<(ApiKeyRecord, SecretString), AdminError> {
    require_team(svc, team_id).await?;
    Ok(accounts::issue_api_key(svc, team_id, label, actor).await?)
}

/// Binds a connection directly: the caller is trusted, so an installation needs no OAuth proof
/// (it is still checked with GitHub: its account must be the owner).
pub async fn connect(
    svc: &Services,
    team_id: Uuid,
    input: Connect,
    actor: &Actor,
) -> Result<ConnectionRecord, AdminError> {
    require_team(svc, team_id).await?;
    Ok(connections::connect(svc, team_id, input, Trust::Operator, actor).await?)
}

/// A deleted team and the sessions stopped on the way.
#[derive(Debug, Clone, Copy)]
pub struct Deleted {
    pub sessions_stopped: usize,
}

/// Deletes the team in one transaction: its live sessions end, its keys, connections and
/// sessions go, and every token it still held is revoked at GitHub after the commit. The audit
/// is kept.
pub async fn delete(svc: &Services, team_id: Uuid, actor: &Actor) -> Result<Deleted, AdminError> {
    let team = require_team(svc, team_id).await?;
    let event = AuditEvent::new(AuditKind::TeamDeleted, actor.clone())
        .subject(team.id)
        .data(serde_json::json!({
            "name": team.name, "tier": team.tier, "external_id": team.external_id,
        }));
    let deletion = svc
        .store()
        .delete_team(team.id, &event, svc.clock().now())
        .await?
        .ok_or(AdminError::NotFound)?;
    svc.broker().forget_team(team.id);
    svc.broker().revoke(deletion.revoke).await;
    Ok(Deleted {
        sessions_stopped: deletion.sessions_stopped,
    })
}
