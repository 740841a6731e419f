//! Binding a GitHub owner on a host to a team, by App installation or PAT.

use lanyard_core::github::{echo, Owner, OwnerError};
use lanyard_core::Actor;
use lanyard_github::GithubError;
use lanyard_store::{ConnectionKind, ConnectionRecord, StoreError};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::broker::pat_aad;
use crate::services::Services;

/// How the team reaches the owner.
#[derive(Debug)]
pub enum Credential {
    Installation(u64),
    Pat(SecretString),
}

/// A connection to make, parsed from the wire form.
#[derive(Debug)]
pub struct Connect {
    pub host: String,
    pub owner: Owner,
    pub credential: Credential,
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
    #[error("installation {installation} belongs to {found:?}, not {owner:?}")]
    InstallationMismatch {
        installation: u64,
        found: String,
        owner: Owner,
    },
    #[error("installation {installation} does not exist for this GitHub App on {host}")]
    InstallationMissing { installation: u64, host: String },
    #[error("the team already has a connection for {owner} on {host}")]
    Exists { host: String, owner: Owner },
    #[error("the team has no such connection")]
    NotFound,
    #[error(transparent)]
    Github(GithubError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Connect {
    /// From the wire form: a host, an owner, and exactly one of an installation and a PAT.
    pub fn parse(
        host: &str,
        owner: &str,
        installation_id: Option<u64>,
        pat: Option<SecretString>,
    ) -> Result<Self, ConnectionError> {
        let host = host.trim().to_ascii_lowercase();
        if host.is_empty() {
            return Err(ConnectionError::MissingHost);
        }
        let owner = Owner::parse(owner)?;
        let credential = match (installation_id, pat) {
            (Some(id), None) => Credential::Installation(id),
            (None, Some(pat)) => {
                let p = pat.expose_secret();
                if p.is_empty()
                    || p.len() > 512
                    || p.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(ConnectionError::InvalidPat);
                }
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

/// Binds the owner to the team. An installation is checked with GitHub: its account must be the
/// owner. A PAT is stored encrypted.
pub async fn connect(
    svc: &Services,
    team_id: Uuid,
    input: Connect,
    actor: &Actor,
) -> Result<ConnectionRecord, ConnectionError> {
    let Some(host) = svc.hosts().get(&input.host) else {
        return Err(ConnectionError::UnknownHost(echo(&input.host)));
    };
    let id = Uuid::new_v4();
    let (kind, installation_id, pat_ciphertext) = match input.credential {
        Credential::Installation(installation) => {
            if !host.client.has_app() {
                return Err(ConnectionError::NoApp(input.host));
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
                        host: input.host,
                    })
                }
                Err(e) => return Err(ConnectionError::Github(e)),
            }
            let installation =
                i64::try_from(installation).map_err(|_| ConnectionError::InstallationOutOfRange)?;
            (ConnectionKind::GithubApp, Some(installation), None)
        }
        Credential::Pat(pat) => (
            ConnectionKind::Pat,
            None,
            Some(svc.sealer().seal(&pat, &pat_aad(id))),
        ),
    };
    let record = ConnectionRecord {
        id,
        team_id,
        host: input.host,
        owner: input.owner,
        kind,
        installation_id,
        pat_ciphertext,
        created_at: svc.clock().now(),
    };
    svc.store()
        .create_connection(&record, actor)
        .await?
        .ok_or(ConnectionError::Exists {
            host: record.host.clone(),
            owner: record.owner.clone(),
        })
}

/// Removes one of the team's connections.
pub async fn disconnect(
    svc: &Services,
    team_id: Uuid,
    id: Uuid,
    actor: &Actor,
) -> Result<(), ConnectionError> {
    let deleted = svc
        .store()
        .delete_connection(team_id, id, actor, svc.clock().now())
        .await?;
    if !deleted {
        return Err(ConnectionError::NotFound);
    }
    svc.broker().forget_team(team_id);
    Ok(())
}
