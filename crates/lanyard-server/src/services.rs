//! [`Services`]: the one value that HTTP handlers, CLI commands and workers all call through.
//! It is built once, from the configuration, with everything the domain needs.

use std::sync::Arc;

use anyhow::Context;
use lanyard_core::Clock;
use lanyard_store::{Dialect, Store};

use crate::broker::{
    Broker, BrokerParts, CacheLimits, GithubHosts, LOCAL_SESSION_TTL, SHARED_SESSION_TTL,
};
use crate::config::{check_encryption_key, Config};
use crate::crypto::Sealer;
use crate::jwt::JwtKeys;
use crate::metrics::{CacheName, Metrics};
use crate::ratelimit::RateLimiter;
use crate::redis_conn::RedisHandle;
use crate::secrets::ServerSecrets;

/// e2e account calls (create and reap together) allowed per token per hour.
pub const E2E_RATE_LIMIT: u32 = 120;

#[derive(Debug, Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    public_url: Arc<str>,
    store: Store,
    redis: Option<Arc<RedisHandle>>,
    jwt: JwtKeys,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    hosts: Arc<GithubHosts>,
    broker: Broker,
    e2e_limiter: RateLimiter,
}

/// Creates the data dir, private to this user, if it is missing.
pub fn ensure_data_dir(config: &Config) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))
}

/// Opens the store and applies migrations (idempotent).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    ensure_data_dir(config)?;
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database at {}", config.database_url))?;
    let applied = store.migrate().await.context("cannot apply migrations")?;
    tracing::info!(
        backend = store.dialect().as_str(),
        applied,
        "database ready"
    );
    Ok(store)
}

impl Services {
    /// Everything from the configuration: secrets, the migrated database, Redis (connected
    /// lazily), the GitHub hosts. `public_url` is the JWT audience.
    pub async fn open(
        config: Config,
        public_url: String,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        ensure_data_dir(&config)?;
        let secrets = crate::secrets::resolve(&config)?;
        let store = open_store(&config).await?;
        let redis = config
            .redis_url
            .clone()
            .map(RedisHandle::new)
            .transpose()
            .context("invalid Redis URL")?;
        Self::assemble(config, public_url, store, redis, &secrets, clock)
    }

    /// Builds the services around an open store.
    pub fn assemble(
        config: Config,
        public_url: String,
        store: Store,
        redis: Option<RedisHandle>,
        secrets: &ServerSecrets,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let jwt = JwtKeys::new(&secrets.jwt_secret, &public_url);
        let sealer = Sealer::new(&check_encryption_key(
            secrets.encryption_key.expose_secret(),
        )?);
        let metrics = Arc::new(Metrics::default());
        let redis = redis.map(Arc::new);
        let hosts = Arc::new(GithubHosts::from_config(&config.github, clock.clone())?);
        let broker = Broker::new(BrokerParts {
            store: store.clone(),
            hosts: hosts.clone(),
            sealer: sealer.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            redis: redis.clone(),
            floor: config.token_min_remaining,
            limits: CacheLimits {
                // SQLite is one server process: every change to a session goes through it.
                session_ttl: match store.dialect() {
                    Dialect::Sqlite => LOCAL_SESSION_TTL,
                    Dialect::Postgres => SHARED_SESSION_TTL,
                },
                ..CacheLimits::default()
            },
        });
        let e2e_limiter = RateLimiter::new(
            "e2e",
            E2E_RATE_LIMIT,
            std::time::Duration::from_secs(3600),
            clock.clone(),
            redis.clone(),
            metrics.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                public_url: public_url.into(),
                store,
                redis,
                jwt,
                sealer,
                clock,
                metrics,
                hosts,
                broker,
                e2e_limiter,
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn public_url(&self) -> &Arc<str> {
        &self.inner.public_url
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn redis(&self) -> Option<&RedisHandle> {
        self.inner.redis.as_deref()
    }

    pub fn jwt(&self) -> &JwtKeys {
        &self.inner.jwt
    }

    pub fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn hosts(&self) -> &GithubHosts {
        &self.inner.hosts
    }

    pub fn broker(&self) -> &Broker {
        &self.inner.broker
    }

    pub fn e2e_limiter(&self) -> &RateLimiter {
        &self.inner.e2e_limiter
    }

    /// Brings the cache-size gauges up to date (before a scrape).
    pub fn publish_gauges(&self) {
        self.inner.broker.publish_cache_sizes();
        self.inner
            .metrics
            .set_cache_entries(CacheName::RateLimits, self.inner.e2e_limiter.tracked_keys());
    }
}
