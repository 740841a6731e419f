//! GitHub personal access tokens: stored sealed on their connection, served as they are until
//! the expiry GitHub gave them, never minted or revoked by Lanyard.

use std::sync::Arc;

use lanyard_core::wire::CredentialSource;
use lanyard_core::Clock;
use secrecy::SecretString;

use crate::crypto::Sealer;
use crate::provider::{
    Ask, Lifetime, Obtained, Pending, Provider, ProviderError, ProviderKind, Revoked,
};

/// The associated data a connection's PAT is sealed with.
pub fn pat_aad(connection_id: uuid::Uuid) -> String {
    format!("pat:{connection_id}")
}

/// A host's PAT connections: each opens its own sealed token.
#[derive(Debug)]
pub struct StoredPat {
    sealer: Sealer,
    clock: Arc<dyn Clock>,
}

impl StoredPat {
    pub fn new(sealer: Sealer, clock: Arc<dyn Clock>) -> Self {
        Self { sealer, clock }
    }

    fn open(&self, ask: Ask<'_>) -> Result<Obtained, ProviderError> {
        let connection = ask.connection;
        // Expired before anything else: such a PAT is refused as expired, whatever its row.
        if connection
            .pat_expires_at
            .is_some_and(|e| e <= self.clock.now())
        {
            return Err(ProviderError::Expired);
        }
        let sealed = connection
            .pat_ciphertext
            .as_deref()
            .ok_or_else(|| ProviderError::Internal("a PAT connection without a PAT".into()))?;
        let secret = self
            .sealer
            .open(sealed, &pat_aad(connection.id))
            .map_err(|e| ProviderError::Internal(e.to_string()))?;
        Ok(Obtained {
            secret,
            expires_at: connection.pat_expires_at,
            repositories: Vec::new(),
            permissions: Default::default(),
            rotated: None,
        })
    }
}

impl Provider for StoredPat {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Github
    }

    fn source(&self) -> CredentialSource {
        CredentialSource::Pat
    }

    fn lifetime(&self) -> Lifetime {
        Lifetime::Static
    }

    fn obtain<'a>(&'a self, ask: Ask<'a>) -> Pending<'a, Result<Obtained, ProviderError>> {
        let opened = self.open(ask);
        Box::pin(std::future::ready(opened))
    }

    fn revoke<'a>(&'a self, _: &'a SecretString) -> Pending<'a, Result<Revoked, ProviderError>> {
        Box::pin(std::future::ready(Err(ProviderError::Internal(
            "a personal access token is revoked by its owner, not by Lanyard".into(),
        ))))
    }
}
