//! A sliding-window rate limiter, shared across replicas through Redis when it is configured and
//! kept in-process otherwise. Keys are hashed callers (never a secret in clear). A Redis failure
//! fails open: the call is allowed, counted in `lanyard_rate_limit_fail_open_total`, and logged.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lanyard_core::Clock;
use moka::sync::Cache;
use uuid::Uuid;

use crate::redis_conn::RedisHandle;
use prometheus_client::metrics::counter::Counter;

/// Whom a limit counts. Typed, so no two call sites spell a key differently (the text it makes
/// is the key in Redis, shared by every replica).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKey<'a> {
    /// A team, by id: `team:ID`.
    Team(Uuid),
    /// The holder of a secret, by the secret's SHA-256 in hex: never the secret itself.
    SecretHash(&'a str),
}

impl std::fmt::Display for LimitKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitKey::Team(id) => write!(f, "team:{id}"),
            LimitKey::SecretHash(hash) => f.write_str(hash),
        }
    }
}

/// The verdict for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit; retry after this many seconds.
    Limited {
        retry_after: u32,
    },
}

#[derive(Debug)]
pub struct RateLimiter {
    name: &'static str,
    limit: u32,
    window: Duration,
    clock: Arc<dyn Clock>,
    redis: Option<Arc<RedisHandle>>,
    /// `lanyard_rate_limit_fail_open_total`.
    fail_open: Counter,
    /// Per key, the calls inside the window (at most `limit` of them). Keys idle for a whole
    /// window are dropped, and at most [`LOCAL_KEYS`] are kept.
    local: Cache<String, Arc<Mutex<VecDeque<DateTime<Utc>>>>>,
}

/// The most callers the in-process limiter tracks at once.
pub const LOCAL_KEYS: u64 = 100_000;

/// Atomically: drop entries older than the window, and add this call if under the limit.
/// Returns 0 when allowed, else the milliseconds until the oldest entry leaves the window.
const SLIDING_WINDOW: &str = r"
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
";

/// Like [`SLIDING_WINDOW`], without counting a call: whether one would be allowed now.
const PEEK: &str = r"
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
";

impl RateLimiter {
    pub fn new(
        name: &'static str,
        limit: u32,
        window: Duration,
        clock: Arc<dyn Clock>,
        redis: Option<Arc<RedisHandle>>,
        fail_open: Counter,
    ) -> Self {
        Self {
            name,
            limit,
            window,
            clock,
            redis,
            fail_open,
            local: Cache::builder()
                .max_capacity(LOCAL_KEYS)
                .time_to_idle(window)
                .build(),
        }
    }

    /// How many callers the in-process limiter is tracking.
    pub fn tracked_keys(&self) -> u64 {
        self.local.run_pending_tasks();
        self.local.entry_count()
    }

    /// Counts one call for `key` and says whether it may proceed.
    pub async fn check(&self, key: LimitKey<'_>) -> Decision {
        self.check_limit(key, self.limit).await
    }

    /// Like [`Self::check`], with a limit for this key (a team's tier sets its own).
    pub async fn check_limit(&self, key: LimitKey<'_>, limit: u32) -> Decision {
        self.decide(&key.to_string(), limit, true).await
    }

    /// Whether a call for `key` would be allowed now, without counting one: for work that is
    /// counted only if it happens (a mint that another replica's token may make unneeded).
    pub async fn peek_limit(&self, key: LimitKey<'_>, limit: u32) -> Decision {
        self.decide(&key.to_string(), limit, false).await
    }

    /// Through Redis when configured (failing open when it cannot answer), else in-process;
    /// `count` says whether this call is counted.
    async fn decide(&self, key: &str, limit: u32, count: bool) -> Decision {
        if let Some(redis) = &self.redis {
            match self.check_redis(redis, key, limit, count).await {
                Ok(decision) => return decision,
                Err(e) => {
                    self.fail_open.inc();
                    tracing::warn!(limiter = self.name, error = %e, "rate limiter cannot reach Redis; failing open");
                    return Decision::Allowed;
                }
            }
        }
        self.check_local(key, limit, count)
    }

    async fn check_redis(
        &self,
        redis: &RedisHandle,
        key: &str,
        limit: u32,
        count: bool,
    ) -> anyhow::Result<Decision> {
        let mut conn = redis.connection().await?;
        let now = self.clock.now().timestamp_millis();
        let window = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        let script = redis::Script::new(if count { SLIDING_WINDOW } else { PEEK });
        let mut call = script.key(format!("lanyard:ratelimit:{}:{key}", self.name));
        call.arg(now).arg(window).arg(limit);
        if count {
            call.arg(Uuid::new_v4().simple().to_string());
        }
        let wait_ms: i64 = call.invoke_async(&mut conn).await?;
        Ok(if wait_ms == 0 {
            Decision::Allowed
        } else {
            limited(wait_ms)
        })
    }

    fn check_local(&self, key: &str, limit: u32, count: bool) -> Decision {
        let now = self.clock.now();
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        let entry = self.local.get_with_by_ref(key, Arc::default);
        let mut hits = entry.lock().unwrap_or_else(|e| e.into_inner());
        while hits.front().is_some_and(|t| *t <= now - window) {
            hits.pop_front();
        }
        if hits.len() < limit as usize {
            if count {
                hits.push_back(now);
            }
            return Decision::Allowed;
        }
        let oldest = *hits.front().expect("full window has entries");
        limited((oldest + window - now).num_milliseconds())
    }
}

fn limited(wait_ms: i64) -> Decision {
    let seconds = (wait_ms.max(1) + 999) / 1000;
    Decision::Limited {
        retry_after: u32::try_from(seconds).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanyard_core::ManualClock;

    /// A peek counts nothing: the mint path checks the allowance before it waits, and counts it
    /// only for a mint it makes.
    #[tokio::test]
    async fn a_peek_counts_nothing() {
        let rl = RateLimiter::new(
            "t",
            1,
            Duration::from_secs(60),
            Arc::new(ManualClock::starting_now()),
            None,
            Counter::default(),
        );
        let team = LimitKey::Team(Uuid::new_v4());
        for _ in 0..5 {
            assert_eq!(rl.peek_limit(team, 1).await, Decision::Allowed);
        }
        assert_eq!(rl.check_limit(team, 1).await, Decision::Allowed);
        assert!(matches!(
            rl.peek_limit(team, 1).await,
            Decision::Limited { .. }
        ));
    }

    #[tokio::test]
    async fn in_process_window_slides() {
        let clock = ManualClock::starting_now();
        let rl = RateLimiter::new(
            "t",
            3,
            Duration::from_secs(60),
            Arc::new(clock.clone()),
            None,
            Counter::default(),
        );
        for _ in 0..3 {
            assert_eq!(rl.check(LimitKey::SecretHash("k")).await, Decision::Allowed);
        }
        assert_eq!(
            rl.check(LimitKey::SecretHash("k")).await,
            Decision::Limited { retry_after: 60 }
        );
        assert_eq!(
            rl.check(LimitKey::SecretHash("other")).await,
            Decision::Allowed,
            "keys are independent"
        );
        clock.advance(chrono::Duration::seconds(59));
        assert_eq!(
            rl.check(LimitKey::SecretHash("k")).await,
            Decision::Limited { retry_after: 1 }
        );
        clock.advance(chrono::Duration::seconds(1));
        assert_eq!(
            rl.check(LimitKey::SecretHash("k")).await,
            Decision::Allowed,
            "the first calls left the window"
        );
        assert_eq!(rl.check(LimitKey::SecretHash("k")).await, Decision::Allowed);
        assert_eq!(rl.check(LimitKey::SecretHash("k")).await, Decision::Allowed);
        assert_eq!(
            rl.check(LimitKey::SecretHash("k")).await,
            Decision::Limited { retry_after: 60 }
        );
    }

    #[tokio::test]
    async fn callers_that_go_quiet_are_forgotten() {
        let rl = RateLimiter::new(
            "t",
            3,
            // Long enough that the 1,000 calls below all land before the first goes idle, even
            // on a loaded machine.
            Duration::from_secs(2),
            Arc::new(ManualClock::starting_now()),
            None,
            Counter::default(),
        );
        for i in 0..1_000 {
            rl.check(LimitKey::SecretHash(&format!("caller-{i}"))).await;
        }
        assert_eq!(rl.tracked_keys(), 1_000);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while rl.tracked_keys() > 0 {
            assert!(std::time::Instant::now() < deadline, "idle callers stayed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
