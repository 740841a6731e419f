//! Shared state handed to every handler.

use std::sync::Arc;

use lanyard_core::Clock;
use lanyard_store::Store;

use crate::broker::{Broker, GithubHosts};
use crate::config::{check_encryption_key, Config};
use crate::crypto::Sealer;
use crate::jwt::JwtKeys;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

/// e2e account calls (create and reap together) allowed per token per hour.
pub const E2E_RATE_LIMIT: u32 = 120;
use crate::redis_conn::RedisHandle;
use crate::secrets::ServerSecrets;

#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    public_url: Arc<str>,
    store: Store,
    redis: Option<Arc<RedisHandle>>,
    jwt: JwtKeys,
    secrets: ServerSecrets,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    broker: Broker,
    e2e_limiter: RateLimiter,
}

/// The key-derived sealer for secrets at rest.
pub fn sealer(secrets: &ServerSecrets) -> anyhow::Result<Sealer> {
    use secrecy::ExposeSecret;
    Ok(Sealer::new(&check_encryption_key(
        secrets.encryption_key.expose_secret(),
    )?))
}

impl AppState {
    pub fn new(
        config: Config,
        public_url: String,
        store: Store,
        redis: Option<RedisHandle>,
        secrets: ServerSecrets,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let jwt = JwtKeys::new(&secrets.jwt_secret, &public_url);
        let metrics = Arc::new(Metrics::default());
        let redis = redis.map(Arc::new);
        let hosts = GithubHosts::from_config(&config, clock.clone())?;
        let broker = Broker::new(
            store.clone(),
            hosts,
            sealer(&secrets)?,
            clock.clone(),
            metrics.clone(),
            redis.clone(),
            config.token_min_remaining,
        );
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
                secrets,
                clock,
                metrics,
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

    pub fn secrets(&self) -> &ServerSecrets {
        &self.inner.secrets
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn broker(&self) -> &Broker {
        &self.inner.broker
    }

    pub fn e2e_limiter(&self) -> &RateLimiter {
        &self.inner.e2e_limiter
    }
}
