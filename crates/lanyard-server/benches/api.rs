//! Request-path benchmark: authenticated routes against `/healthz`, measured in the same run.
//!
//! `cargo bench -p lanyard-server --bench api` (set TEST_DATABASE_URL to measure on Postgres).
//! Prints throughput and latency per route and each route's cost as a ratio to `/healthz`, plus
//! the process's resident memory. Loops are bounded and target 127.0.0.1 only.

use std::time::{Duration, Instant};

use lanyard_core::Tier;
use lanyard_testkit::TestApp;

const REQUESTS: usize = 4000;
const CONCURRENCY: usize = 16;

struct Sample {
    name: &'static str,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn measure(app: &TestApp, name: &'static str, path: &str, bearer: Option<&str>) -> Sample {
    let per_worker = REQUESTS / CONCURRENCY;
    // Warm-up: connections, caches, the first allocation of every label.
    for _ in 0..50 {
        let mut req = app.get(path);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        assert!(
            req.send().await.unwrap().status().is_success(),
            "{name} must succeed"
        );
    }
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let client = app.client.clone();
        let url = app.url(path);
        let bearer = bearer.map(str::to_string);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let t = Instant::now();
                let mut req = client.get(&url);
                if let Some(b) = &bearer {
                    req = req.bearer_auth(b);
                }
                let r = req.send().await.unwrap();
                assert!(r.status().is_success());
                let _ = r.bytes().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(REQUESTS);
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    Sample {
        name,
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let app = TestApp::spawn().await;
    let backend = app.store().dialect().as_str();
    let team = app.create_team("Bench", Tier::Pro).await;
    let jwt = app.jwt_for(&team);
    let rss_before = rss_kib();

    let baseline = measure(&app, "GET /healthz (baseline)", "/healthz", None).await;
    let samples = vec![
        measure(&app, "GET /v1/me (API key)", "/v1/me", Some(&team.api_key)).await,
        measure(&app, "GET /v1/me (session JWT)", "/v1/me", Some(&jwt)).await,
        measure(
            &app,
            "GET /v1/audit (API key)",
            "/v1/audit?limit=50",
            Some(&team.api_key),
        )
        .await,
    ];
    let rss_after = rss_kib();

    println!("\nbackend: {backend}; {REQUESTS} requests per route, {CONCURRENCY} concurrent, client and server in one process\n");
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>16}",
        "route", "req/s", "p50", "p99", "cost vs healthz"
    );
    for s in std::iter::once(&baseline).chain(&samples) {
        println!(
            "{:<28} {:>10.0} {:>10.2?} {:>10.2?} {:>15.2}x",
            s.name,
            s.per_second,
            s.p50,
            s.p99,
            baseline.per_second / s.per_second
        );
    }
    println!(
        "\nresident memory: {} KiB before the load, {} KiB after ({:.2}x)",
        rss_before,
        rss_after,
        rss_after as f64 / rss_before.max(1) as f64
    );
}
