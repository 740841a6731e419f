//! The broker's counters, resolved from their families once at start-up.

use lanyard_core::wire::CredentialSource;
use prometheus_client::metrics::counter::Counter;

use crate::metrics::{BrokerMetrics, CacheResult, CacheResultLabel, Label, SourceLabel};

/// The broker's counters, resolved once: the hot path bumps an atomic and looks nothing up.
#[derive(Debug)]
pub(super) struct Counters {
    cache: [Counter; 3],
    served: [Counter; 2],
    stale_sessions: Counter,
}

impl Counters {
    pub(super) fn new(metrics: &BrokerMetrics) -> Self {
        let cache = |result| {
            metrics
                .token_cache
                .get_or_create(&CacheResultLabel {
                    result: Label(result),
                })
                .clone()
        };
        let served = |source| {
            metrics
                .credentials_served
                .get_or_create(&SourceLabel {
                    source: Label(source),
                })
                .clone()
        };
        Self {
            cache: [
                cache(CacheResult::Hit),
                cache(CacheResult::Miss),
                cache(CacheResult::Coalesced),
            ],
            served: [
                served(CredentialSource::GithubApp),
                served(CredentialSource::Pat),
            ],
            stale_sessions: metrics.stale_sessions_served.clone(),
        }
    }

    pub(super) fn cache(&self, result: CacheResult) {
        let i = match result {
            CacheResult::Hit => 0,
            CacheResult::Miss => 1,
            CacheResult::Coalesced => 2,
        };
        self.cache[i].inc();
    }

    pub(super) fn stale_session(&self) {
        self.stale_sessions.inc();
    }

    pub(super) fn served(&self, source: CredentialSource) {
        match source {
            CredentialSource::GithubApp => self.served[0].inc(),
            CredentialSource::Pat | CredentialSource::Other => self.served[1].inc(),
        };
    }
}
