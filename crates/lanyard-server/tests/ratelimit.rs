//! The rate limiter over Redis: exact under concurrency, and failing open when Redis is down.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lanyard_core::SystemClock;
use lanyard_server::config::{Config, Flags};
use lanyard_server::metrics::Metrics;
use lanyard_server::ratelimit::{Decision, LimitKey, RateLimiter};
use lanyard_server::redis_conn::RedisHandle;

fn redis(url: &str) -> Arc<RedisHandle> {
    let env = BTreeMap::from([("LANYARD_REDIS_URL".to_string(), url.to_string())]);
    let config = Config::load(&Flags::default(), &env).unwrap().config;
    Arc::new(RedisHandle::new(config.redis_url.unwrap()).unwrap())
}

#[tokio::test]
async fn exactly_the_cap_passes_under_concurrent_calls_on_redis() {
    let Some(url) = lanyard_testkit::redis_under_test() else {
        eprintln!("skipped: set TEST_REDIS_URL to run the Redis limiter test");
        return;
    };
    let metrics = Arc::new(Metrics::default());
    let limiter = Arc::new(RateLimiter::new(
        "test",
        10,
        Duration::from_secs(3600),
        Arc::new(SystemClock),
        Some(redis(&url)),
        metrics.broker.rate_limit_fail_open.clone(),
    ));
    let key = uuid::Uuid::new_v4().simple().to_string();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let limiter = limiter.clone();
        let key = key.clone();
        tasks.spawn(async move { limiter.check(LimitKey::SecretHash(&key)).await });
    }
    let mut allowed = 0;
    while let Some(d) = tasks.join_next().await {
        match d.unwrap() {
            Decision::Allowed => allowed += 1,
            Decision::Limited { retry_after } => assert!(retry_after > 3500),
        }
    }
    assert_eq!(allowed, 10);
    // A second limiter (another replica) shares the window.
    let replica = RateLimiter::new(
        "test",
        10,
        Duration::from_secs(3600),
        Arc::new(SystemClock),
        Some(redis(&url)),
        metrics.broker.rate_limit_fail_open.clone(),
    );
    assert!(matches!(
        replica.check(LimitKey::SecretHash(&key)).await,
        Decision::Limited { .. }
    ));
    assert!(!metrics
        .encode()
        .contains("lanyard_rate_limit_fail_open_total 1"));
}

#[tokio::test]
async fn an_unreachable_redis_fails_open_and_is_counted() {
    let metrics = Arc::new(Metrics::default());
    let limiter = RateLimiter::new(
        "test",
        1,
        Duration::from_secs(3600),
        Arc::new(SystemClock),
        Some(redis("redis://127.0.0.1:1")),
        metrics.broker.rate_limit_fail_open.clone(),
    );
    for _ in 0..3 {
        assert_eq!(
            limiter.check(LimitKey::SecretHash("k")).await,
            Decision::Allowed
        );
    }
    assert!(
        metrics
            .encode()
            .contains("lanyard_rate_limit_fail_open_total 3"),
        "{}",
        metrics.encode()
    );
}
