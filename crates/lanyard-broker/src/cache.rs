//! The broker's in-process caches. Each is a moka cache bounded by entry count and by time, so
//! neither many scopes nor many runner tokens can grow memory without limit; an entry for a scope
//! nobody uses goes away after `token_idle`.
//!
//! The caches' own times (moka's) are memory bounds on the wall clock and decide nothing else:
//! whether a session is trusted, a token may be served, or a cooldown still holds is judged on
//! the injected clock, by the caller.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lanyard_store::RunnerSession;
use moka::sync::Cache;

use crate::marks::{TeamMark, TeamMarks};
use crate::metrics::CacheName;
use crate::scope::ScopeKey;
pub use crate::token::CachedToken;

/// How big and how long-lived each cache may be.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Scopes with a cached token.
    pub tokens: u64,
    /// A scope's token leaves memory after this long unused (it stays in the database).
    pub token_idle: Duration,
    /// Runner tokens with a cached session.
    pub sessions: u64,
    /// How long a runner token's session is trusted from memory (on the injected clock).
    /// Changes made through this process forget it at once; one made on another replica takes
    /// effect within this delay.
    pub session_ttl: Duration,
    /// How long a session read earlier is still served while the store cannot answer (an
    /// outage writes no stop either): credentials already cached keep flowing.
    pub session_stale: Duration,
    /// Cooldowns, refresh markers and in-flight mints.
    pub pending: u64,
    /// The longest a cooldown, refresh marker or flight entry is kept.
    pub pending_ttl: Duration,
}

/// A session (with its scopes, their connections and each scope's live token) is trusted this
/// long before it is read again: another replica, even one on the same SQLite file, may have
/// stopped it, revoked its token or lost its connection, and the contract gives every replica
/// 2 s to notice. This process forgets a team's sessions at once when it changes them itself.
pub const SESSION_TTL: Duration = Duration::from_secs(2);

/// See [`CacheLimits::session_stale`]. Short: a stop written through another replica meanwhile
/// is not seen here until the database answers again.
pub const SESSION_STALE: Duration = Duration::from_secs(30);

/// A runner token's session as read from the store, and when.
#[derive(Debug, Clone)]
pub struct CachedSession {
    pub session: Arc<RunnerSession>,
    /// When its read began (the injected clock).
    pub loaded: DateTime<Utc>,
    /// Set when its team is forgotten.
    pub team: Arc<TeamMark>,
}

impl CachedSession {
    /// Not forgotten since it was read (alone, or with its team).
    pub fn valid(&self) -> bool {
        !self.team.forgotten()
    }

    /// How long ago it was read. A read "in the future" (the clock stepped back) counts as
    /// too old to trust, never as fresh.
    pub fn age(&self, now: DateTime<Utc>) -> Duration {
        (now - self.loaded).to_std().unwrap_or(Duration::MAX)
    }
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            tokens: 50_000,
            token_idle: Duration::from_secs(15 * 60),
            sessions: 50_000,
            session_ttl: SESSION_TTL,
            session_stale: SESSION_STALE,
            pending: 10_000,
            pending_ttl: Duration::from_secs(60),
        }
    }
}

/// After a failed mint: no upstream retry for this scope before `until` (injected clock), and
/// GitHub's Retry-After if it gave one.
#[derive(Debug, Clone, Copy)]
pub struct Cooldown {
    pub until: DateTime<Utc>,
    pub retry_after: Option<u64>,
}

/// The hot caches' hasher. What they hold is keyed by what this server made: a scope's SHA-256,
/// and a runner token's random lookup id, inserted only once the store has a session under it
/// (a lookup a caller made up is hashed to look, and a miss caches nothing). No caller can fill
/// them with keys of its choosing, so a fast seeded hash is enough; SipHash cost more than the
/// rest of the lookup. Caching misses here would need a hash that resists chosen keys.
pub type FastHash = foldhash::fast::RandomState;

#[derive(Debug)]
pub struct Caches {
    pub tokens: Cache<ScopeKey, Arc<CachedToken>, FastHash>,
    /// By runner-token lookup id.
    pub sessions: Cache<Arc<str>, CachedSession, FastHash>,
    pub cooldowns: Cache<ScopeKey, Cooldown>,
    /// Scopes whose refresh one caller has claimed; the others serve the current token meanwhile.
    pub refreshing: Cache<ScopeKey, ()>,
    /// In-flight mints, for single-flight: one per scope at a time on this replica.
    pub flights: moka::future::Cache<ScopeKey, Arc<CachedToken>>,
    /// Consecutive failed mints per scope, forgotten after an hour without one.
    pub failures: Cache<ScopeKey, u32>,
    /// The sizes and times these caches were built with (the sessions' trust times are read
    /// from here).
    pub limits: CacheLimits,
    pub team_marks: TeamMarks,
    /// Counts every forgetting (a session, a team): a session read during one is not cached,
    /// since it may have read the state from before the change that was forgotten.
    forgets: AtomicU64,
    /// Orders this replica's session reads and the tokens it caches (see
    /// [`CachedToken::seen_live`]).
    marks: AtomicU64,
}

impl Caches {
    pub fn new(limits: CacheLimits) -> Self {
        Self {
            limits,
            team_marks: TeamMarks::default(),
            forgets: AtomicU64::new(0),
            marks: AtomicU64::new(0),
            tokens: Cache::builder()
                .max_capacity(limits.tokens)
                .time_to_idle(limits.token_idle)
                .build_with_hasher(FastHash::default()),
            sessions: Cache::builder()
                .max_capacity(limits.sessions)
                // A memory bound only: what may be served is judged on the injected clock.
                .time_to_live(limits.session_ttl + limits.session_stale)
                .build_with_hasher(FastHash::default()),
            cooldowns: Cache::builder()
                .max_capacity(limits.pending)
                .time_to_live(limits.pending_ttl)
                .build(),
            refreshing: Cache::builder()
                .max_capacity(limits.pending)
                .time_to_live(limits.pending_ttl)
                .build(),
            flights: moka::future::Cache::builder()
                .max_capacity(limits.pending)
                .time_to_live(limits.pending_ttl)
                .build(),
            failures: Cache::builder()
                .max_capacity(limits.pending)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        }
    }

    /// The next mark in the order of session reads and cached tokens (never 0).
    pub fn next_mark(&self) -> u64 {
        self.marks.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn forgets(&self) -> u64 {
        self.forgets.load(Ordering::SeqCst)
    }

    /// Forgets one runner token's session.
    pub fn forget_session(&self, lookup: &str) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.sessions.invalidate(lookup);
    }

    /// Forgets every cached session of a team.
    pub fn forget_team(&self, team: uuid::Uuid) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.team_marks.forget(team);
    }

    /// Claims the refresh of a scope; `false` if another caller already holds the claim.
    pub fn claim_refresh(&self, key: &ScopeKey) -> bool {
        self.refreshing.entry_by_ref(key).or_insert(()).is_fresh()
    }

    pub fn release_refresh(&self, key: &ScopeKey) {
        self.refreshing.invalidate(key);
    }

    /// The number of entries in each cache, after applying pending evictions.
    pub fn sizes(&self) -> [(CacheName, u64); 6] {
        self.tokens.run_pending_tasks();
        self.sessions.run_pending_tasks();
        self.cooldowns.run_pending_tasks();
        self.refreshing.run_pending_tasks();
        self.failures.run_pending_tasks();
        [
            (CacheName::Tokens, self.tokens.entry_count()),
            (CacheName::Sessions, self.sessions.entry_count()),
            (CacheName::Cooldowns, self.cooldowns.entry_count()),
            (CacheName::Refreshing, self.refreshing.entry_count()),
            (CacheName::Flights, self.flights.entry_count()),
            (CacheName::Failures, self.failures.entry_count()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use std::collections::BTreeMap;
    use std::time::Instant;

    fn token(now: DateTime<Utc>) -> Arc<CachedToken> {
        Arc::new(CachedToken::new(
            SecretString::from("t"),
            now,
            now + chrono::Duration::hours(1),
            vec!["widgets".into()],
            BTreeMap::new(),
        ))
    }

    fn count(caches: &Caches, name: CacheName) -> u64 {
        caches.sizes().iter().find(|(n, _)| *n == name).unwrap().1
    }

    /// 100,000 distinct scopes, as a caller choosing its own repos × permissions could make:
    /// memory stays under the bound while they arrive, and empties once they go idle.
    #[tokio::test]
    async fn one_hundred_thousand_scopes_stay_bounded_and_idle_ones_go_away() {
        let limits = CacheLimits {
            tokens: 5_000,
            token_idle: Duration::from_millis(300),
            pending: 1_000,
            pending_ttl: Duration::from_millis(300),
            ..CacheLimits::default()
        };
        let caches = Caches::new(limits);
        let now = Utc::now();
        let shared = token(now);
        for i in 0..100_000u32 {
            let key = ScopeKey::new(&format!("{i:064x}"));
            caches.tokens.insert(key.clone(), shared.clone());
            caches.cooldowns.insert(
                key.clone(),
                Cooldown {
                    until: now,
                    retry_after: None,
                },
            );
            assert!(caches.claim_refresh(&key));
            caches.flights.insert(key, shared.clone()).await;
        }
        caches.flights.run_pending_tasks().await;
        assert!(count(&caches, CacheName::Tokens) <= limits.tokens);
        for name in [
            CacheName::Cooldowns,
            CacheName::Refreshing,
            CacheName::Flights,
        ] {
            assert!(count(&caches, name) <= limits.pending, "{name}");
        }
        // Idle: nothing touches them any more. Poll (never a fixed sleep) until they are gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            caches.flights.run_pending_tasks().await;
            let left: u64 = caches.sizes().iter().map(|(_, n)| n).sum();
            if left == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{left} entries outlived their idle time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn debug_shows_neither_the_token_nor_its_rendered_body() {
        let t = token(Utc::now());
        t.rendered
            .set(bytes::Bytes::from_static(
                b"{\"token\":\"ghs_rendered_secret\"}",
            ))
            .unwrap();
        let debug = format!("{t:?}");
        assert!(
            !debug.contains("ghs_rendered_secret") && !debug.contains("\"t\""),
            "{debug}"
        );
    }

    #[test]
    fn a_refresh_is_claimed_once_until_released() {
        let caches = Caches::new(CacheLimits::default());
        let key = ScopeKey::new("abc");
        assert!(caches.claim_refresh(&key));
        assert!(!caches.claim_refresh(&key));
        caches.release_refresh(&key);
        assert!(caches.claim_refresh(&key));
    }

    #[test]
    fn fresh_and_servable_follow_the_floor() {
        let now = Utc::now();
        let t = token(now);
        let floor = crate::Freshness {
            floor: chrono::Duration::minutes(15),
            renewal: crate::provider::Renewal::Mint,
        };
        assert!(t.fresh(now, floor));
        // 60 min life, 15 floor: refresh ahead by min(5, 22.5) = 5 minutes before the floor.
        assert!(t.fresh(now + chrono::Duration::minutes(40), floor));
        assert!(!t.fresh(now + chrono::Duration::minutes(41), floor));
        assert!(t.servable(now + chrono::Duration::minutes(45), floor));
        assert!(!t.servable(now + chrono::Duration::minutes(46), floor));
    }
}
