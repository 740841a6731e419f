//! A provider scripted by the test, and a broker over it on a fresh database with one team and
//! its connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{Duration, SubsecRound, Utc};
use lanyard_broker::crypto::Sealer;
use lanyard_broker::metrics::{BrokerMetrics, CacheResult, CacheResultLabel, Label};
use lanyard_broker::provider::{
    Ask, Lifetime, Obtained, Pending, Provider, ProviderError, ProviderKind, Renewal, Revoked,
};
use lanyard_broker::ratelimit::RateLimiter;
use lanyard_broker::{
    refresh_aad, Broker, BrokerError, BrokerParts, CacheLimits, Providers, Served,
};
use lanyard_core::github::{Owner, PermissionSet, RepoName};
use lanyard_core::wire::CredentialSource;
use lanyard_core::{Actor, Clock, Host, ManualClock, TeamName, Tier};
use lanyard_store::testing::{databases_under_test, execute_script, uuid_literal};
use lanyard_store::{
    ConnectionKind, ConnectionRecord, ConnectionStatus, DatabaseUrl, NewScope, NewSession, NewTeam,
    RunnerSession, Store,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;
use uuid::Uuid;

pub const HOST: &str = "provider.test";

/// The refresh token a refresh provider's connection is made with.
pub const FIRST_REFRESH_TOKEN: &str = "refresh-0";

/// The key every world seals with.
pub const KEY: [u8; 32] = [7; 32];

/// The gate's permits: closing it takes them all.
pub const GATE: u32 = 1 << 20;

/// A provider that hands out numbered credentials living `life`, and does what the test says.
#[derive(Debug)]
pub struct Scripted {
    pub clock: Arc<ManualClock>,
    /// How long each credential handed over lives.
    pub life: Mutex<Duration>,
    pub renewal: Renewal,
    pub lifetime: Lifetime,
    /// How many obtains were asked for, and how many ran at once at most.
    pub obtained: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub most_in_flight: AtomicUsize,
    /// While closed, obtains wait here (so callers pile up).
    pub gate: Semaphore,
    /// When set, obtains fail as the provider being down.
    pub failing: std::sync::atomic::AtomicBool,
    pub revoked: Mutex<Vec<String>>,
    /// The installation of each connection it was handed, in order.
    pub seen: Mutex<Vec<Option<i64>>>,
    /// For a refresh provider: the one refresh token it takes now (as GitLab's, each works
    /// once: a refresh rotates it), and how many refreshes came with another (`invalid_grant`).
    pub refresh: Mutex<String>,
    pub invalid_grants: AtomicUsize,
}

impl Scripted {
    pub fn new(clock: &Arc<ManualClock>, renewal: Renewal, lifetime: Lifetime) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            life: Mutex::new(Duration::minutes(60)),
            renewal,
            lifetime,
            obtained: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            gate: Semaphore::new(GATE as usize),
            failing: false.into(),
            revoked: Mutex::default(),
            seen: Mutex::default(),
            refresh: Mutex::new(FIRST_REFRESH_TOKEN.into()),
            invalid_grants: AtomicUsize::new(0),
        })
    }

    fn refreshes(&self) -> bool {
        matches!(self.renewal, Renewal::Refresh { .. }) && self.lifetime == Lifetime::Expiring
    }

    pub fn obtains(&self) -> usize {
        self.obtained.load(Ordering::SeqCst)
    }

    /// Holds every obtain until [`Self::open`].
    pub async fn close(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.gate.acquire_many(GATE).await.unwrap()
    }

    pub async fn obtain_now(&self, refresh: Option<String>) -> Result<Obtained, ProviderError> {
        let n = self.obtained.fetch_add(1, Ordering::SeqCst) + 1;
        let now_in = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now_in, Ordering::SeqCst);
        let permit = self.gate.acquire().await.unwrap();
        drop(permit);
        // Give other callers the chance to run into this one.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(ProviderError::Unavailable {
                retry_after: Some(7),
                message: "down for the test".into(),
            });
        }
        let mut rotated = None;
        if self.refreshes() {
            let mut current = self.refresh.lock().unwrap();
            if refresh.as_deref() != Some(current.as_str()) {
                self.invalid_grants.fetch_add(1, Ordering::SeqCst);
                return Err(ProviderError::Rejected {
                    status: 400,
                    message: "invalid_grant".into(),
                });
            }
            *current = format!("refresh-{n}");
            rotated = Some(SecretString::from(current.clone()));
        }
        Ok(Obtained {
            secret: SecretString::from(format!("credential-{n}")),
            expires_at: Some(self.clock.now() + *self.life.lock().unwrap()),
            repositories: Vec::new(),
            permissions: Default::default(),
            rotated,
        })
    }
}

impl Provider for Scripted {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Github
    }

    fn source(&self) -> CredentialSource {
        CredentialSource::Other
    }

    fn lifetime(&self) -> Lifetime {
        self.lifetime
    }

    fn renewal(&self) -> Renewal {
        self.renewal
    }

    fn obtain<'a>(&'a self, ask: Ask<'a>) -> Pending<'a, Result<Obtained, ProviderError>> {
        self.seen
            .lock()
            .unwrap()
            .push(ask.connection.installation_id.map(|i| i.get()));
        let refresh = ask.refresh_token.map(|t| t.expose_secret().to_string());
        Box::pin(self.obtain_now(refresh))
    }

    fn revoke<'a>(
        &'a self,
        secret: &'a SecretString,
    ) -> Pending<'a, Result<Revoked, ProviderError>> {
        self.revoked
            .lock()
            .unwrap()
            .push(secret.expose_secret().to_string());
        Box::pin(std::future::ready(Ok(Revoked::Revoked)))
    }
}

pub struct World {
    pub store: Store,
    pub providers: Arc<Providers>,
    pub metrics: BrokerMetrics,
    pub url: DatabaseUrl,
    pub broker: Arc<Broker>,
    pub clock: Arc<ManualClock>,
    pub team: Uuid,
    pub connection: ConnectionRecord,
    pub _dir: tempfile::TempDir,
}

/// A broker over `provider` on each database under test, with one team and its connection.
pub async fn worlds(
    provider: impl Fn(&Arc<ManualClock>) -> Arc<Scripted>,
) -> Vec<(World, Arc<Scripted>)> {
    let dir = tempfile::TempDir::new().unwrap();
    let mut out = Vec::new();
    for url in databases_under_test(dir.path()).await {
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        // Whole seconds: Postgres keeps microseconds, and a stored token must compare equal.
        let clock = Arc::new(ManualClock::new(Utc::now().trunc_subsecs(0)));
        let scripted = provider(&clock);
        let now = clock.now();
        let team = store
            .create_team(
                &NewTeam {
                    name: TeamName::parse("Acme").unwrap(),
                    tier: Tier::Growth,
                    is_test_cohort: false,
                    primary_user: None,
                    external_id: None,
                    notification_email: None,
                    actor: Actor::operator(),
                    extra_audit: vec![],
                },
                None,
                now,
            )
            .await
            .unwrap()
            .team;
        let connection_id = Uuid::new_v4();
        let connection = ConnectionRecord {
            id: connection_id,
            team_id: team.id,
            host: Host::parse(HOST).unwrap(),
            owner: Owner::parse("acme").unwrap(),
            kind: ConnectionKind::GithubApp,
            installation_id: Some(42_u64.try_into().unwrap()),
            status: ConnectionStatus::Active,
            pat_expires_at: None,
            pat_ciphertext: None,
            refresh_ciphertext: scripted.refreshes().then(|| {
                let token = SecretString::from(FIRST_REFRESH_TOKEN);
                Sealer::new(&KEY).seal(&token, &refresh_aad(connection_id))
            }),
            refresh_generation: 0,
            created_at: now,
        };
        store
            .create_connection(&connection, &Actor::operator())
            .await
            .unwrap()
            .unwrap();
        let mut providers = Providers::default();
        providers.register(HOST, ConnectionKind::GithubApp, scripted.clone(), 8);
        let metrics = BrokerMetrics::default();
        let providers = Arc::new(providers);
        let broker = replica(&store, &providers, &clock, &metrics);
        out.push((
            World {
                store,
                providers,
                metrics: metrics.clone(),
                url: url.clone(),
                broker: Arc::new(broker),
                clock,
                team: team.id,
                connection,
                _dir: tempfile::TempDir::new().unwrap(),
            },
            scripted,
        ));
    }
    out[0].0._dir = dir;
    out
}

/// A broker (a replica, with caches of its own) over `store` and `providers`.
pub fn replica(
    store: &Store,
    providers: &Arc<Providers>,
    clock: &Arc<ManualClock>,
    metrics: &BrokerMetrics,
) -> Broker {
    let clock: Arc<dyn Clock> = clock.clone();
    Broker::new(BrokerParts {
        store: store.clone(),
        providers: providers.clone(),
        sealer: Sealer::new(&KEY),
        clock: clock.clone(),
        metrics: metrics.clone(),
        redis: None,
        floor: std::time::Duration::from_secs(15 * 60),
        limits: CacheLimits::default(),
        mint_limiter: Arc::new(RateLimiter::new(
            "mints",
            1000,
            std::time::Duration::from_secs(3600),
            clock,
            None,
            metrics.rate_limit_fail_open.clone(),
        )),
    })
}

impl World {
    /// Another replica over the same database and providers.
    pub fn replica(&self) -> Arc<Broker> {
        Arc::new(replica(
            &self.store,
            &self.providers,
            &self.clock,
            &self.metrics,
        ))
    }

    /// A live session holding `repos` in one scope stored under `key`; its lookup.
    pub async fn session_keyed(&self, repos: &[&str], key: &str) -> String {
        let (id, lookup) = self.session(repos).await;
        let id = uuid_literal(self.url.dialect(), id);
        let sql = format!("UPDATE session_scopes SET cache_key = '{key}' WHERE session_id = {id}");
        execute_script(&self.url, &sql).await;
        lookup
    }

    /// A live session holding `repos` (one scope, keyed by them), as the credential path reads it.
    pub async fn session(&self, repos: &[&str]) -> (Uuid, String) {
        let lookup = Uuid::new_v4().simple().to_string();
        let repositories: Vec<RepoName> =
            repos.iter().map(|r| RepoName::parse(r).unwrap()).collect();
        let permissions = PermissionSet::defaults();
        let cache_key = lanyard_broker::cache_key(
            self.team,
            &Host::parse(HOST).unwrap(),
            &self.connection,
            &repositories,
            &permissions,
            self.providers.renewal(HOST, ConnectionKind::GithubApp),
        );
        let record = self
            .store
            .create_session(
                &NewSession {
                    team_id: self.team,
                    runner_lookup: lookup.clone(),
                    runner_hash: "h".into(),
                    repos: repos.iter().map(|r| r.to_string()).collect(),
                    permissions,
                    expires_at: self.clock.now() + Duration::hours(8),
                    scopes: vec![NewScope {
                        host: Host::parse(HOST).unwrap(),
                        owner: Owner::parse("acme").unwrap(),
                        cache_key,
                        repositories,
                    }],
                },
                100,
                &Actor::operator(),
                self.clock.now(),
            )
            .await
            .unwrap()
            .unwrap();
        (record.id, lookup)
    }

    /// Upstream slots held now.
    pub fn slots_held(&self) -> usize {
        let registered = self.providers.get(HOST, ConnectionKind::GithubApp);
        registered.unwrap().slots.load().0
    }

    /// How many requests were served by waiting for another's obtain.
    pub fn coalesced(&self) -> u64 {
        let label = CacheResultLabel {
            result: Label(CacheResult::Coalesced),
        };
        self.metrics.token_cache.get_or_create(&label).get()
    }

    pub async fn read(&self, lookup: &str) -> RunnerSession {
        self.store.runner_session(lookup).await.unwrap().unwrap()
    }

    /// What the session's first scope is served now.
    pub async fn serve(&self, lookup: &str) -> Result<Served, BrokerError> {
        let session = self.read(lookup).await;
        self.broker.credential(&session, &session.scopes[0]).await
    }

    /// The credential the session's first scope is served now.
    pub async fn fetch(&self, lookup: &str) -> Result<String, BrokerError> {
        let served = self.serve(lookup).await;
        served.map(|s| s.credential.token.expose_secret().to_string())
    }
}

pub fn expiring(clock: &Arc<ManualClock>) -> Arc<Scripted> {
    Scripted::new(clock, Renewal::Mint, Lifetime::Expiring)
}

/// Waits (at most 10 s of real time: a hang is a failure) until `done` holds.
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !done() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}
