//! The credential broker: serves each session's credentials with a freshness guarantee,
//! obtaining them upstream O(1) times per scope per credential lifetime, for every provider
//! alike ([`provider`]). It knows nothing of HTTP: the server renders what it serves.
//!
//! A credential of an expiring kind is looked up in this order: the in-process cache
//! ([`cache`]); then, one caller per scope at a time on this replica (single-flight,
//! [`cache::Caches::flights`]), the database; then an upstream call under the cross-replica
//! lock ([`lock`]) in [`mint`], within the provider's fair share of upstream concurrency
//! ([`slots`]). A credential is renewed ahead of time, and while one caller renews the others
//! keep being served the current one (except one its renewal ends: they wait for its
//! successor), so while the provider is down the cached credential is served for as long as it
//! meets its guarantee ([`token::Freshness`]). Ending sessions revoke what only they
//! held ([`revoke`]). A static credential (a PAT) is opened from its connection on each request.
//!
//! Every time decision reads the injected [`Clock`]; the in-process caches' own times bound
//! memory and decide nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lanyard_core::wire::CredentialSource;
use lanyard_core::Clock;
use lanyard_store::{ConnectionStatus, RunnerSession, ScopeRecord, Store};

pub mod cache;
mod counters;
pub mod crypto;
mod error;
mod failures;
pub mod lock;
mod marks;
pub mod metrics;
mod mint;
mod obtain;
pub mod provider;
pub mod providers;
pub mod ratelimit;
pub mod redis_conn;
mod revoke;
pub mod scope;
mod sessions;
pub mod slots;
pub mod token;

pub use cache::{CacheLimits, CachedToken, SESSION_STALE, SESSION_TTL};
pub use error::BrokerError;
pub use failures::REFRESH_FAILURES_TO_NOTIFY;
pub use provider::{Providers, Registered};
pub use providers::pat_aad;
pub use scope::{cache_key, ScopeKey};
pub use token::Freshness;

use cache::{Caches, Cooldown};
use counters::Counters;
use crypto::Sealer;
use lock::CrossReplica;
use metrics::{BrokerMetrics, CacheResult};
use mint::MintRequest;
use provider::{Ask, Lifetime, ProviderError};
use ratelimit::RateLimiter;
use redis_conn::RedisHandle;

/// After a failed mint, callers with a servable cached token do not retry upstream for this long.
const MINT_COOLDOWN: chrono::Duration = chrono::Duration::seconds(5);

/// What the broker hands out: shared, so serving a cached token copies nothing.
#[derive(Debug, Clone)]
pub struct Served {
    pub source: CredentialSource,
    pub credential: Arc<CachedToken>,
    /// The expiry it is served with, when one is known: the true one, or, for a credential
    /// whose renewal ends it, the instant it is rotated ([`Freshness`]).
    pub expires_at: Option<DateTime<Utc>>,
}

/// The associated data a stored token is sealed with: its row id.
pub fn token_aad(id: uuid::Uuid) -> String {
    format!("token:{id}")
}

/// The associated data a connection's refresh token is sealed with.
pub fn refresh_aad(connection_id: uuid::Uuid) -> String {
    format!("refresh:{connection_id}")
}

#[derive(Debug)]
pub struct Broker {
    store: Store,
    providers: Arc<Providers>,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
    metrics: BrokerMetrics,
    floor: chrono::Duration,
    caches: Caches,
    lock: CrossReplica,
    counters: Counters,
    /// Upstream mints per team per hour (the tier's `mints_per_hour`).
    mint_limiter: Arc<RateLimiter>,
}

/// What the broker is built from; everything is made at start-up and handed in.
#[derive(Debug)]
pub struct BrokerParts {
    pub store: Store,
    pub providers: Arc<Providers>,
    pub sealer: Sealer,
    pub clock: Arc<dyn Clock>,
    pub metrics: BrokerMetrics,
    pub redis: Option<Arc<RedisHandle>>,
    /// `token_min_remaining`.
    pub floor: Duration,
    pub limits: CacheLimits,
    pub mint_limiter: Arc<RateLimiter>,
}

impl Broker {
    pub fn new(parts: BrokerParts) -> Self {
        Self {
            lock: CrossReplica::new(
                parts.store.clone(),
                parts.redis.clone(),
                parts.clock.clone(),
            ),
            store: parts.store,
            providers: parts.providers,
            sealer: parts.sealer,
            clock: parts.clock,
            floor: chrono::Duration::from_std(parts.floor).unwrap_or(chrono::Duration::minutes(15)),
            caches: Caches::new(parts.limits),
            counters: Counters::new(&parts.metrics),
            metrics: parts.metrics,
            mint_limiter: parts.mint_limiter,
        }
    }

    /// The providers it obtains credentials from.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// Publishes each cache's size to `lanyard_broker_cache_entries`.
    pub fn publish_cache_sizes(&self) {
        for (name, entries) in self.caches.sizes() {
            self.metrics.set_cache_entries(name, entries);
        }
    }

    /// The credential for one scope of a session. When the scope's cached token turns out to
    /// have been revoked by another replica, the session and scope are read afresh from the
    /// store, so the answer is why (stopped, uninstalled, suspended, disconnected), and a new
    /// token is minted only if none of those holds.
    pub async fn credential(
        &self,
        session: &RunnerSession,
        scope: &ScopeRecord,
    ) -> Result<Served, BrokerError> {
        // A token revoked elsewhere, or a mint that found no live holder: re-read why, so a
        // scope revoked under a live session answers as revoked, not as an ended session.
        match self.credential_as_cached(session, scope).await {
            Err(BrokerError::Stale | BrokerError::HolderEnded) => {}
            other => return other,
        }
        // Requests after this one read the team's sessions afresh too.
        self.forget_team(session.team.id);
        let read_mark = self.caches.next_mark();
        let Some((fresh_session, fresh_scope)) = Box::pin(self.store.fresh_scope(
            session.session.id,
            session.team.id,
            &scope.cache_key,
        ))
        .await?
        else {
            return Err(BrokerError::HolderEnded);
        };
        if fresh_session.status(self.clock.now()) != lanyard_store::SessionStatus::Active {
            return Err(BrokerError::HolderEnded);
        }
        let fresh = RunnerSession {
            session: fresh_session,
            read_mark,
            ..session.clone()
        };
        match Box::pin(self.credential_as_cached(&fresh, &fresh_scope)).await {
            // The scope's token changed again while it was read (another replica minted):
            // the next request finds it.
            Err(BrokerError::Stale) => Err(BrokerError::Unavailable {
                retry_after: Some(1),
            }),
            other => other,
        }
    }

    async fn credential_as_cached(
        &self,
        session: &RunnerSession,
        scope: &ScopeRecord,
    ) -> Result<Served, BrokerError> {
        // Named in errors only: built on the way out, not on every request.
        let names = || (scope.host.clone(), scope.owner.to_string());
        let not_connected = || {
            let (host, owner) = names();
            BrokerError::NotConnected { host, owner }
        };
        // Ended upstream (an uninstall, or a repository taken out): whatever is bound now.
        if scope.revoked_at.is_some() {
            let (host, owner) = names();
            return Err(BrokerError::Revoked { host, owner });
        }
        let connection = scope.connection().ok_or_else(not_connected)?;
        let registered = self
            .providers
            .get(scope.host.as_str(), connection.kind)
            .ok_or_else(not_connected)?;
        if connection.status == ConnectionStatus::Suspended {
            let (host, owner) = names();
            return Err(BrokerError::Suspended { host, owner });
        }
        let provider = &registered.provider;
        let ask = Ask {
            connection,
            repositories: &scope.repositories,
            permissions: &session.session.permissions,
            // Opened by the mint that uses it, under the connection's lock.
            refresh_token: None,
        };
        let served = match provider.lifetime() {
            Lifetime::Static => {
                let now = self.clock.now();
                let opened = provider.obtain(ask).await;
                let expired = match &opened {
                    Ok(o) => o.expires_at.is_some_and(|e| e <= now),
                    Err(e) => matches!(e, ProviderError::Expired),
                };
                if expired {
                    let (host, owner) = names();
                    return Err(BrokerError::Expired {
                        kind: connection.kind,
                        host,
                        owner,
                    });
                }
                let opened = opened.map_err(|e| BrokerError::from_provider(provider.kind(), e))?;
                Served {
                    source: provider.source(),
                    expires_at: opened.expires_at,
                    credential: Arc::new(CachedToken::new(
                        opened.secret,
                        now,
                        opened.expires_at.unwrap_or(now),
                        scope.repositories.iter().map(|r| r.to_string()).collect(),
                        Default::default(),
                    )),
                }
            }
            Lifetime::Expiring => {
                let key = ScopeKey::shared(scope.cache_key.clone());
                let credential = self
                    .app_token(MintRequest {
                        key: &key,
                        team_id: session.team.id,
                        session_id: session.session.id,
                        host: &scope.host,
                        ask,
                        registered,
                        floor: self.floor,
                        mints_per_hour: session.team.tier.limits().mints_per_hour,
                        read_mark: session.read_mark,
                        live_token: scope.live_token,
                    })
                    .await?;
                let rule = Freshness {
                    floor: self.floor,
                    renewal: provider.renewal(),
                };
                Served {
                    source: provider.source(),
                    expires_at: Some(credential.served_expiry(self.clock.now(), rule)),
                    credential,
                }
            }
        };
        self.counters.served(served.source);
        Ok(served)
    }

    async fn app_token(&self, req: MintRequest<'_>) -> Result<Arc<CachedToken>, BrokerError> {
        let now = self.clock.now();
        let rule = req.rule();
        let cached = match self.caches.tokens.get(req.key) {
            // The session's read found another token live, or none: this one was revoked (on
            // any replica) or replaced since it was cached. The caller reads the session again.
            Some(t) if !t.seen_live(req.read_mark, req.live_token) => {
                self.caches.tokens.invalidate(req.key);
                return Err(BrokerError::Stale);
            }
            cached => cached,
        };
        if let Some(t) = cached.as_ref().filter(|t| t.fresh(now, rule)) {
            self.counters.cache(CacheResult::Hit);
            return Ok(t.clone());
        }
        let fallback = cached.filter(|t| t.servable(now, rule));
        let cooling = self.caches.cooldowns.get(req.key).filter(|c| c.until > now);
        if let Some(current) = fallback {
            // Someone renews it, or the provider just failed: the current one still meets the
            // floor. One that its renewal ends is never served while it is being renewed: its
            // callers wait for the successor (and get the current one only if that fails).
            let ends_current = rule.renewal.ends_previous();
            if cooling.is_some() || (!ends_current && !self.caches.claim_refresh(req.key)) {
                self.counters.cache(CacheResult::Hit);
                return Ok(current);
            }
            // Boxed, here and below: the mint path's future is large, and inline it would make every
            // cached request's future as large (and moved as often).
            let refreshed = Box::pin(self.flight(req)).await;
            if !ends_current {
                self.caches.release_refresh(req.key);
            }
            return Ok(match refreshed {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(host = %req.host, error = %e, "refresh failed; serving the current token");
                    self.counters.cache(CacheResult::Hit);
                    current
                }
            });
        }
        if let Some(c) = cooling {
            return Err(BrokerError::Unavailable {
                retry_after: c.retry_after,
            });
        }
        Box::pin(self.flight(req)).await
    }

    /// Refreshes the scope once on this replica however many callers ask at the same moment.
    async fn flight(&self, req: MintRequest<'_>) -> Result<Arc<CachedToken>, BrokerError> {
        for _ in 0..2 {
            let ran = AtomicBool::new(false);
            let minted = AtomicBool::new(false);
            let result = self
                .caches
                .flights
                .try_get_with(req.key.clone(), async {
                    ran.store(true, Ordering::Relaxed);
                    let (token, did_mint) = self.refresh(req).await?;
                    minted.store(did_mint, Ordering::Relaxed);
                    Ok::<_, BrokerError>(token)
                })
                .await;
            self.caches.flights.invalidate(req.key).await;
            let token = result.map_err(|e| (*e).clone())?;
            // A flight left behind by a cancelled caller may hold an old token: never serve it.
            if !token.servable(self.clock.now(), req.rule()) {
                continue;
            }
            self.counters
                .cache(match (ran.into_inner(), minted.into_inner()) {
                    (true, true) => CacheResult::Miss,
                    (true, false) => CacheResult::Hit,
                    (false, _) => CacheResult::Coalesced,
                });
            return Ok(token);
        }
        Err(BrokerError::Unavailable {
            retry_after: Some(1),
        })
    }

    /// After a failed mint: no upstream retry for this scope for a moment.
    fn cool_down(&self, req: &MintRequest<'_>, e: &BrokerError) {
        let provider = req.registered.provider.kind().title();
        tracing::warn!(provider, host = %req.host, connection = %req.ask.connection.id, error = %e, "an upstream mint failed");
        if let BrokerError::Unavailable { retry_after } = e {
            self.caches.cooldowns.insert(
                req.key.clone(),
                Cooldown {
                    until: self.clock.now() + MINT_COOLDOWN,
                    retry_after: *retry_after,
                },
            );
        }
    }
}
