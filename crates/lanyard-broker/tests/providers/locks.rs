//! The cross-replica lock itself: extended only by its holder, on Redis and on the database
//! lease; and a refresh's lock taken in the database even where Redis is configured, so
//! replicas can never split between the two.

use std::sync::Arc;

use lanyard_broker::lock::{Attempt, CrossReplica, MintLock, LOCK_TTL};
use lanyard_broker::redis_conn::{RedisHandle, RedisUrl};
use lanyard_broker::ScopeKey;
use lanyard_core::Clock;
use lanyard_store::testing::mint_lease_until;

use crate::scripted::{expiring, worlds};

fn held(attempt: Attempt) -> MintLock {
    match attempt {
        Attempt::Held(lock) => lock,
        Attempt::Busy => panic!("the lock was busy"),
    }
}

#[tokio::test]
async fn a_database_lease_is_extended_by_its_holder_only() {
    for (w, _) in worlds(expiring).await {
        let clock: Arc<dyn Clock> = w.clock.clone();
        let locks = CrossReplica::new(w.store.clone(), None, clock);
        let key = ScopeKey::new("scope-a");
        let lock = held(locks.try_acquire(&key).await.unwrap());
        w.clock.advance(chrono::Duration::seconds(20));
        assert!(lock.extend().await);
        let until = mint_lease_until(&w.url, "scope-a").await;
        let ttl = chrono::Duration::from_std(LOCK_TTL).unwrap();
        assert_eq!(until, Some(w.clock.now() + ttl));
        // Lapsed and taken by another: the first holder can no longer extend it.
        w.clock.advance(ttl + chrono::Duration::seconds(1));
        let other = held(locks.try_acquire(&key).await.unwrap());
        assert!(!lock.extend().await);
        assert!(other.extend().await);
    }
}

#[tokio::test]
async fn on_redis_a_lock_is_extended_by_its_holder_and_a_refresh_lock_stays_in_the_database() {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        return; // .ci/run always sets it; a requested Redis that is down fails below.
    };
    let redis = Arc::new(RedisHandle::new(RedisUrl::new(url)).unwrap());
    let mut raw = redis
        .connection()
        .await
        .expect("TEST_REDIS_URL is set but Redis is down");
    for (w, _) in worlds(expiring).await {
        let clock: Arc<dyn Clock> = w.clock.clone();
        let locks = CrossReplica::new(w.store.clone(), Some(redis.clone()), clock);
        let name = format!("scope-{}", uuid::Uuid::new_v4().simple());
        let key = ScopeKey::new(&name);
        let redis_key = format!("lanyard:mint-lock:{name}");
        let lock = held(locks.try_acquire(&key).await.unwrap());
        assert!(matches!(
            locks.try_acquire(&key).await.unwrap(),
            Attempt::Busy
        ));
        // Near its end, then extended to the whole TTL again.
        let _: () = redis::cmd("PEXPIRE")
            .arg(&redis_key)
            .arg(1000)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(lock.extend().await);
        let left: i64 = redis::cmd("PTTL")
            .arg(&redis_key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(left > 25_000, "{left} ms left");
        // Taken over by another holder: never extended by the first.
        let _: () = redis::cmd("SET")
            .arg(&redis_key)
            .arg("another")
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(!lock.extend().await);
        let _: () = redis::cmd("DEL")
            .arg(&redis_key)
            .query_async(&mut raw)
            .await
            .unwrap();
        // A refresh's lock is the database lease, whatever Redis holds.
        let refresh = held(locks.try_acquire_in_database(&key).await.unwrap());
        assert!(mint_lease_until(&w.url, &name).await.is_some());
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&redis_key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(exists, 0);
        refresh.release().await;
        assert_eq!(mint_lease_until(&w.url, &name).await, None);
    }
}
