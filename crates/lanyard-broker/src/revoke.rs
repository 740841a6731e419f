//! Revoking tokens upstream once their last live holder has ended (or their connection or
//! installation went away). The other replicas need no message: each reads a runner session
//! again after 2 s, and that read carries every scope's newest live token, so a token revoked
//! here is dropped from their memory within 2 s ([`crate::token::CachedToken::seen_live`]).
//!
//! An access token obtained with a refresh token is never revoked upstream: revoking it ends its
//! whole grant at many providers (Google's revocation endpoint does, and RFC 7009 allows any to),
//! the refresh token with it. Claimed here, it is never served again, and dies at its expiry.

use lanyard_core::Host;
use lanyard_store::TokenRecord;
use secrecy::SecretString;

use crate::metrics::{BrokerMetrics, RevocationResult};
use crate::provider::{Provider, Renewal, Revoked};
use crate::scope::ScopeKey;
use crate::{token_aad, Broker};

impl Broker {
    /// Revokes claimed tokens upstream and forgets them here. Returns how many are now dead; a
    /// failure is logged and counted, and the token dies at its expiry. The upstream calls run
    /// on a task of their own, so a caller that goes away (a client that disconnects mid-stop)
    /// leaves none of them unmade.
    pub async fn revoke(&self, tokens: Vec<TokenRecord>) -> usize {
        for record in &tokens {
            self.caches
                .tokens
                .invalidate(&ScopeKey::new(&record.cache_key));
        }
        let (providers, sealer, metrics) = (
            self.providers.clone(),
            self.sealer.clone(),
            self.metrics.clone(),
        );
        let revoking = tokio::spawn(async move {
            let mut dead = 0;
            for record in tokens {
                let result = match (
                    providers.expiring(record.host.as_str()),
                    sealer.open(&record.ciphertext, &token_aad(record.id)),
                ) {
                    (Some(registered), Ok(token)) => {
                        revoke_one(&*registered.provider, &record.host, &token, &metrics).await
                    }
                    _ => {
                        metrics.revoked(RevocationResult::Error);
                        RevocationResult::Error
                    }
                };
                if matches!(
                    result,
                    RevocationResult::Revoked | RevocationResult::AlreadyDead
                ) {
                    dead += 1;
                }
            }
            dead
        });
        revoking.await.unwrap_or(0)
    }
}

/// Revokes one token upstream and counts the result. Already dead is fine.
pub(crate) async fn revoke_one(
    provider: &dyn Provider,
    host: &Host,
    token: &SecretString,
    metrics: &BrokerMetrics,
) -> RevocationResult {
    if let Renewal::Refresh { .. } = provider.renewal() {
        metrics.revoked(RevocationResult::LeftToExpire);
        return RevocationResult::LeftToExpire;
    }
    let result = match provider.revoke(token).await {
        Ok(Revoked::Revoked) => RevocationResult::Revoked,
        Ok(Revoked::AlreadyDead) => RevocationResult::AlreadyDead,
        Err(e) => {
            tracing::warn!(host = %host, error = %e, "token revocation failed; it dies at its expiry");
            RevocationResult::Error
        }
    };
    metrics.revoked(result);
    result
}
