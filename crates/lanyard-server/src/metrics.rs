//! Prometheus metrics (CONTRACT §10). Every family is registered here, listed in [`FAMILIES`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route template (`/v1/sessions/{id}`), never the raw path.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub method: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MintLabels {
    pub host: String,
    /// `ok`, `unavailable` or `rejected`.
    pub result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct E2eLabels {
    /// `create` or `reap`.
    pub op: &'static str,
    /// `ok`, `unauthorized`, `bad_request`, `not_test_cohort`, `rate_limited` or `error`.
    pub result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WorkerLabels {
    pub worker: &'static str,
    /// `ok` or `error`.
    pub result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WorkerLabel {
    pub worker: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The exposed families, as they appear in the scrape (counters with their `_total`).
pub const FAMILIES: &[&str] = &[
    "lanyard_http_requests_total",
    "lanyard_http_request_duration_seconds",
    "lanyard_github_mints_total",
    "lanyard_github_token_cache_total",
    "lanyard_github_revocations_total",
    "lanyard_credentials_served_total",
    "lanyard_e2e_account_total",
    "lanyard_rate_limit_fail_open_total",
    "lanyard_worker_runs_total",
    "lanyard_worker_skipped_test_cohort_total",
];

/// The `# TYPE` name of a listed family (counters drop their `_total` there).
pub fn type_name(family: &str) -> &str {
    family.strip_suffix("_total").unwrap_or(family)
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabels>,
    pub github_mints: Family<MintLabels, Counter>,
    /// `hit`, `miss` (this request minted) or `coalesced` (waited for another's mint).
    pub token_cache: Family<ResultLabel, Counter>,
    /// `revoked`, `already_dead` or `error`.
    pub revocations: Family<ResultLabel, Counter>,
    pub credentials_served: Family<SourceLabel, Counter>,
    pub e2e_accounts: Family<E2eLabels, Counter>,
    pub rate_limit_fail_open: Counter,
    pub worker_runs: Family<WorkerLabels, Counter>,
    /// Teams a billing, email, nudge or churn worker skipped for being test cohorts.
    pub worker_skipped_test_cohort: Family<WorkerLabel, Counter>,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "lanyard_http_requests",
            "HTTP requests by route template, method and status",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "lanyard_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            http_duration.clone(),
        );
        let github_mints = Family::<MintLabels, Counter>::default();
        registry.register(
            "lanyard_github_mints",
            "Upstream token mints by host and result",
            github_mints.clone(),
        );
        let token_cache = Family::<ResultLabel, Counter>::default();
        registry.register(
            "lanyard_github_token_cache",
            "Token cache lookups: hit, miss or coalesced",
            token_cache.clone(),
        );
        let revocations = Family::<ResultLabel, Counter>::default();
        registry.register(
            "lanyard_github_revocations",
            "Token revocations at GitHub by result",
            revocations.clone(),
        );
        let credentials_served = Family::<SourceLabel, Counter>::default();
        registry.register(
            "lanyard_credentials_served",
            "Credentials served by source",
            credentials_served.clone(),
        );
        let e2e_accounts = Family::<E2eLabels, Counter>::default();
        registry.register(
            "lanyard_e2e_account",
            "Guarded e2e account operations by op and result",
            e2e_accounts.clone(),
        );
        let rate_limit_fail_open = Counter::default();
        registry.register(
            "lanyard_rate_limit_fail_open",
            "Calls allowed because the rate limiter's Redis was unreachable",
            rate_limit_fail_open.clone(),
        );
        let worker_runs = Family::<WorkerLabels, Counter>::default();
        registry.register(
            "lanyard_worker_runs",
            "Background worker runs by worker and result",
            worker_runs.clone(),
        );
        let worker_skipped_test_cohort = Family::<WorkerLabel, Counter>::default();
        registry.register(
            "lanyard_worker_skipped_test_cohort",
            "Test-cohort teams skipped by workers that bill, email, nudge or score",
            worker_skipped_test_cohort.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            github_mints,
            token_cache,
            revocations,
            credentials_served,
            e2e_accounts,
            rate_limit_fail_open,
            worker_runs,
            worker_skipped_test_cohort,
        }
    }
}

impl Metrics {
    pub fn observe_http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                method: method.to_string(),
            })
            .observe(seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_family_is_exposed_and_nothing_unlisted() {
        let m = Metrics::default();
        m.observe_http("/healthz", "GET", 200, 0.002);
        let text = m.encode();
        for family in FAMILIES {
            let declared = format!("# TYPE {} ", type_name(family));
            assert!(text.contains(&declared), "{family} missing:\n{text}");
        }
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(
                FAMILIES.iter().any(|f| type_name(f) == name),
                "{name} is exposed but not listed in FAMILIES"
            );
        }
        assert!(
            text.contains(
                r#"lanyard_http_requests_total{route="/healthz",method="GET",status="200"} 1"#
            ),
            "{text}"
        );
    }
}
