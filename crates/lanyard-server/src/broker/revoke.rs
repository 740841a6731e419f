//! Revoking tokens at GitHub once their last live holder has ended, and telling the other
//! replicas at once: with Redis, each revoked scope is published on [`CHANNEL`], and every
//! replica's [`Broker::follow_revocations`] drops it from its cache. Without Redis (or while it
//! is down), each replica re-reads a cached token's row once a second ([`super::cache::RECHECK`]),
//! so a revocation still reaches every replica within 2 s.

use lanyard_github::Revocation;
use lanyard_store::TokenRecord;

use std::sync::Arc;

use super::cache::CachedToken;
use super::scope::ScopeKey;
use super::{token_aad, Broker};
use crate::metrics::{Label, RevocationLabel, RevocationResult};

/// The pub/sub channel revoked scopes are announced on.
pub const CHANNEL: &str = "lanyard:revoked-scopes";
/// A message longer than any cache key is ignored.
const MAX_MESSAGE: usize = 1024;

impl Broker {
    /// Tells the other replicas that these scopes' tokens are revoked (best effort: the store
    /// re-check is the backstop). Each message is the scope's cache key and its team's id.
    async fn announce(&self, tokens: &[TokenRecord]) {
        let Some(redis) = self.redis.as_ref() else {
            return;
        };
        for token in tokens {
            let message = format!("{} {}", token.cache_key, token.team_id);
            if let Err(e) = redis.publish(CHANNEL, &message).await {
                tracing::debug!(error = %e, "cannot announce a revocation; replicas re-check the store");
                return;
            }
        }
    }

    /// Forgets an announced scope here: its token, and its team's sessions, so the next
    /// request reads from the store why it was revoked (a stop, an uninstall) and answers so.
    /// A message without a team (from an older replica) forgets the token alone; the session
    /// change feed forgets the sessions soon after.
    fn forget_scope(&self, message: &str) {
        let (cache_key, team) = match message.split_once(' ') {
            Some((key, team)) => (key, team.parse::<uuid::Uuid>().ok()),
            None => (message, None),
        };
        self.caches.tokens.invalidate(&ScopeKey::new(cache_key));
        if let Some(team) = team {
            self.caches.forget_team(team);
        }
    }

    /// Until `shutdown`, drops from this replica's cache every scope another replica announces
    /// as revoked. Reconnects after a second when Redis goes away. Without Redis, returns at once.
    pub async fn follow_revocations(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        use futures_util::StreamExt;
        let Some(redis) = self.redis.clone() else {
            return;
        };
        loop {
            match redis.subscribe(CHANNEL).await {
                Ok(pubsub) => {
                    let mut messages = pubsub.into_on_message();
                    loop {
                        tokio::select! {
                            message = messages.next() => {
                                let Some(message) = message else { break };
                                let payload = message.get_payload_bytes();
                                if payload.len() <= MAX_MESSAGE {
                                    if let Ok(message) = std::str::from_utf8(payload) {
                                        self.forget_scope(message);
                                    }
                                }
                            }
                            _ = shutdown.changed() => return,
                        }
                    }
                    tracing::debug!("revocation channel closed; resubscribing");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot follow revocations; the store re-check covers them")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// A token from memory, unless re-reading its row (once a [`cache::RECHECK`]) finds it
    /// revoked, by a stop on another replica say. While the store cannot answer, it is served.
    pub(super) async fn still_live(
        &self,
        key: &ScopeKey,
        token: Arc<CachedToken>,
    ) -> Option<Arc<CachedToken>> {
        let Some(id) = token.claim_recheck() else {
            return Some(token);
        };
        match Box::pin(self.store.token_revoked(id)).await {
            Ok(false) => Some(token),
            Ok(true) => {
                self.caches.tokens.invalidate(key);
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot re-read a cached token's row; serving it");
                Some(token)
            }
        }
    }

    /// Revokes claimed tokens at GitHub and forgets them here. Returns how many are now dead; a
    /// failure is logged and counted, and the token dies at its expiry.
    pub async fn revoke(&self, tokens: Vec<TokenRecord>) -> usize {
        self.announce(&tokens).await;
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
