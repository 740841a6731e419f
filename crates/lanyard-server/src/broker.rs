//! The credential broker: serves each session's GitHub credentials with a freshness guarantee,
//! minting upstream O(1) times per scope per token lifetime.
//!
//! Lookup order for an App token: the in-process cache, then (one caller per scope at a time) the
//! database, then a mint under a cross-replica lock (Redis when configured, else a Postgres
//! advisory lock). A token is refreshed ahead of time, so that while GitHub is down the cached
//! token keeps being served for as long as it still meets `token_min_remaining`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use lanyard_core::secret::PresentedSecret;
use lanyard_core::Clock;
use lanyard_github::{AppCredentials, GithubError, GithubHost, Revocation};
use lanyard_store::{
    ConnectionKind, ConnectionRecord, RunnerSession, ScopeRecord, Store, StoreError, TokenRecord,
};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Config;
use crate::crypto::Sealer;
use crate::metrics::{Metrics, MintLabels, ResultLabel, SourceLabel};
use crate::redis_conn::RedisHandle;

/// How long a runner token's session stays cached in-process. A stop on this replica takes effect
/// at once; on another replica within this delay.
const SESSION_CACHE_TTL: Duration = Duration::from_secs(2);
/// Tokens are replaced at most this long before they would stop meeting the floor.
const MAX_REFRESH_AHEAD: chrono::Duration = chrono::Duration::minutes(5);
/// After a failed mint, callers with a servable cached token do not retry upstream for this long.
const MINT_COOLDOWN: chrono::Duration = chrono::Duration::seconds(5);
/// How long a cross-replica mint lock is held at most (Redis), and how long waiters wait.
const MINT_LOCK_TTL: Duration = Duration::from_secs(15);

/// The configured GitHub hosts, by host name.
#[derive(Debug, Default)]
pub struct GithubHosts {
    hosts: HashMap<String, Arc<GithubHost>>,
}

impl GithubHosts {
    /// Builds a client per configured host, reading each App's private key.
    pub fn from_config(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let mut hosts = HashMap::new();
        for h in &config.github {
            let app = match (h.app_id, &h.private_key_file) {
                (Some(app_id), Some(path)) => {
                    let pem = std::fs::read(path).with_context(|| {
                        format!(
                            "cannot read the GitHub App private key {} for {}",
                            path.display(),
                            h.host
                        )
                    })?;
                    Some(AppCredentials::from_pem(app_id, &pem).with_context(|| {
                        format!("GitHub App private key {} for {}", path.display(), h.host)
                    })?)
                }
                (None, None) => None,
                _ => anyhow::bail!(
                    "GitHub host {} needs both app_id and private_key_file, or neither (PATs only)",
                    h.host
                ),
            };
            let client = GithubHost::new(&h.host, &h.api_url, app, clock.clone())?;
            hosts.insert(h.host.clone(), Arc::new(client));
        }
        Ok(Self { hosts })
    }

    pub fn get(&self, host: &str) -> Option<&Arc<GithubHost>> {
        self.hosts.get(host)
    }
}

/// What the broker hands out: shared, so serving a cached token copies nothing.
#[derive(Debug, Clone)]
pub struct Served {
    pub source: ConnectionKind,
    pub credential: Arc<CachedToken>,
}

impl Served {
    /// The true expiry; only App tokens have one.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        (self.source == ConnectionKind::GithubApp).then_some(self.credential.expires_at)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("GitHub is unavailable and no cached token meets the guarantee")]
    Unavailable { retry_after: Option<u64> },
    #[error("GitHub refused the mint: {0}")]
    Rejected(GithubError),
    #[error("the connection for {owner} on {host} was removed")]
    NotConnected { host: String, owner: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

/// A credential as served: the token, its life, and its scope.
#[derive(Debug, Clone)]
pub struct CachedToken {
    pub token: SecretString,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub repositories: Vec<String>,
    pub permissions: BTreeMap<String, String>,
}

impl CachedToken {
    fn remaining(&self, now: DateTime<Utc>) -> chrono::Duration {
        self.expires_at - now
    }

    /// Meets the floor: may be served.
    fn servable(&self, now: DateTime<Utc>, floor: chrono::Duration) -> bool {
        self.remaining(now) >= floor
    }

    /// Meets the floor with time to spare: served without trying to refresh.
    fn fresh(&self, now: DateTime<Utc>, floor: chrono::Duration) -> bool {
        let life = self.expires_at - self.created_at;
        let spare = ((life - floor) / 2).clamp(chrono::Duration::zero(), MAX_REFRESH_AHEAD);
        self.remaining(now) >= floor + spare
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheResult {
    Hit,
    Miss,
    Coalesced,
}

impl CacheResult {
    const fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
            CacheResult::Coalesced => "coalesced",
        }
    }
}

type Cooldown = (DateTime<Utc>, Option<u64>);

#[derive(Debug)]
struct SessionEntry {
    session: Arc<RunnerSession>,
    loaded: Instant,
}

pub struct Broker {
    store: Store,
    hosts: GithubHosts,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    redis: Option<Arc<RedisHandle>>,
    floor: chrono::Duration,
    tokens: Mutex<HashMap<String, Arc<CachedToken>>>,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per scope: no upstream retry before this instant, and GitHub's Retry-After if it gave one.
    cooldown: Mutex<HashMap<String, Cooldown>>,
    sessions: Mutex<HashMap<String, SessionEntry>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("hosts", &self.hosts)
            .field("floor", &self.floor)
            .finish_non_exhaustive()
    }
}

/// The cache key of a scope: team, host, installation (or PAT connection), repositories and
/// permissions, hashed so it can key a map, a row and a lock.
pub fn cache_key(
    team_id: Uuid,
    host: &str,
    connection: &ConnectionRecord,
    repositories: &[String],
    permissions: &BTreeMap<String, String>,
) -> String {
    let mut repos = repositories.to_vec();
    repos.sort();
    repos.dedup();
    let perms: Vec<String> = permissions
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let credential = match connection.installation_id {
        Some(id) => format!("installation:{id}"),
        None => format!("pat:{}", connection.id),
    };
    let text = format!(
        "{team_id}\n{host}\n{credential}\n{}\n{}",
        repos.join(","),
        perms.join(",")
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn lock_id(cache_key: &str) -> i64 {
    let prefix = u64::from_str_radix(&cache_key[..16], 16).unwrap_or(0);
    i64::from_ne_bytes(prefix.to_ne_bytes())
}

fn token_aad(id: Uuid) -> String {
    format!("token:{id}")
}

pub fn pat_aad(connection_id: Uuid) -> String {
    format!("pat:{connection_id}")
}

impl Broker {
    pub fn new(
        store: Store,
        hosts: GithubHosts,
        sealer: Sealer,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        redis: Option<Arc<RedisHandle>>,
        floor: Duration,
    ) -> Self {
        Self {
            store,
            hosts,
            sealer,
            clock,
            metrics,
            redis,
            floor: chrono::Duration::from_std(floor).unwrap_or(chrono::Duration::minutes(15)),
            tokens: Mutex::default(),
            flights: Mutex::default(),
            cooldown: Mutex::default(),
            sessions: Mutex::default(),
        }
    }

    pub fn hosts(&self) -> &GithubHosts {
        &self.hosts
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The session behind a presented runner token, if the token is valid. Cached briefly.
    pub async fn runner_session(
        &self,
        presented: &PresentedSecret,
    ) -> Result<Option<Arc<RunnerSession>>, StoreError> {
        let cached = {
            let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions
                .get(&presented.lookup)
                .filter(|e| e.loaded.elapsed() < SESSION_CACHE_TTL)
                .map(|e| e.session.clone())
        };
        let session = match cached {
            Some(s) => s,
            None => {
                let Some(loaded) = self.store.runner_session(&presented.lookup).await? else {
                    return Ok(None);
                };
                let loaded = Arc::new(loaded);
                let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
                if sessions.len() > 200_000 {
                    sessions.retain(|_, e| e.loaded.elapsed() < SESSION_CACHE_TTL);
                }
                sessions.insert(
                    presented.lookup.clone(),
                    SessionEntry {
                        session: loaded.clone(),
                        loaded: Instant::now(),
                    },
                );
                loaded
            }
        };
        Ok(presented.matches(&session.runner_hash).then_some(session))
    }

    /// Forgets a session's cached state (after a stop).
    pub fn forget_session(&self, session_id: Uuid) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, e| e.session.session.id != session_id);
    }

    /// The credential for one scope of a session.
    pub async fn credential(
        &self,
        session: &RunnerSession,
        scope: &ScopeRecord,
    ) -> Result<Served, BrokerError> {
        let Some(connection) = &scope.connection else {
            return Err(BrokerError::NotConnected {
                host: scope.host.clone(),
                owner: scope.owner.clone(),
            });
        };
        let served = match (connection.kind, connection.installation_id) {
            (ConnectionKind::Pat, _) => {
                let sealed = connection
                    .pat_ciphertext
                    .as_deref()
                    .ok_or_else(|| BrokerError::Internal("PAT connection without a PAT".into()))?;
                let token = self
                    .sealer
                    .open(sealed, &pat_aad(connection.id))
                    .map_err(|e| BrokerError::Internal(e.to_string()))?;
                let now = self.clock.now();
                Served {
                    source: ConnectionKind::Pat,
                    credential: Arc::new(CachedToken {
                        token,
                        created_at: now,
                        expires_at: now,
                        repositories: scope.repositories.clone(),
                        permissions: BTreeMap::new(),
                    }),
                }
            }
            (ConnectionKind::GithubApp, Some(installation_id)) => {
                let credential = self.app_token(session, scope, installation_id).await?;
                Served {
                    source: ConnectionKind::GithubApp,
                    credential,
                }
            }
            (ConnectionKind::GithubApp, None) => {
                return Err(BrokerError::Internal(
                    "App connection without an installation".into(),
                ))
            }
        };
        self.metrics
            .credentials_served
            .get_or_create(&SourceLabel {
                source: served.source.as_str(),
            })
            .inc();
        Ok(served)
    }

    fn cached(&self, key: &str) -> Option<Arc<CachedToken>> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn remember(&self, key: &str, token: Arc<CachedToken>) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), token);
    }

    fn count(&self, result: CacheResult) {
        self.metrics
            .token_cache
            .get_or_create(&ResultLabel {
                result: result.as_str(),
            })
            .inc();
    }

    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    fn open_record(&self, record: &TokenRecord) -> Result<Arc<CachedToken>, BrokerError> {
        let token = self
            .sealer
            .open(&record.ciphertext, &token_aad(record.id))
            .map_err(|e| BrokerError::Internal(e.to_string()))?;
        Ok(Arc::new(CachedToken {
            token,
            created_at: record.created_at,
            expires_at: record.expires_at,
            repositories: record.repositories.clone(),
            permissions: record.permissions.clone(),
        }))
    }

    /// The newest stored token for the key, if it is fresh; otherwise keeps a servable one in
    /// `fallback`.
    async fn stored_fresh(
        &self,
        key: &str,
        fallback: &mut Option<Arc<CachedToken>>,
    ) -> Result<Option<Arc<CachedToken>>, BrokerError> {
        let Some(record) = self.store.latest_token(key).await? else {
            return Ok(None);
        };
        let token = self.open_record(&record)?;
        let now = self.clock.now();
        if token.fresh(now, self.floor) {
            self.remember(key, token.clone());
            return Ok(Some(token));
        }
        if token.servable(now, self.floor)
            && fallback
                .as_ref()
                .is_none_or(|f| f.expires_at < token.expires_at)
        {
            *fallback = Some(token);
        }
        Ok(None)
    }

    async fn app_token(
        &self,
        session: &RunnerSession,
        scope: &ScopeRecord,
        installation_id: i64,
    ) -> Result<Arc<CachedToken>, BrokerError> {
        let key = scope.cache_key.as_str();
        let mut fallback = self
            .cached(key)
            .filter(|c| c.servable(self.clock.now(), self.floor));
        if let Some(c) = &fallback {
            if c.fresh(self.clock.now(), self.floor) {
                self.count(CacheResult::Hit);
                return Ok(c.clone());
            }
        }
        let flight = self.flight(key);
        let (_guard, waited) = match flight.try_lock() {
            Ok(g) => (g, false),
            // Someone is already refreshing; a servable token needs no wait.
            Err(_) if fallback.is_some() => {
                self.count(CacheResult::Hit);
                return Ok(fallback.expect("checked"));
            }
            Err(_) => (flight.lock().await, true),
        };
        let waited_result = if waited {
            CacheResult::Coalesced
        } else {
            CacheResult::Hit
        };
        if let Some(c) = self
            .cached(key)
            .filter(|c| c.fresh(self.clock.now(), self.floor))
        {
            self.count(waited_result);
            return Ok(c);
        }
        if let Some(t) = self.stored_fresh(key, &mut fallback).await? {
            self.count(waited_result);
            return Ok(t);
        }
        let cooling = {
            let cooldown = self.cooldown.lock().unwrap_or_else(|e| e.into_inner());
            cooldown
                .get(key)
                .filter(|(until, _)| *until > self.clock.now())
                .map(|(_, r)| *r)
        };
        if let Some(retry_after) = cooling {
            return match fallback {
                Some(f) => {
                    self.count(CacheResult::Hit);
                    Ok(f)
                }
                None => Err(BrokerError::Unavailable { retry_after }),
            };
        }
        let lock = self.cross_replica_lock(key, &mut fallback).await?;
        let lock = match lock {
            CrossLock::AlreadyMinted(t) => {
                self.count(CacheResult::Coalesced);
                return Ok(t);
            }
            other => other,
        };
        let result = self.mint(session, scope, installation_id).await;
        lock.release(self.redis.as_deref(), key).await;
        match result {
            Ok(t) => {
                self.cooldown
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(key);
                self.count(CacheResult::Miss);
                Ok(t)
            }
            Err(e) => {
                let retry_after = e.retry_after();
                if matches!(e, GithubError::Unavailable { .. }) {
                    let until = self.clock.now() + MINT_COOLDOWN;
                    self.cooldown
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key.to_string(), (until, retry_after));
                }
                tracing::warn!(host = %scope.host, owner = %scope.owner, error = %e, served_cached = fallback.is_some(), "GitHub mint failed");
                match (fallback, e) {
                    (Some(f), _) => {
                        self.count(CacheResult::Hit);
                        Ok(f)
                    }
                    (None, rejected @ GithubError::Rejected { .. }) => {
                        Err(BrokerError::Rejected(rejected))
                    }
                    (None, GithubError::Unavailable { retry_after, .. }) => {
                        Err(BrokerError::Unavailable { retry_after })
                    }
                    (None, other) => Err(BrokerError::Internal(other.to_string())),
                }
            }
        }
    }

    async fn mint(
        &self,
        session: &RunnerSession,
        scope: &ScopeRecord,
        installation_id: i64,
    ) -> Result<Arc<CachedToken>, GithubError> {
        let host = self
            .hosts
            .get(&scope.host)
            .ok_or_else(|| GithubError::NoApp(scope.host.clone()))?;
        let permissions = session.session.permissions.clone();
        let team_id = session.session.team_id;
        let installation = u64::try_from(installation_id).unwrap_or_default();
        let outcome = host
            .mint(installation, &scope.repositories, &permissions)
            .await;
        let result = match &outcome {
            Ok(_) => "ok",
            Err(GithubError::Unavailable { .. }) => "unavailable",
            Err(_) => "rejected",
        };
        self.metrics
            .github_mints
            .get_or_create(&MintLabels {
                host: scope.host.clone(),
                result,
            })
            .inc();
        let minted = outcome?;
        let now = self.clock.now();
        let token = Arc::new(CachedToken {
            token: minted.token,
            created_at: now,
            expires_at: minted.expires_at,
            repositories: if minted.repositories.is_empty() {
                scope.repositories.clone()
            } else {
                minted.repositories
            },
            permissions: if minted.permissions.is_empty() {
                permissions
            } else {
                minted.permissions
            },
        });
        if !token.servable(now, self.floor) {
            tracing::error!(host = %scope.host, "GitHub minted a token that lives less than token_min_remaining; lower LANYARD_TOKEN_MIN_REMAINING");
            return Err(GithubError::Unavailable {
                status: None,
                retry_after: None,
                message: "minted token is shorter-lived than the configured floor".into(),
            });
        }
        let id = Uuid::new_v4();
        let record = TokenRecord {
            id,
            team_id,
            cache_key: scope.cache_key.clone(),
            host: scope.host.clone(),
            installation_id,
            ciphertext: self.sealer.seal(&token.token, &token_aad(id)),
            repositories: token.repositories.clone(),
            permissions: token.permissions.clone(),
            created_at: now,
            expires_at: token.expires_at,
        };
        if let Err(e) = self.store.insert_token(&record, "broker").await {
            // Still serve it: the mint happened. Revocation then relies on GitHub's expiry.
            tracing::error!(error = %e, "could not store a minted token");
        }
        self.remember(&scope.cache_key, token.clone());
        Ok(token)
    }

    async fn cross_replica_lock(
        &self,
        key: &str,
        fallback: &mut Option<Arc<CachedToken>>,
    ) -> Result<CrossLock, BrokerError> {
        if let Some(redis) = &self.redis {
            match redis_lock(redis, key).await {
                Ok(Some(id)) => {
                    if let Some(t) = self.stored_fresh(key, fallback).await? {
                        release_redis(redis, key, &id).await;
                        return Ok(CrossLock::AlreadyMinted(t));
                    }
                    return Ok(CrossLock::Redis(id));
                }
                Ok(None) => {
                    // Another replica holds the lock: wait for its token to appear.
                    let started = Instant::now();
                    while started.elapsed() < MINT_LOCK_TTL {
                        tokio::time::sleep(Duration::from_millis(25)).await;
                        if let Some(t) = self.stored_fresh(key, fallback).await? {
                            return Ok(CrossLock::AlreadyMinted(t));
                        }
                        if let Ok(Some(id)) = redis_lock(redis, key).await {
                            return Ok(CrossLock::Redis(id));
                        }
                    }
                    return Err(BrokerError::Unavailable {
                        retry_after: Some(1),
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "redis mint lock unavailable; using the database lock");
                }
            }
        }
        let lock = self.store.lock_scope(lock_id(key)).await?;
        if let Some(t) = self.stored_fresh(key, fallback).await? {
            return Ok(CrossLock::AlreadyMinted(t));
        }
        Ok(CrossLock::Database(lock))
    }

    /// Revokes claimed tokens at GitHub. Returns how many are now dead.
    pub async fn revoke(&self, tokens: Vec<TokenRecord>) -> usize {
        let mut dead = 0;
        for record in tokens {
            self.tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&record.cache_key);
            let result = match (
                self.hosts.get(&record.host),
                self.sealer.open(&record.ciphertext, &token_aad(record.id)),
            ) {
                (Some(host), Ok(token)) => match host.revoke(&token).await {
                    Ok(Revocation::Revoked) => "revoked",
                    Ok(Revocation::AlreadyDead) => "already_dead",
                    Err(e) => {
                        tracing::warn!(host = %record.host, error = %e, "token revocation failed; it dies at its expiry");
                        "error"
                    }
                },
                _ => "error",
            };
            if result != "error" {
                dead += 1;
            }
            self.metrics
                .revocations
                .get_or_create(&ResultLabel { result })
                .inc();
        }
        dead
    }
}

enum CrossLock {
    Database(lanyard_store::ScopeLock),
    Redis(String),
    AlreadyMinted(Arc<CachedToken>),
}

impl CrossLock {
    async fn release(self, redis: Option<&RedisHandle>, key: &str) {
        match (self, redis) {
            (CrossLock::Redis(id), Some(redis)) => release_redis(redis, key, &id).await,
            (CrossLock::Database(lock), _) => drop(lock),
            _ => {}
        }
    }
}

fn redis_lock_key(key: &str) -> String {
    format!("lanyard:mint-lock:{key}")
}

async fn redis_lock(redis: &RedisHandle, key: &str) -> Result<Option<String>, anyhow::Error> {
    let id = Uuid::new_v4().simple().to_string();
    let mut conn = redis.connection().await?;
    let set: Option<String> = redis::cmd("SET")
        .arg(redis_lock_key(key))
        .arg(&id)
        .arg("NX")
        .arg("PX")
        .arg(MINT_LOCK_TTL.as_millis() as u64)
        .query_async(&mut conn)
        .await?;
    Ok(set.map(|_| id))
}

async fn release_redis(redis: &RedisHandle, key: &str, id: &str) {
    const RELEASE: &str =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
    if let Ok(mut conn) = redis.connection().await {
        let _: Result<i64, _> = redis::Script::new(RELEASE)
            .key(redis_lock_key(key))
            .arg(id)
            .invoke_async(&mut conn)
            .await;
    }
}
