//! The cross-replica mint lock: one replica mints a scope at a time. Through Redis (`SET NX PX`,
//! released by compare-and-delete) when it is configured, and otherwise through a Postgres
//! advisory lock. SQLite has one writer process, so its lock is the in-process single-flight.

use std::sync::Arc;
use std::time::Duration;

use lanyard_store::{ScopeLock, Store, StoreError};
use uuid::Uuid;

use super::scope::ScopeKey;
use crate::redis_conn::RedisHandle;

/// How long a Redis mint lock is held at most (a crashed holder frees it by then).
pub const LOCK_TTL: Duration = Duration::from_secs(15);

/// A held lock; give it back with [`CrossReplica::release`].
#[derive(Debug)]
pub enum MintLock {
    /// Held until dropped.
    Database {
        _held: ScopeLock,
    },
    Redis(String),
}

/// The outcome of one attempt.
#[derive(Debug)]
pub enum Attempt {
    Held(MintLock),
    /// Another replica holds it.
    Busy,
}

#[derive(Debug, Clone)]
pub struct CrossReplica {
    store: Store,
    redis: Option<Arc<RedisHandle>>,
}

fn redis_key(key: &ScopeKey) -> String {
    format!("lanyard:mint-lock:{}", key.as_str())
}

const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

impl CrossReplica {
    pub fn new(store: Store, redis: Option<Arc<RedisHandle>>) -> Self {
        Self { store, redis }
    }

    /// One attempt. Redis answers at once (held or busy); without Redis, or when it fails, the
    /// database lock is waited for.
    pub async fn try_acquire(&self, key: &ScopeKey) -> Result<Attempt, StoreError> {
        if let Some(redis) = &self.redis {
            match set_nx(redis, key).await {
                Ok(Some(id)) => return Ok(Attempt::Held(MintLock::Redis(id))),
                Ok(None) => return Ok(Attempt::Busy),
                Err(e) => {
                    redis.reset().await;
                    tracing::warn!(error = %e, "redis mint lock unavailable; using the database lock");
                }
            }
        }
        let lock = self.store.lock_scope(key.lock_id()).await?;
        Ok(Attempt::Held(MintLock::Database { _held: lock }))
    }

    pub async fn release(&self, key: &ScopeKey, lock: MintLock) {
        match (lock, &self.redis) {
            (MintLock::Redis(id), Some(redis)) => {
                if let Ok(mut conn) = redis.connection().await {
                    let _: Result<i64, _> = redis::Script::new(RELEASE)
                        .key(redis_key(key))
                        .arg(id)
                        .invoke_async(&mut conn)
                        .await;
                }
            }
            (lock, _) => drop(lock),
        }
    }
}

async fn set_nx(redis: &RedisHandle, key: &ScopeKey) -> anyhow::Result<Option<String>> {
    let id = Uuid::new_v4().simple().to_string();
    let mut conn = redis.connection().await?;
    let set: Option<String> = redis::cmd("SET")
        .arg(redis_key(key))
        .arg(&id)
        .arg("NX")
        .arg("PX")
        .arg(u64::try_from(LOCK_TTL.as_millis()).unwrap_or(u64::MAX))
        .query_async(&mut conn)
        .await?;
    Ok(set.map(|_| id))
}
