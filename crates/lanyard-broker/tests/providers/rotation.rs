//! Refresh tokens that rotate (CONTRACT §14): each works once, as GitLab's do. The rotated one is
//! committed, sealed, before any part of the answer is served, and kept whatever becomes of the
//! access token; two replicas never refresh with the same one; a refresh slower than its lock
//! keeps the lock.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::Duration;
use lanyard_broker::crypto::Sealer;
use lanyard_broker::lock::{Attempt, CrossReplica, LOCK_EXTEND_EVERY, LOCK_TTL};
use lanyard_broker::provider::{Lifetime, Renewal};
use lanyard_broker::{refresh_aad, BrokerError, ScopeKey};
use lanyard_core::{Actor, Clock, ManualClock};
use lanyard_store::testing::{execute_script, mint_lease_until, uuid_literal};
use lanyard_store::Dialect;
use secrecy::{ExposeSecret, SecretString};

use crate::scripted::{until, worlds, Scripted, World, FIRST_REFRESH_TOKEN, KEY};

/// What these tests read and write of a world's connection.
trait RefreshTokens {
    async fn set_refresh_token(&self, token: &str, generation: i64);
    async fn stored_refresh_token(&self) -> (String, i64);
}

impl RefreshTokens for World {
    /// Stores `token` as the connection's refresh token at `generation`, as a refresh on
    /// another replica would have.
    async fn set_refresh_token(&self, token: &str, generation: i64) {
        let sealed = Sealer::new(&KEY).seal(
            &SecretString::from(token.to_string()),
            &refresh_aad(self.connection.id),
        );
        let id = uuid_literal(self.url.dialect(), self.connection.id);
        let bytes = match self.url.dialect() {
            Dialect::Sqlite => format!("X'{}'", hex::encode(&sealed)),
            Dialect::Postgres => format!("'\\x{}'::bytea", hex::encode(&sealed)),
        };
        let sql = format!(
            "UPDATE github_connections SET refresh_ciphertext = {bytes}, \
             refresh_generation = {generation} WHERE id = {id}"
        );
        execute_script(&self.url, &sql).await;
    }

    /// The connection's refresh token as stored now, opened, and its generation.
    async fn stored_refresh_token(&self) -> (String, i64) {
        let connection = self
            .store
            .get_connection(self.team, self.connection.id)
            .await;
        let connection = connection.unwrap().unwrap();
        let sealed = connection.refresh_ciphertext.expect("a refresh token");
        let opened = Sealer::new(&KEY).open(&sealed, &refresh_aad(self.connection.id));
        let token = opened.unwrap().expose_secret().to_string();
        (token, connection.refresh_generation)
    }
}

/// A refresh provider whose tokens live two hours; `ends_previous` as GitLab's refresh does.
fn refreshing(ends_previous: bool) -> impl Fn(&Arc<ManualClock>) -> Arc<Scripted> {
    move |clock| {
        let renewal = Renewal::Refresh {
            revokes_previous: ends_previous,
        };
        let provider = Scripted::new(clock, renewal, Lifetime::Expiring);
        *provider.life.lock().unwrap() = Duration::hours(2);
        provider
    }
}

/// Past the instant a two-hour token is renewed, either way.
const PAST_RENEWAL: Duration = Duration::minutes(116);

fn std(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap()
}

#[tokio::test]
async fn each_refresh_commits_the_rotated_refresh_token_and_the_next_uses_it() {
    for ends_previous in [true, false] {
        for (w, provider) in worlds(refreshing(ends_previous)).await {
            let (_, lookup) = w.session(&["widgets"]).await;
            assert_eq!(
                w.stored_refresh_token().await,
                (FIRST_REFRESH_TOKEN.into(), 0)
            );
            for round in 1..=4 {
                let served = w.fetch(&lookup).await.unwrap();
                assert_eq!(served, format!("credential-{round}"));
                // Committed before it was served: the store holds the provider's newest.
                assert_eq!(
                    w.stored_refresh_token().await,
                    (format!("refresh-{round}"), round)
                );
                w.clock.advance(PAST_RENEWAL);
            }
            assert_eq!(provider.invalid_grants.load(Ordering::SeqCst), 0);
        }
    }
}

#[tokio::test]
async fn two_replicas_refreshing_one_connection_never_use_a_rotated_refresh_token_twice() {
    for (w, provider) in worlds(refreshing(true)).await {
        let replicas = [w.broker.clone(), w.replica(), w.replica()];
        // Distinct repositories, one connection: one key, one refresh.
        let sessions = [
            w.session(&["widgets"]).await.1,
            w.session(&["gadgets"]).await.1,
            w.session(&["widgets", "gadgets"]).await.1,
        ];
        let reads = futures_reads(&w, &sessions).await;
        assert!(reads
            .windows(2)
            .all(|p| p[0].scopes[0].cache_key == p[1].scopes[0].cache_key));
        for round in 1..=5 {
            let mut callers = tokio::task::JoinSet::new();
            for replica in &replicas {
                for read in &reads {
                    for _ in 0..4 {
                        let (replica, read) = (replica.clone(), read.clone());
                        callers.spawn(async move {
                            let served = replica.credential(&read, &read.scopes[0]).await;
                            served.map(|s| s.credential.token.expose_secret().to_string())
                        });
                    }
                }
            }
            while let Some(done) = callers.join_next().await {
                assert_eq!(done.unwrap().unwrap(), format!("credential-{round}"));
            }
            assert_eq!(provider.obtains(), round, "one refresh per round");
            w.clock.advance(PAST_RENEWAL);
        }
        assert_eq!(provider.invalid_grants.load(Ordering::SeqCst), 0);
        assert_eq!(provider.most_in_flight.load(Ordering::SeqCst), 1);
    }
}

async fn futures_reads(w: &World, lookups: &[String]) -> Vec<Arc<lanyard_store::RunnerSession>> {
    let mut reads = Vec::new();
    for lookup in lookups {
        reads.push(Arc::new(w.read(lookup).await));
    }
    reads
}

/// The session's credential asked for on a task of its own; returns once its refresh has
/// reached the provider (closed by the caller, so it waits there).
async fn refreshing_now(
    w: &World,
    provider: &Scripted,
    read: lanyard_store::RunnerSession,
) -> tokio::task::JoinHandle<Result<(), BrokerError>> {
    let broker = w.broker.clone();
    let fetch =
        tokio::spawn(async move { broker.credential(&read, &read.scopes[0]).await.map(|_| ()) });
    until("the refresh is running", || {
        provider.in_flight.load(Ordering::SeqCst) == 1
    })
    .await;
    fetch
}

#[tokio::test]
async fn a_rotated_refresh_token_is_kept_when_its_access_token_is_not() {
    for (w, provider) in worlds(refreshing(true)).await {
        let (first, lookup) = w.session(&["widgets"]).await;
        let read = w.read(&lookup).await;
        // The only holder stops while the provider answers: the access token is refused and
        // revoked, but the provider has ended the old refresh token all the same.
        let closed = provider.close().await;
        let fetch = refreshing_now(&w, &provider, read).await;
        let operator = Actor::operator();
        let stopped = w
            .store
            .stop_session(w.team, first, &operator, w.clock.now());
        stopped.await.unwrap().unwrap();
        drop(closed);
        match fetch.await.unwrap() {
            Err(BrokerError::HolderEnded) => {}
            other => panic!("a token nobody holds was served: {other:?}"),
        }
        // Claimed, never served, and left to expire: revoking a refreshed token ends the
        // whole grant at many providers, the new refresh token with it.
        assert!(provider.revoked.lock().unwrap().is_empty());
        assert_eq!(w.stored_refresh_token().await, ("refresh-1".into(), 1));
        // The next session's refresh uses it.
        let (_, next) = w.session(&["widgets"]).await;
        assert_eq!(w.fetch(&next).await.unwrap(), "credential-2");
        assert_eq!(provider.invalid_grants.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test]
async fn a_refresh_slower_than_its_lock_extends_it_and_no_other_replica_refreshes_meanwhile() {
    for (w, provider) in worlds(refreshing(true)).await {
        let (_, lookup) = w.session(&["widgets"]).await;
        let read = Arc::new(w.read(&lookup).await);
        let closed = provider.close().await;
        let first = tokio::spawn({
            let (broker, read) = (w.broker.clone(), read.clone());
            async move { broker.credential(&read, &read.scopes[0]).await.map(|_| ()) }
        });
        until("the refresh is running", || {
            provider.in_flight.load(Ordering::SeqCst) == 1
        })
        .await;
        let key = format!("connection:{}", w.connection.id);
        let taken = mint_lease_until(&w.url, &key).await.expect("a lease");
        assert_eq!(taken, w.clock.now() + std(LOCK_TTL));
        // The provider is slow: past the point the lock is extended, then past the lease it
        // was taken with.
        w.clock.advance(std(LOCK_EXTEND_EVERY));
        let extended = w.clock.now() + std(LOCK_TTL);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while mint_lease_until(&w.url, &key).await != Some(extended) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the lease was never extended"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        w.clock
            .advance(std(LOCK_TTL) - std(LOCK_EXTEND_EVERY) + Duration::seconds(1));
        // The lease it was taken with has lapsed, yet the lock is held: another replica waits
        // for it instead of refreshing with the refresh token being rotated.
        let clock: Arc<dyn Clock> = w.clock.clone();
        let locks = CrossReplica::new(w.store.clone(), None, clock);
        match locks.try_acquire(&ScopeKey::new(&key)).await.unwrap() {
            Attempt::Busy => {}
            Attempt::Held(_) => panic!("a lapsed lease was taken from a running refresh"),
        }
        let second = tokio::spawn({
            let (broker, read) = (w.replica(), read.clone());
            async move { broker.credential(&read, &read.scopes[0]).await.map(|_| ()) }
        });
        drop(closed);
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(provider.obtains(), 1);
        assert_eq!(provider.most_in_flight.load(Ordering::SeqCst), 1);
        assert_eq!(provider.invalid_grants.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test]
async fn a_refresh_refused_for_a_refresh_token_that_moved_on_is_made_again_with_the_newer() {
    for (w, provider) in worlds(refreshing(true)).await {
        let (_, lookup) = w.session(&["widgets"]).await;
        let read = w.read(&lookup).await;
        let closed = provider.close().await;
        let fetch = refreshing_now(&w, &provider, read).await;
        // Meanwhile a refresh elsewhere (its lock lapsed, say) rotated the refresh token and
        // committed the newer one: this refresh's is refused.
        *provider.refresh.lock().unwrap() = "refresh-elsewhere".into();
        w.set_refresh_token("refresh-elsewhere", 1).await;
        drop(closed);
        fetch.await.unwrap().unwrap();
        assert_eq!(provider.invalid_grants.load(Ordering::SeqCst), 1);
        assert_eq!(provider.obtains(), 2);
        assert_eq!(w.stored_refresh_token().await, ("refresh-2".into(), 2));
    }
}

#[tokio::test]
async fn scopes_of_one_connection_under_distinct_keys_still_refresh_one_at_a_time() {
    for (w, provider) in worlds(refreshing(true)).await {
        // Keys as an older release, or another kind of scope, might have made them.
        let a = w.session_keyed(&["widgets"], "key-a").await;
        let b = w.session_keyed(&["gadgets"], "key-b").await;
        let (a, b) = (Arc::new(w.read(&a).await), Arc::new(w.read(&b).await));
        let other = w.replica();
        let (x, y) = tokio::join!(
            w.broker.credential(&a, &a.scopes[0]),
            other.credential(&b, &b.scopes[0])
        );
        x.unwrap();
        y.unwrap();
        assert_eq!(provider.most_in_flight.load(Ordering::SeqCst), 1);
        assert_eq!(provider.invalid_grants.load(Ordering::SeqCst), 0);
    }
}
