//! The broker's metric families (CONTRACT §10), registered into the server's registry at
//! start-up. Every label value is a registry entry or a configured provider: never text taken
//! from a request.

use std::sync::Arc;

use lanyard_core::wire::CredentialSource;
use lanyard_core::Registry;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry as PromRegistry;

/// A registry entry as a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label<T>(pub T);

impl<T: Registry> EncodeLabelValue for Label<T> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        EncodeLabelValue::encode(&self.0.name(), encoder)
    }
}

/// A label value fixed by configuration or the router (a host, a route template), shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fixed(pub Arc<str>);

impl EncodeLabelValue for Fixed {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        EncodeLabelValue::encode(&&*self.0, encoder)
    }
}

lanyard_core::string_enum! {
    /// How a token request was answered.
    pub enum CacheResult {
        /// Served from the cache.
        Hit = "hit",
        /// This request minted.
        Miss = "miss",
        /// Waited for another request's mint.
        Coalesced = "coalesced",
    }
}

lanyard_core::string_enum! {
    pub enum MintResult {
        Ok = "ok",
        Unavailable = "unavailable",
        Rejected = "rejected",
    }
}

lanyard_core::string_enum! {
    pub enum RevocationResult {
        Revoked = "revoked",
        AlreadyDead = "already_dead",
        /// Not revoked upstream, on purpose: it dies at its expiry (see [`crate::revoke`]).
        LeftToExpire = "left_to_expire",
        Error = "error",
    }
}

lanyard_core::string_enum! {
    /// The broker's in-process caches, each bounded by size and by time.
    pub enum CacheName {
        Tokens = "tokens",
        Sessions = "sessions",
        Cooldowns = "cooldowns",
        Flights = "flights",
        Refreshing = "refreshing",
        Failures = "refresh_failures",
        RateLimits = "rate_limits",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MintLabels {
    /// A configured host.
    pub host: Fixed,
    pub result: Label<MintResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CacheResultLabel {
    pub result: Label<CacheResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RevocationLabel {
    pub result: Label<RevocationResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: Label<CredentialSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CacheLabel {
    pub cache: Label<CacheName>,
}

/// The families the broker and its providers count in. Cloning a family shares it.
#[derive(Debug, Clone, Default)]
pub struct BrokerMetrics {
    /// Upstream mints by host and result (counted by the providers that mint).
    pub github_mints: Family<MintLabels, Counter>,
    pub token_cache: Family<CacheResultLabel, Counter>,
    pub revocations: Family<RevocationLabel, Counter>,
    pub credentials_served: Family<SourceLabel, Counter>,
    /// Sessions served as last read because the store could not answer.
    pub stale_sessions_served: Counter,
    pub rate_limit_fail_open: Counter,
    /// Entries in each of the broker's in-process caches, set at every scrape.
    pub cache_entries: Family<CacheLabel, Gauge>,
}

impl BrokerMetrics {
    /// The families, registered in `registry`.
    pub fn registered(registry: &mut PromRegistry) -> Self {
        let m = Self::default();
        registry.register(
            "lanyard_github_mints",
            "Upstream token mints by host and result",
            m.github_mints.clone(),
        );
        registry.register(
            "lanyard_github_token_cache",
            "Token cache lookups: hit, miss or coalesced",
            m.token_cache.clone(),
        );
        registry.register(
            "lanyard_github_revocations",
            "Token revocations upstream by result",
            m.revocations.clone(),
        );
        registry.register(
            "lanyard_credentials_served",
            "Credentials served by source",
            m.credentials_served.clone(),
        );
        registry.register(
            "lanyard_rate_limit_fail_open",
            "Calls allowed because the rate limiter's Redis was unreachable",
            m.rate_limit_fail_open.clone(),
        );
        registry.register(
            "lanyard_stale_sessions_served",
            "Runner sessions served as last read because the database could not answer",
            m.stale_sessions_served.clone(),
        );
        registry.register(
            "lanyard_broker_cache_entries",
            "Entries in each in-process cache of the broker",
            m.cache_entries.clone(),
        );
        m
    }

    pub fn set_cache_entries(&self, cache: CacheName, entries: u64) {
        self.cache_entries
            .get_or_create(&CacheLabel {
                cache: Label(cache),
            })
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// Counts one revocation's result.
    pub fn revoked(&self, result: RevocationResult) {
        self.revocations
            .get_or_create(&RevocationLabel {
                result: Label(result),
            })
            .inc();
    }
}
