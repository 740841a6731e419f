//! [`Services`]: the one value that HTTP handlers, CLI commands and workers all call through.
//! It is built once, from the configuration, with everything the domain needs.

use std::sync::Arc;

use anyhow::Context;
use lanyard_core::{Clock, CONNECTION_ATTEMPTS_PER_HOUR};
use lanyard_store::Store;

use crate::broker::{Broker, BrokerParts, CacheLimits};
use crate::config::{check_encryption_key, Config};
use crate::crypto::{Sealer, Signer};
use crate::hosts::GithubHosts;
use crate::jwt::JwtKeys;
use crate::mailer::Mailer;
use crate::metrics::{CacheName, Metrics};
use crate::ratelimit::RateLimiter;
use crate::redis_conn::RedisHandle;
use crate::secrets::ServerSecrets;

/// e2e account calls (create and reap together) allowed per token per hour.
pub const E2E_RATE_LIMIT: u32 = 120;

/// The rate limits, each a sliding window shared across replicas through Redis when configured.
#[derive(Debug)]
pub struct Limiters {
    /// e2e account calls per token per hour.
    pub e2e: RateLimiter,
    /// Upstream mints per team per hour (the tier's `mints_per_hour`).
    pub mints: Arc<RateLimiter>,
    /// Session creations per team per minute (`Tier::sessions_per_minute`).
    pub sessions: RateLimiter,
    /// Connection attempts per team per hour.
    pub connections: RateLimiter,
}

impl Limiters {
    fn new(
        clock: &Arc<dyn Clock>,
        redis: &Option<Arc<RedisHandle>>,
        metrics: &Arc<Metrics>,
    ) -> Self {
        let limiter = |name, limit, window| {
            RateLimiter::new(
                name,
                limit,
                window,
                clock.clone(),
                redis.clone(),
                metrics.broker.rate_limit_fail_open.clone(),
            )
        };
        let hour = std::time::Duration::from_secs(3600);
        Self {
            e2e: limiter("e2e", E2E_RATE_LIMIT, hour),
            mints: Arc::new(limiter("mints", 60, hour)),
            sessions: limiter("sessions", 10, std::time::Duration::from_secs(60)),
            connections: limiter("connections", CONNECTION_ATTEMPTS_PER_HOUR, hour),
        }
    }

    fn tracked_keys(&self) -> u64 {
        self.e2e.tracked_keys()
            + self.mints.tracked_keys()
            + self.sessions.tracked_keys()
            + self.connections.tracked_keys()
    }
}

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
    state_signer: Signer,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    hosts: Arc<GithubHosts>,
    broker: Broker,
    limiters: Limiters,
    mailer: Mailer,
    /// This process's name in the workers' leases.
    replica: Arc<str>,
}

/// What Lanyard itself keeps in a data dir: a directory holding only these (or nothing) is
/// Lanyard's own, and may be tightened.
const DATA_DIR_ENTRIES: &[&str] = &["jwt_secret", "encryption_key", "lanyard.db"];

/// What `serve` makes of an existing data dir, decided without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataDir {
    /// Does not exist yet: `serve` creates it, 0700.
    Missing,
    /// Open to nobody else; the mode.
    Private(u32),
    /// Open to others, but this user's and holding only Lanyard's files: `serve` tightens it.
    Tightenable(u32),
    /// Open to others and not Lanyard's to tighten: `serve` stops, saying why.
    Refused(String),
}

/// Inspects the data dir as [`ensure_data_dir`] would (`lanyard doctor` shares it).
pub fn inspect_data_dir(dir: &std::path::Path) -> anyhow::Result<DataDir> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DataDir::Missing),
        Err(e) => anyhow::bail!("cannot inspect the data dir {}: {e}", dir.display()),
    };
    anyhow::ensure!(
        meta.is_dir(),
        "the data dir {} is not a directory",
        dir.display()
    );
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(DataDir::Private(mode));
    }
    let refuse = |why: &str| {
        Ok(DataDir::Refused(format!(
            "the data dir {} is open to others (mode {mode:04o}) and {why}; point LANYARD_DATA_DIR at a directory of Lanyard's own, or chmod 700 it",
            dir.display()
        )))
    };
    if mode & 0o1000 != 0 {
        return refuse("is a shared (sticky) directory");
    }
    let me = lanyard_core::file_mode::process_identity().map(|me| me.uid);
    if me.is_some_and(|uid| uid != meta.uid()) {
        return refuse("belongs to another user");
    }
    let foreign = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list the data dir {}", dir.display()))?
        .flatten()
        .any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            !DATA_DIR_ENTRIES
                .iter()
                .any(|own| name == *own || name.starts_with(&format!("{own}-")))
        });
    if foreign {
        return refuse("holds files Lanyard did not create");
    }
    Ok(DataDir::Tightenable(mode))
}

/// Creates the data dir, private to this user, if it is missing. An existing one that others may
/// enter is tightened to 0700 when it is this user's and holds only Lanyard's files; otherwise
/// start-up stops saying why (Lanyard never chmods a shared or someone else's directory).
pub fn ensure_data_dir(config: &Config) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = &config.data_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data dir {}", dir.display()))?;
    match inspect_data_dir(dir)? {
        DataDir::Missing | DataDir::Private(_) => Ok(()),
        DataDir::Refused(why) => Err(anyhow::anyhow!(why)),
        DataDir::Tightenable(mode) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(
                || format!("the data dir {} is open to others (mode {mode:04o}) and cannot be tightened to 0700", dir.display()),
            )?;
            tracing::warn!(dir = %dir.display(), was = format!("{mode:04o}"), "the data dir was open to others; tightened it to 0700");
            Ok(())
        }
    }
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
        let state_signer = Signer::derive(&secrets.jwt_secret, "install-state");
        let metrics = Arc::new(Metrics::default());
        let redis = redis.map(Arc::new);
        let hosts = Arc::new(GithubHosts::from_config(&config.github, clock.clone())?);
        let limiters = Limiters::new(&clock, &redis, &metrics);
        let providers = hosts.providers(&sealer, clock.clone(), &metrics.broker.github_mints);
        let broker = Broker::new(BrokerParts {
            store: store.clone(),
            providers: Arc::new(providers),
            sealer: sealer.clone(),
            clock: clock.clone(),
            metrics: metrics.broker.clone(),
            redis: redis.clone(),
            floor: config.token_min_remaining,
            limits: CacheLimits::default(),
            mint_limiter: limiters.mints.clone(),
        });
        let mailer = Mailer::new(config.smtp.as_ref())?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                public_url: public_url.into(),
                store,
                redis,
                jwt,
                sealer,
                state_signer,
                clock,
                metrics,
                hosts,
                broker,
                limiters,
                mailer,
                replica: uuid::Uuid::new_v4().to_string().into(),
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

    /// Signs the installation flow's states.
    pub fn state_signer(&self) -> &Signer {
        &self.inner.state_signer
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

    pub fn limiters(&self) -> &Limiters {
        &self.inner.limiters
    }

    pub fn mailer(&self) -> &Mailer {
        &self.inner.mailer
    }

    /// This process's name in the workers' leases: unique per `Services`.
    pub fn replica(&self) -> &str {
        &self.inner.replica
    }

    /// Brings the cache-size gauges up to date (before a scrape).
    pub fn publish_gauges(&self) {
        self.inner.broker.publish_cache_sizes();
        self.inner
            .metrics
            .broker
            .set_cache_entries(CacheName::RateLimits, self.inner.limiters.tracked_keys());
    }
}
