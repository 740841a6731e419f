//! The cross-replica mint lock: one replica mints a scope at a time. Through Redis (`SET NX PX`,
//! released by compare-and-delete) when it is configured, and otherwise through a lease row in
//! the database (`mint_leases`). Either is taken and given back with one short call: nothing, no
//! pooled connection above all, is held while GitHub answers or while another replica mints.
//!
//! A lock is given back when its [`MintLock`] is released, or dropped: a caller cancelled in
//! mid-mint (its client went away) leaves no lease behind. A crashed replica's lock lapses after
//! [`LOCK_TTL`].

use std::sync::Arc;
use std::time::Duration;

use lanyard_core::Clock;
use lanyard_store::{Store, StoreError};
use uuid::Uuid;

use crate::redis_conn::RedisHandle;
use crate::scope::ScopeKey;

/// How long a mint lock is held at most unless its holder extends it (a crashed holder frees it
/// by then): longer than a mint can take (GitHub's request timeout is 20 s).
pub const LOCK_TTL: Duration = Duration::from_secs(30);

/// How often a running mint extends its lock to [`LOCK_TTL`] from then: a refresh slowed by its
/// provider or the store keeps its lock, so no other replica refreshes with the refresh token
/// it is rotating.
pub const LOCK_EXTEND_EVERY: Duration = Duration::from_secs(10);

/// Where a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Redis,
    Database,
}

/// A held lock: given back by [`MintLock::release`], or in the background when dropped.
#[derive(Debug)]
pub struct MintLock {
    backend: Backend,
    key: ScopeKey,
    holder: String,
    locks: CrossReplica,
    released: bool,
}

/// The outcome of one attempt.
#[derive(Debug)]
pub enum Attempt {
    Held(MintLock),
    /// Another replica (or another caller on this one) holds it.
    Busy,
}

#[derive(Debug, Clone)]
pub struct CrossReplica {
    store: Store,
    redis: Option<Arc<RedisHandle>>,
    clock: Arc<dyn Clock>,
}

fn redis_key(key: &ScopeKey) -> String {
    format!("lanyard:mint-lock:{}", key.as_str())
}

const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

const EXTEND: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

impl CrossReplica {
    pub fn new(store: Store, redis: Option<Arc<RedisHandle>>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            redis,
            clock,
        }
    }

    /// One attempt, answered at once: held or busy. Redis first when configured; when it fails,
    /// the database lease.
    pub async fn try_acquire(&self, key: &ScopeKey) -> Result<Attempt, StoreError> {
        self.attempt(key, true).await
    }

    /// One attempt on the database lease only, whatever Redis does: for a lock that must hold
    /// even while some replicas reach Redis and others do not (a refresh whose refresh token
    /// rotates: two replicas refreshing at once would end the connection's grant). It lives in
    /// the database that holds the refresh token's generation.
    pub async fn try_acquire_in_database(&self, key: &ScopeKey) -> Result<Attempt, StoreError> {
        self.attempt(key, false).await
    }

    async fn attempt(&self, key: &ScopeKey, redis_first: bool) -> Result<Attempt, StoreError> {
        let holder = Uuid::new_v4().simple().to_string();
        let held = |backend| {
            Attempt::Held(MintLock {
                backend,
                key: key.clone(),
                holder: holder.clone(),
                locks: self.clone(),
                released: false,
            })
        };
        if let Some(redis) = self.redis.as_ref().filter(|_| redis_first) {
            match set_nx(redis, key, &holder).await {
                Ok(true) => return Ok(held(Backend::Redis)),
                Ok(false) => return Ok(Attempt::Busy),
                Err(e) => {
                    tracing::warn!(error = %e, "redis mint lock unavailable; using the database lease");
                }
            }
        }
        let now = self.clock.now();
        let until = now + chrono::Duration::from_std(LOCK_TTL).unwrap_or(chrono::Duration::MAX);
        if self
            .store
            .claim_mint_lease(key.as_str(), &holder, now, until)
            .await?
        {
            Ok(held(Backend::Database))
        } else {
            Ok(Attempt::Busy)
        }
    }

    async fn give_back(&self, backend: Backend, key: &ScopeKey, holder: &str) {
        match (backend, &self.redis) {
            (Backend::Redis, Some(redis)) => {
                if let Ok(mut conn) = redis.connection().await {
                    let _: Result<i64, _> = redis::Script::new(RELEASE)
                        .key(redis_key(key))
                        .arg(holder)
                        .invoke_async(&mut conn)
                        .await;
                }
            }
            _ => {
                if let Err(e) = self.store.release_mint_lease(key.as_str(), holder).await {
                    tracing::warn!(error = %e, "could not give a mint lease back; it lapses by itself");
                }
            }
        }
    }
}

impl MintLock {
    /// Extends the lock to [`LOCK_TTL`] from now. `false` when it is not held any more (it
    /// lapsed and another took it) or the backend could not be reached.
    pub async fn extend(&self) -> bool {
        let locks = &self.locks;
        match (self.backend, &locks.redis) {
            (Backend::Redis, Some(redis)) => {
                let Ok(mut conn) = redis.connection().await else {
                    return false;
                };
                let ttl = u64::try_from(LOCK_TTL.as_millis()).unwrap_or(u64::MAX);
                let extended: Result<i64, _> = redis::Script::new(EXTEND)
                    .key(redis_key(&self.key))
                    .arg(&self.holder)
                    .arg(ttl)
                    .invoke_async(&mut conn)
                    .await;
                extended.is_ok_and(|n| n == 1)
            }
            _ => {
                let until = locks.clock.now()
                    + chrono::Duration::from_std(LOCK_TTL).unwrap_or(chrono::Duration::MAX);
                let extended = locks
                    .store
                    .extend_mint_lease(self.key.as_str(), &self.holder, until)
                    .await;
                extended.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not extend a mint lease");
                    false
                })
            }
        }
    }

    /// Gives the lock back now (and, if this is cancelled midway, in the background on drop).
    pub async fn release(mut self) {
        self.locks
            .give_back(self.backend, &self.key, &self.holder)
            .await;
        self.released = true;
    }
}

impl Drop for MintLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Cancelled mid-mint: give it back in the background (a runtime is there while requests
        // are served; without one, the lock lapses after LOCK_TTL).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (locks, backend, key) = (self.locks.clone(), self.backend, self.key.clone());
            let holder = std::mem::take(&mut self.holder);
            runtime.spawn(async move { locks.give_back(backend, &key, &holder).await });
        }
    }
}

async fn set_nx(redis: &RedisHandle, key: &ScopeKey, holder: &str) -> anyhow::Result<bool> {
    let mut conn = redis.connection().await?;
    let set: Option<String> = redis::cmd("SET")
        .arg(redis_key(key))
        .arg(holder)
        .arg("NX")
        .arg("PX")
        .arg(u64::try_from(LOCK_TTL.as_millis()).unwrap_or(u64::MAX))
        .query_async(&mut conn)
        .await?;
    Ok(set.is_some())
}
