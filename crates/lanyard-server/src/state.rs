//! Shared state handed to every handler.

use std::sync::Arc;

use lanyard_core::Clock;
use lanyard_store::Store;

use crate::config::Config;
use crate::jwt::JwtKeys;
use crate::metrics::Metrics;
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
    redis: Option<RedisHandle>,
    jwt: JwtKeys,
    secrets: ServerSecrets,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
}

impl AppState {
    pub fn new(
        config: Config,
        public_url: String,
        store: Store,
        redis: Option<RedisHandle>,
        secrets: ServerSecrets,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let jwt = JwtKeys::new(&secrets.jwt_secret, &public_url);
        Self {
            inner: Arc::new(Inner {
                config,
                public_url: public_url.into(),
                store,
                redis,
                jwt,
                secrets,
                clock,
                metrics: Metrics::default(),
            }),
        }
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
        self.inner.redis.as_ref()
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
}
