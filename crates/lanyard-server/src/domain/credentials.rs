//! The credential path: which scope a runner asks for, and the broker's answer for it.

use lanyard_core::wire::HostOwner;
use lanyard_store::{RunnerSession, ScopeRecord, SessionStatus};
use uuid::Uuid;

use crate::broker::{BrokerError, Served};
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Another session's route, or no scope under that host and owner.
    #[error("this session has no repositories under that host and owner")]
    NotFound,
    #[error("this session has ended; it serves no more credentials")]
    SessionEnded,
    #[error("this session spans several hosts or owners; pass host and owner")]
    OwnerRequired(Vec<HostOwner>),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// The scope a credential request names. `host` may be omitted when the session is on one host,
/// `owner` when it is under one owner there; otherwise the choices come back.
pub fn pick_scope<'a>(
    session: &'a RunnerSession,
    host: Option<&str>,
    owner: Option<&str>,
) -> Result<&'a ScopeRecord, CredentialError> {
    let matches = |s: &&ScopeRecord| {
        host.is_none_or(|h| s.host.as_str().eq_ignore_ascii_case(h))
            && owner.is_none_or(|o| s.owner.as_str().eq_ignore_ascii_case(o))
    };
    let mut matching = session.scopes.iter().filter(matches);
    match (matching.next(), matching.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(CredentialError::NotFound),
        (Some(_), Some(_)) => Err(CredentialError::OwnerRequired(
            session
                .scopes
                .iter()
                .filter(matches)
                .map(|s| HostOwner {
                    host: s.host.to_string(),
                    owner: s.owner.to_string(),
                })
                .collect(),
        )),
    }
}

/// Serves a live session's credential for the scope it names. `session_id` is the session in
/// the route: a runner token is valid only on its own session's route.
pub async fn serve<'s>(
    svc: &Services,
    session: &'s RunnerSession,
    session_id: Uuid,
    host: Option<&str>,
    owner: Option<&str>,
) -> Result<(&'s ScopeRecord, Served), CredentialError> {
    if session.session.id != session_id {
        return Err(CredentialError::NotFound);
    }
    if session.session.status(svc.clock().now()) != SessionStatus::Active {
        return Err(CredentialError::SessionEnded);
    }
    let scope = pick_scope(session, host, owner)?;
    let served = svc.broker().credential(session, scope).await?;
    Ok((scope, served))
}
