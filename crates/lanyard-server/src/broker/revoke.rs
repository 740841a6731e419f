//! Revoking tokens at GitHub once their last live holder has ended (or their connection or
//! installation went away). The other replicas need no message: each reads a runner session
//! again after 2 s, and that read carries every scope's newest live token, so a token revoked
//! here is dropped from their memory within 2 s ([`super::token::CachedToken::seen_live`]).

use lanyard_github::{GithubHost, Revocation};
use lanyard_store::TokenRecord;
use secrecy::SecretString;

use super::scope::ScopeKey;
use super::{token_aad, Broker};
use crate::metrics::{Label, Metrics, RevocationLabel, RevocationResult};

impl Broker {
    /// Revokes claimed tokens at GitHub and forgets them here. Returns how many are now dead; a
    /// failure is logged and counted, and the token dies at its expiry. The calls to GitHub run
    /// on a task of their own, so a caller that goes away (a client that disconnects mid-stop)
    /// leaves none of them unmade.
    pub async fn revoke(&self, tokens: Vec<TokenRecord>) -> usize {
        for record in &tokens {
            self.caches
                .tokens
                .invalidate(&ScopeKey::new(&record.cache_key));
        }
        let (hosts, sealer, metrics) = (
            self.hosts.clone(),
            self.sealer.clone(),
            self.metrics.clone(),
        );
        let revoking = tokio::spawn(async move {
            let mut dead = 0;
            for record in tokens {
                let result = match (
                    hosts.get(&record.host),
                    sealer.open(&record.ciphertext, &token_aad(record.id)),
                ) {
                    (Some(host), Ok(token)) => revoke_one(&host.client, &token, &metrics).await,
                    _ => {
                        count(&metrics, RevocationResult::Error);
                        RevocationResult::Error
                    }
                };
                if result != RevocationResult::Error {
                    dead += 1;
                }
            }
            dead
        });
        revoking.await.unwrap_or(0)
    }
}

/// Revokes one token at GitHub and counts the result. A 401 (already dead) is fine.
pub(super) async fn revoke_one(
    client: &GithubHost,
    token: &SecretString,
    metrics: &Metrics,
) -> RevocationResult {
    let result = match client.revoke(token).await {
        Ok(Revocation::Revoked) => RevocationResult::Revoked,
        Ok(Revocation::AlreadyDead) => RevocationResult::AlreadyDead,
        Err(e) => {
            tracing::warn!(host = %client.host(), error = %e, "token revocation failed; it dies at its expiry");
            RevocationResult::Error
        }
    };
    count(metrics, result);
    result
}

fn count(metrics: &Metrics, result: RevocationResult) {
    metrics
        .revocations
        .get_or_create(&RevocationLabel {
            result: Label(result),
        })
        .inc();
}
