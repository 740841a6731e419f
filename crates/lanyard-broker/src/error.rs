//! What can go wrong serving a credential, as the edge maps it (`http::error::from_domain` in
//! the server).

use std::sync::Arc;

use lanyard_core::Host;
use lanyard_store::{ConnectionKind, StoreError};

use crate::provider::{ProviderError, ProviderKind};

#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    #[error("the provider is unavailable and no cached token meets the guarantee")]
    Unavailable { retry_after: Option<u64> },
    #[error("{} refused the request: {message}", kind.title())]
    Rejected {
        kind: ProviderKind,
        status: u16,
        message: String,
    },
    #[error("the connection for {owner} on {host} was removed")]
    NotConnected { host: Host, owner: String },
    #[error("the GitHub App no longer covers {owner} on {host} (uninstalled, or the repository was removed from it)")]
    Revoked { host: Host, owner: String },
    #[error("the GitHub App installation for {owner} on {host} is suspended")]
    Suspended { host: Host, owner: String },
    /// The connection's own credential (a PAT) is past the expiry it was given.
    #[error("the personal access token for {owner} on {host} has expired")]
    Expired {
        kind: ConnectionKind,
        host: Host,
        owner: String,
    },
    /// Every session holding the scope ended while its token was minted (it was revoked).
    #[error("this session has ended")]
    HolderEnded,
    /// The cached token is not the one the session's read found live (revoked elsewhere, or
    /// replaced): the caller's view of the session is read afresh (never leaves the broker).
    #[error("the cached token was revoked elsewhere")]
    Stale,
    #[error("the team has made as many upstream mints this hour as its tier allows")]
    RateLimited { retry_after: u32 },
    #[error(transparent)]
    Store(Arc<StoreError>),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for BrokerError {
    fn from(e: StoreError) -> Self {
        BrokerError::Store(Arc::new(e))
    }
}

impl BrokerError {
    /// A provider's refusal, named by its kind. [`ProviderError::Expired`] is answered by the
    /// broker itself, where the scope is known; here it is internal.
    pub fn from_provider(kind: ProviderKind, e: ProviderError) -> Self {
        match e {
            ProviderError::Unavailable { retry_after, .. } => {
                BrokerError::Unavailable { retry_after }
            }
            ProviderError::Rejected { status, message } => BrokerError::Rejected {
                kind,
                status,
                message,
            },
            ProviderError::Expired => {
                BrokerError::Internal("a provider reported an expired credential".into())
            }
            ProviderError::Internal(message) => BrokerError::Internal(message),
        }
    }
}
