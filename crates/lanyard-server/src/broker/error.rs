//! What can go wrong serving a credential, as the edge maps it (`http::error::from_domain`).

use std::sync::Arc;

use lanyard_github::GithubError;
use lanyard_store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    #[error("GitHub is unavailable and no cached token meets the guarantee")]
    Unavailable { retry_after: Option<u64> },
    #[error("GitHub refused the mint: {0}")]
    Rejected(GithubError),
    #[error("the connection for {owner} on {host} was removed")]
    NotConnected { host: String, owner: String },
    #[error("the GitHub App no longer covers {owner} on {host} (uninstalled, or the repository was removed from it)")]
    Revoked { host: String, owner: String },
    #[error("the GitHub App installation for {owner} on {host} is suspended")]
    Suspended { host: String, owner: String },
    #[error("the personal access token for {owner} on {host} has expired")]
    PatExpired { host: String, owner: String },
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

impl From<GithubError> for BrokerError {
    fn from(e: GithubError) -> Self {
        match e {
            GithubError::Unavailable { retry_after, .. } => {
                BrokerError::Unavailable { retry_after }
            }
            rejected @ GithubError::Rejected { .. } => BrokerError::Rejected(rejected),
            other => BrokerError::Internal(other.to_string()),
        }
    }
}
