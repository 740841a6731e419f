//! Binding a GitHub owner on a host to a team, by App installation or PAT.

use lanyard_core::{Clock, ErrorCode};
use lanyard_github::GithubError;
use lanyard_store::{ConnectionKind, ConnectionRecord, Store};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::broker::{pat_aad, GithubHosts};
use crate::crypto::Sealer;
use crate::error::{ApiError, ApiResult};

/// What to connect: exactly one of `installation_id` and `pat`.
#[derive(Debug)]
pub struct Connect {
    pub host: String,
    pub owner: String,
    pub installation_id: Option<u64>,
    pub pat: Option<SecretString>,
}

/// GitHub errors as answers: down is 503 with Retry-After, refused is 502.
pub fn github_error(e: &GithubError) -> ApiError {
    match e {
        GithubError::Unavailable { retry_after, .. } => {
            let mut err = ApiError::new(
                ErrorCode::GithubUnavailable,
                "GitHub is not answering; retry shortly.",
            );
            if let Some(s) = retry_after {
                err = err.with_retry_after(u32::try_from(*s).unwrap_or(u32::MAX));
            }
            err
        }
        GithubError::Rejected { message, .. } => ApiError::new(
            ErrorCode::GithubRejected,
            format!("GitHub refused the request: {message}"),
        ),
        other => ApiError::internal(anyhow::anyhow!("{other}")),
    }
}

pub async fn connect(
    store: &Store,
    hosts: &GithubHosts,
    sealer: &Sealer,
    clock: &dyn Clock,
    team_id: Uuid,
    input: Connect,
    actor: &str,
) -> ApiResult<ConnectionRecord> {
    let host = input.host.trim().to_ascii_lowercase();
    let owner = input.owner.trim().to_ascii_lowercase();
    let owner_ok = !owner.is_empty()
        && owner.len() <= 39
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if host.is_empty() || !owner_ok {
        return Err(ApiError::new(
            ErrorCode::InvalidConnection,
            "host and owner are required; owner is a GitHub user or organisation login.",
        ));
    }
    let Some(client) = hosts.get(&host) else {
        return Err(ApiError::new(
            ErrorCode::UnknownGithubHost,
            format!("GitHub host {host:?} is not configured on this deployment."),
        ));
    };
    let id = Uuid::new_v4();
    let (kind, installation_id, pat_ciphertext) = match (input.installation_id, input.pat) {
        (Some(installation), None) => {
            if !client.has_app() {
                return Err(ApiError::new(
                    ErrorCode::UnknownGithubHost,
                    format!(
                        "GitHub host {host:?} has no GitHub App configured; connect it with a PAT."
                    ),
                ));
            }
            match client.installation(installation).await {
                Ok(found) if found.account_login.eq_ignore_ascii_case(&owner) => {}
                Ok(found) => {
                    return Err(ApiError::new(
                        ErrorCode::InstallationMismatch,
                        format!(
                            "Installation {installation} belongs to {:?}, not {owner:?}.",
                            found.account_login
                        ),
                    ))
                }
                Err(GithubError::Rejected { status: 404, .. }) => {
                    return Err(ApiError::new(
                        ErrorCode::InstallationMismatch,
                        format!(
                        "Installation {installation} does not exist for this GitHub App on {host}."
                    ),
                    ))
                }
                Err(e) => return Err(github_error(&e)),
            }
            let installation = i64::try_from(installation).map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidConnection,
                    "installation_id is out of range.",
                )
            })?;
            (ConnectionKind::GithubApp, Some(installation), None)
        }
        (None, Some(pat)) => {
            let p = pat.expose_secret();
            if p.is_empty()
                || p.len() > 512
                || p.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(ApiError::new(
                    ErrorCode::InvalidConnection,
                    "pat must be a non-empty token without spaces.",
                ));
            }
            (
                ConnectionKind::Pat,
                None,
                Some(sealer.seal(&pat, &pat_aad(id))),
            )
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidConnection,
                "Send exactly one of installation_id or pat.",
            ))
        }
    };
    let record = ConnectionRecord {
        id,
        team_id,
        host,
        owner,
        kind,
        installation_id,
        pat_ciphertext,
        created_at: clock.now(),
    };
    store
        .create_connection(&record, actor)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ConnectionExists,
                format!(
                    "The team already has a connection for {} on {}.",
                    record.owner, record.host
                ),
            )
        })
}
