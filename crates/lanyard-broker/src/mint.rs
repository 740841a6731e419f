//! Renewing a scope: take a token another replica stored, or obtain one from its provider under
//! the cross-replica lock, seal it, store it, and cache it.

use std::sync::Arc;
use std::time::Duration;

use lanyard_core::Host;
use lanyard_store::{ConnectionRecord, ConnectionStatus};
use uuid::Uuid;

use crate::cache::CachedToken;
use crate::lock::{Attempt, LOCK_TTL};
use crate::obtain::{Held, MintJob};
use crate::provider::{Ask, Registered, Renewal};
use crate::ratelimit::{Decision, LimitKey};
use crate::scope::ScopeKey;
use crate::slots::NoSlot;
use crate::token::Freshness;
use crate::{token_aad, Broker, BrokerError};

/// How soon a replica waiting for another's mint first looks for its token; the wait doubles
/// after each look, up to [`MAX_WAIT_POLL`].
const WAIT_POLL: Duration = Duration::from_millis(25);
const MAX_WAIT_POLL: Duration = Duration::from_millis(250);

/// The `Retry-After` of a mint that found no upstream slot in time.
const SLOT_RETRY_AFTER: u64 = 5;

/// What minting one scope needs, borrowed from the session asking.
#[derive(Debug, Clone, Copy)]
pub struct MintRequest<'a> {
    pub key: &'a ScopeKey,
    pub team_id: Uuid,
    pub session_id: Uuid,
    pub host: &'a Host,
    /// What the provider is asked for: the connection, repositories and permissions.
    pub ask: Ask<'a>,
    /// The provider, with its upstream slots.
    pub registered: &'a Registered,
    /// The configured floor (`token_min_remaining`).
    pub floor: chrono::Duration,
    /// The team's tier's limit on upstream mints per hour.
    pub mints_per_hour: u32,
    /// Where the asking session's read began, and the scope's newest live token it found.
    pub read_mark: u64,
    pub live_token: Option<Uuid>,
}

impl MintRequest<'_> {
    /// How the scope's credentials are kept fresh.
    pub fn rule(&self) -> Freshness {
        Freshness {
            floor: self.floor,
            renewal: self.registered.provider.renewal(),
        }
    }
}

impl Broker {
    /// The newest stored token for the scope if it is fresh (cached on the way); a servable but
    /// not fresh one is offered through `fallback`.
    pub(super) async fn stored_fresh(
        &self,
        key: &ScopeKey,
        rule: Freshness,
        fallback: &mut Option<Arc<CachedToken>>,
    ) -> Result<Option<Arc<CachedToken>>, BrokerError> {
        let Some(record) = self.store.latest_token(key.as_str()).await? else {
            return Ok(None);
        };
        // A row sealed under an earlier encryption key (or corrupt) is as good as absent: the
        // scope mints anew, and the old token dies within its hour.
        let token = match self.sealer.open(&record.ciphertext, &token_aad(record.id)) {
            Ok(token) => token,
            Err(e) => {
                // Once a minute at most: a waiter re-reads the row every 25 ms.
                static LAST_WARNED: std::sync::atomic::AtomicI64 =
                    std::sync::atomic::AtomicI64::new(i64::MIN);
                let now = self.clock.now().timestamp();
                let last = LAST_WARNED.load(std::sync::atomic::Ordering::Relaxed);
                if now.saturating_sub(last) >= 60
                    && LAST_WARNED
                        .compare_exchange(
                            last,
                            now,
                            std::sync::atomic::Ordering::Relaxed,
                            std::sync::atomic::Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    tracing::warn!(token_row = %record.id, error = %e, "a stored token cannot be opened (was LANYARD_ENCRYPTION_KEY changed, or do replicas disagree on it?); minting anew");
                }
                return Ok(None);
            }
        };
        let now = self.clock.now();
        let token = Arc::new(
            CachedToken::new(
                token,
                record.created_at,
                record.expires_at,
                record.repositories,
                record.permissions,
            )
            .stored_as(record.id)
            .marked(self.caches.next_mark()),
        );
        if token.fresh(now, rule) {
            self.caches.tokens.insert(key.clone(), token.clone());
            return Ok(Some(token));
        }
        if token.servable(now, rule)
            && fallback
                .as_ref()
                .is_none_or(|f| f.expires_at < token.expires_at)
        {
            *fallback = Some(token);
        }
        Ok(None)
    }

    /// One refresh of a scope: what another replica stored, else a mint in turn (see
    /// [`Self::mint_in_turn`]). Says whether it minted. When the mint fails, a stored token
    /// that still meets the floor is served.
    pub(super) async fn refresh(
        &self,
        req: MintRequest<'_>,
    ) -> Result<(Arc<CachedToken>, bool), BrokerError> {
        let mut fallback = None;
        if let Some(t) = self
            .stored_fresh(req.key, req.rule(), &mut fallback)
            .await?
        {
            return Ok((t, false));
        }
        match (self.mint_in_turn(req, &mut fallback).await, fallback) {
            (Ok(done), _) => Ok(done),
            (Err(e @ BrokerError::HolderEnded), _) => Err(e),
            (Err(e), fallback) => {
                self.cool_down(&req, &e);
                match fallback {
                    // A stored token that still meets the floor is served while GitHub is down.
                    Some(stored) => {
                        self.caches.tokens.insert(req.key.clone(), stored.clone());
                        Ok((stored, false))
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// A mint that waits its turn without holding anything another request needs. In this
    /// order: the team's hourly mint allowance (checked: a team over it waits for nothing), a
    /// slot of the host's upstream concurrency (fair between teams, see [`super::slots`]), then
    /// the cross-replica lock, each taken and waited for with no pooled connection held. A
    /// token another replica stores meanwhile is taken instead of minting; the allowance is
    /// counted only for a mint that is made.
    async fn mint_in_turn(
        &self,
        req: MintRequest<'_>,
        fallback: &mut Option<Arc<CachedToken>>,
    ) -> Result<(Arc<CachedToken>, bool), BrokerError> {
        let allowance = self
            .mint_limiter
            .peek_limit(LimitKey::Team(req.team_id), req.mints_per_hour)
            .await;
        if let Decision::Limited { retry_after } = allowance {
            return Err(BrokerError::RateLimited { retry_after });
        }
        let slot = req
            .registered
            .slots
            .acquire(req.team_id)
            .await
            .map_err(|NoSlot::Busy| BrokerError::Unavailable {
                retry_after: Some(SLOT_RETRY_AFTER),
            })?;
        // A refresh runs one connection at a time, whichever scope asks: the connection's
        // scopes share one refresh token, which may rotate.
        let lock_key = match req.registered.provider.renewal() {
            Renewal::Mint => req.key.clone(),
            Renewal::Refresh { .. } => {
                ScopeKey::new(&format!("connection:{}", req.ask.connection.id))
            }
        };
        let deadline = tokio::time::Instant::now() + LOCK_TTL;
        let mut poll = WAIT_POLL;
        let lock = loop {
            let attempt = match req.registered.provider.renewal() {
                Renewal::Mint => self.lock.try_acquire(&lock_key).await?,
                Renewal::Refresh { .. } => self.lock.try_acquire_in_database(&lock_key).await?,
            };
            match attempt {
                Attempt::Held(lock) => break lock,
                Attempt::Busy if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(poll).await;
                    poll = (poll * 2).min(MAX_WAIT_POLL);
                    if let Some(t) = self.stored_fresh(req.key, req.rule(), fallback).await? {
                        return Ok((t, false));
                    }
                }
                Attempt::Busy => {
                    return Err(BrokerError::Unavailable {
                        retry_after: Some(1),
                    })
                }
            }
        };
        // Another replica may have minted while this one waited for the lock.
        match self.stored_fresh(req.key, req.rule(), fallback).await {
            Ok(None) => {}
            done => {
                lock.release().await;
                return done.map(|t| (t.expect("None is handled above"), false));
            }
        }
        let allowance = self
            .mint_limiter
            .check_limit(LimitKey::Team(req.team_id), req.mints_per_hour)
            .await;
        if let Decision::Limited { retry_after } = allowance {
            lock.release().await;
            return Err(BrokerError::RateLimited { retry_after });
        }
        // A refresh uses the connection as it is now, read under the lock: the session's read
        // may be up to 2 s old, and another replica may have rotated its refresh token since.
        let connection = match req.registered.provider.renewal() {
            Renewal::Mint => req.ask.connection.clone(),
            Renewal::Refresh { .. } => {
                let id = req.ask.connection.id;
                let read = self.store.get_connection(req.team_id, id).await;
                match read {
                    Ok(Some(now)) if now.status == ConnectionStatus::Suspended => {
                        lock.release().await;
                        return Err(BrokerError::Suspended {
                            host: req.host.clone(),
                            owner: now.owner.to_string(),
                        });
                    }
                    Ok(Some(now)) => now,
                    Ok(None) => {
                        lock.release().await;
                        return Err(BrokerError::NotConnected {
                            host: req.host.clone(),
                            owner: req.ask.connection.owner.to_string(),
                        });
                    }
                    Err(e) => {
                        lock.release().await;
                        return Err(e.into());
                    }
                }
            }
        };
        // The mint takes the slot and the lock with it, and gives them back once its token is
        // stored: a caller that goes away frees neither while the provider still works.
        self.mint(req, connection, Held { lock, slot })
            .await
            .map(|t| (t, true))
    }

    /// The mint itself, run by a task of its own that holds the provider's slot and the scope's
    /// lock until the provider's answer is stored (or, unservable or unheld, revoked): once
    /// begun, it finishes even if the caller goes away (its client disconnected, its deadline
    /// passed), so no credential is left live upstream without a row that says what became of
    /// it, and neither the upstream bound nor the lock is given up while the provider works.
    async fn mint(
        &self,
        req: MintRequest<'_>,
        connection: ConnectionRecord,
        held: Held,
    ) -> Result<Arc<CachedToken>, BrokerError> {
        let job = MintJob {
            provider: req.registered.provider.clone(),
            store: self.store.clone(),
            sealer: self.sealer.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            rule: req.rule(),
            team_id: req.team_id,
            session_id: req.session_id,
            cache_key: req.key.as_str().to_string(),
            host: req.host.clone(),
            connection,
            repositories: req.ask.repositories.to_vec(),
            permissions: req.ask.permissions.clone(),
        };
        let (obtained, outcome) = tokio::spawn(job.run(held))
            .await
            .map_err(|e| BrokerError::Internal(format!("the mint task failed: {e}")))?;
        self.note_outcome(&req, obtained);
        let token = Arc::new(outcome?.marked(self.caches.next_mark()));
        self.caches.tokens.insert(req.key.clone(), token.clone());
        Ok(token)
    }
}
