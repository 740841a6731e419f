//! Revoking tokens at GitHub once their last live holder has ended (or their connection or
//! installation went away). The other replicas need no message: each reads a runner session
//! again after 2 s, and that read carries every scope's newest live token, so a token revoked
//! here is dropped from their memory within 2 s ([`super::token::CachedToken::seen_live`]).

use lanyard_github::Revocation;
use lanyard_store::TokenRecord;

use super::scope::ScopeKey;
use super::{token_aad, Broker};
use crate::metrics::{Label, RevocationLabel, RevocationResult};

impl Broker {
    /// Revokes claimed tokens at GitHub and forgets them here. Returns how many are now dead; a
    /// failure is logged and counted, and the token dies at its expiry.
    pub async fn revoke(&self, tokens: Vec<TokenRecord>) -> usize {
        let mut dead = 0;
        for record in tokens {
            self.caches
                .tokens
                .invalidate(&ScopeKey::new(&record.cache_key));
            let result = match (
                self.hosts.get(&record.host),
                self.sealer.open(&record.ciphertext, &token_aad(record.id)),
            ) {
                (Some(host), Ok(token)) => match host.client.revoke(&token).await {
                    Ok(Revocation::Revoked) => RevocationResult::Revoked,
                    Ok(Revocation::AlreadyDead) => RevocationResult::AlreadyDead,
                    Err(e) => {
                        tracing::warn!(host = %record.host, error = %e, "token revocation failed; it dies at its expiry");
                        RevocationResult::Error
                    }
                },
                _ => RevocationResult::Error,
            };
            if result != RevocationResult::Error {
                dead += 1;
            }
            self.metrics
                .revocations
                .get_or_create(&RevocationLabel {
                    result: Label(result),
                })
                .inc();
        }
        dead
    }
}
