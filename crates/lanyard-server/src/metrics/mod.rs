//! Prometheus metrics (CONTRACT §10). Every family is registered here and listed in
//! [`FAMILIES`]. Every label value is a registry entry, a configured host or a route template:
//! never text taken from a request, so a scrape's size is bounded by the code and configuration.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry as PromRegistry;

mod labels;

pub use lanyard_broker::metrics::BrokerMetrics;

pub use labels::*;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The exposed families, as they appear in the scrape (counters with their `_total`).
pub const FAMILIES: &[&str] = &[
    "lanyard_http_requests_total",
    "lanyard_http_errors_total",
    "lanyard_http_request_duration_seconds",
    "lanyard_github_mints_total",
    "lanyard_github_token_cache_total",
    "lanyard_github_revocations_total",
    "lanyard_credentials_served_total",
    "lanyard_e2e_account_total",
    "lanyard_rate_limit_fail_open_total",
    "lanyard_stale_sessions_served_total",
    "lanyard_worker_runs_total",
    "lanyard_worker_skipped_test_cohort_total",
    "lanyard_broker_cache_entries",
    "lanyard_github_webhooks_total",
    "lanyard_notifications_total",
];

/// The `# TYPE` name of a listed family (counters drop their `_total` there).
pub fn type_name(family: &str) -> &str {
    family.strip_suffix("_total").unwrap_or(family)
}

#[derive(Debug)]
pub struct Metrics {
    registry: PromRegistry,
    pub http_requests: Family<HttpLabels, Counter>,
    /// Error answers by route template, method and error code (a registry entry).
    pub http_errors: Family<ErrorLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabels>,
    /// The broker's families: mints, the token cache, revocations, credentials served, stale
    /// sessions, rate-limit fail-opens and cache sizes.
    pub broker: BrokerMetrics,
    pub e2e_accounts: Family<E2eLabels, Counter>,
    pub worker_runs: Family<WorkerLabels, Counter>,
    /// Teams a billing, email, nudge or churn worker skipped for being test cohorts.
    pub worker_skipped_test_cohort: Family<WorkerLabel, Counter>,
    pub github_webhooks: Family<WebhookLabels, Counter>,
    pub notifications: Family<NotificationLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = PromRegistry::default();
        macro_rules! family {
            ($name:literal, $help:literal, $family:expr) => {{
                let family = $family;
                registry.register($name, $help, family.clone());
                family
            }};
        }
        let broker = BrokerMetrics::registered(&mut registry);
        Self {
            broker,
            http_requests: family!(
                "lanyard_http_requests",
                "HTTP requests by route template, method and status",
                Family::default()
            ),
            http_errors: family!(
                "lanyard_http_errors",
                "HTTP error answers by route template, method and error code",
                Family::default()
            ),
            http_duration: family!(
                "lanyard_http_request_duration_seconds",
                "HTTP request latency by route template and method",
                Family::new_with_constructor(latency_histogram as fn() -> Histogram)
            ),
            e2e_accounts: family!(
                "lanyard_e2e_account",
                "Guarded e2e account operations by op and result",
                Family::default()
            ),
            worker_runs: family!(
                "lanyard_worker_runs",
                "Background worker runs by worker and result",
                Family::default()
            ),
            worker_skipped_test_cohort: family!(
                "lanyard_worker_skipped_test_cohort",
                "Test-cohort teams skipped by workers that bill, email, nudge or score",
                Family::default()
            ),
            github_webhooks: family!(
                "lanyard_github_webhooks",
                "GitHub webhook deliveries by event and result",
                Family::default()
            ),
            notifications: family!(
                "lanyard_notifications",
                "Notification delivery attempts by kind and result",
                Family::default()
            ),
            registry,
        }
    }
}

impl Metrics {
    pub fn observe_http(&self, route: &Fixed, method: Method, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.clone(),
                method: Label(method),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                route: route.clone(),
                method: Label(method),
            })
            .observe(seconds);
    }

    /// Counts an error answer by its code.
    pub fn observe_error(&self, route: &Fixed, method: Method, code: lanyard_core::ErrorCode) {
        self.http_errors
            .get_or_create(&ErrorLabels {
                route: route.clone(),
                method: Label(method),
                code: Label(code),
            })
            .inc();
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
        m.observe_http(&Fixed("/healthz".into()), Method::Get, 200, 0.002);
        m.broker.set_cache_entries(CacheName::Tokens, 3);
        m.github_webhooks
            .get_or_create(&WebhookLabels {
                event: Label(WebhookEvent::Installation),
                result: Label(WebhookResult::Processed),
            })
            .inc();
        m.notifications
            .get_or_create(&NotificationLabels {
                kind: Label(lanyard_core::NotificationKind::QuotaNudge),
                result: Label(DeliveryResult::Sent),
            })
            .inc();
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
        assert!(text.contains(r#"lanyard_broker_cache_entries{cache="tokens"} 3"#));
    }

    #[test]
    fn a_made_up_method_is_other() {
        let made_up = axum::http::Method::from_bytes(&[b'X'; 20_000]).unwrap();
        assert_eq!(Method::of(&made_up), Method::Other);
        assert_eq!(Method::of(&axum::http::Method::PATCH).as_str(), "PATCH");
    }
}
