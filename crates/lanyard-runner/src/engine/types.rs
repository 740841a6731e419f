//! What the engine hands out and how it refuses.

use chrono::{DateTime, Utc};
use lanyard_core::github::Scheme;
use lanyard_core::wire::SocketErrorKind;
use secrecy::SecretString;

use crate::client::EndCause;

/// The server's word that the session is over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub cause: EndCause,
    pub message: String,
}

/// A token handed out, with its expiry.
#[derive(Clone)]
pub struct Handout {
    pub token: SecretString,
    pub expires_at: Option<DateTime<Utc>>,
    pub host: String,
    pub owner: String,
    pub scheme: Scheme,
}

impl std::fmt::Debug for Handout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handout")
            .field("host", &self.host)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no credential for {0}")]
    NoCredential(String),
    #[error("several credentials match; name one of: {0}")]
    Ambiguous(String),
    #[error("the current token has expired and refreshing failed: {0}")]
    Expired(String),
    #[error("the session has ended: {0}")]
    Ended(String),
}

impl EngineError {
    /// The kind of refusal, as the socket protocol names it.
    pub fn kind(&self) -> SocketErrorKind {
        match self {
            EngineError::NoCredential(_) => SocketErrorKind::NoCredential,
            EngineError::Ambiguous(_) => SocketErrorKind::Ambiguous,
            EngineError::Expired(_) => SocketErrorKind::Expired,
            EngineError::Ended(_) => SocketErrorKind::Ended,
        }
    }
}
