//! One upstream call for a scope, owned by a task of its own: the provider's credential, checked
//! against the floor, sealed and stored with its holder check, or revoked when nobody may hold
//! it. It holds the provider's slot and the scope's lock until then.

use std::sync::Arc;

use lanyard_core::Actor;
use lanyard_store::{ConnectionRecord, Stored, TokenRecord};
use uuid::Uuid;

use crate::cache::CachedToken;
use crate::lock::MintLock;
use crate::metrics::BrokerMetrics;
use crate::provider::{Ask, Obtained, Provider, ProviderError};
use crate::revoke::revoke_one;
use crate::slots::SlotPermit;
use crate::token::Freshness;
use crate::{token_aad, BrokerError};

/// One mint with everything it needs owned, so it runs to its end on a task of its own.
pub(crate) struct MintJob {
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) store: lanyard_store::Store,
    pub(crate) sealer: crate::crypto::Sealer,
    pub(crate) clock: Arc<dyn lanyard_core::Clock>,
    pub(crate) metrics: BrokerMetrics,
    pub(crate) rule: Freshness,
    pub(crate) team_id: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) cache_key: String,
    pub(crate) host: String,
    pub(crate) connection: ConnectionRecord,
    pub(crate) repositories: Vec<String>,
    pub(crate) permissions: lanyard_core::github::PermissionSet,
}

/// What a mint holds while it runs: a slot of the provider, and the scope's cross-replica lock.
pub(crate) struct Held {
    pub(crate) lock: MintLock,
    pub(crate) slot: SlotPermit,
}

impl MintJob {
    /// The mint, then its slot and lock given back.
    pub(crate) async fn run(self, held: Held) -> (bool, Result<CachedToken, BrokerError>) {
        let done = self.mint_and_store().await;
        held.lock.release().await;
        drop(held.slot);
        done
    }

    /// The provider's credential, checked against the floor and stored with its holder check.
    /// Says whether the provider handed one over, and the stored token (or why there is none).
    async fn mint_and_store(&self) -> (bool, Result<CachedToken, BrokerError>) {
        let ask = Ask {
            connection: &self.connection,
            repositories: &self.repositories,
            permissions: &self.permissions,
        };
        match self.provider.obtain(ask).await {
            Ok(obtained) => (true, self.store_obtained(obtained).await),
            Err(e) => (
                false,
                Err(BrokerError::from_provider(self.provider.kind(), e)),
            ),
        }
    }

    async fn revoke(&self, token: &CachedToken) {
        revoke_one(&*self.provider, &self.host, &token.token, &self.metrics).await;
    }

    async fn store_obtained(&self, obtained: Obtained) -> Result<CachedToken, BrokerError> {
        let now = self.clock.now();
        let Some(expires_at) = obtained.expires_at else {
            // Never served, so never left live.
            let why = "an expiring provider handed over a credential without an expiry";
            tracing::error!(host = %self.host, "{why}; revoking it");
            revoke_one(&*self.provider, &self.host, &obtained.secret, &self.metrics).await;
            return Err(BrokerError::Internal(why.into()));
        };
        let token = CachedToken::new(
            obtained.secret,
            now,
            expires_at,
            if obtained.repositories.is_empty() {
                self.repositories.clone()
            } else {
                obtained.repositories
            },
            if obtained.permissions.is_empty() {
                self.permissions
                    .iter()
                    .map(|(p, a)| (p.to_string(), a.to_string()))
                    .collect()
            } else {
                obtained.permissions
            },
        );
        if !token.servable(now, self.rule) {
            tracing::error!(host = %self.host, "the provider handed over a token that lives less than token_min_remaining; lower LANYARD_TOKEN_MIN_REMAINING");
            // Never served, so never left live.
            self.revoke(&token).await;
            return Err(BrokerError::from_provider(
                self.provider.kind(),
                ProviderError::Unavailable {
                    retry_after: None,
                    message: "the credential is shorter-lived than the configured floor".into(),
                },
            ));
        }
        // Tokens are stored per installation (the one expiring provider so far); a provider
        // without one gets its own column with the providers that need it.
        let Some(installation_id) = self.connection.installation_id else {
            let why = "an expiring credential for a connection without an installation";
            tracing::error!(host = %self.host, "{why}; revoking it");
            self.revoke(&token).await;
            return Err(BrokerError::Internal(why.into()));
        };
        let id = Uuid::new_v4();
        let record = TokenRecord {
            id,
            team_id: self.team_id,
            cache_key: self.cache_key.clone(),
            host: self.host.clone(),
            installation_id,
            ciphertext: self.sealer.seal(&token.token, &token_aad(id)),
            repositories: token.repositories.clone(),
            permissions: token.permissions.clone(),
            created_at: now,
            expires_at: token.expires_at,
        };
        // A token exists upstream only with a live holder, or on its way to being revoked.
        match self
            .store
            .insert_token(&record, &Actor::runner(self.session_id), now)
            .await
        {
            Ok(Stored::Held) => Ok(token.stored_as(id)),
            Ok(Stored::Orphaned) => {
                tracing::info!(host = %self.host, "every holder of the scope stopped, or its connection was deleted, during the mint; the new token is revoked");
                self.revoke(&token).await;
                Err(BrokerError::HolderEnded)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not store a minted token; revoking it");
                self.revoke(&token).await;
                Err(BrokerError::Unavailable {
                    retry_after: Some(1),
                })
            }
        }
    }
}
