//! Load generation and the server's own measures: throughput, latency, CPU per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{CONCURRENCY, REQUESTS};

pub(crate) struct Load {
    pub(crate) per_second: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    /// The server's CPU time per request: steadier than throughput on a shared machine.
    pub(crate) cpu_per_request: Duration,
}

/// CPU time the process has used, summed over its threads (`/proc/PID/task/*/schedstat`, ns).
pub(crate) fn cpu_time(pid: u32) -> Duration {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            total += text
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

/// Each target's URL and Authorization header, built before the clock starts: the driver shares
/// the machine with the server, and formatting them per request cost the driver more on the
/// credential path (a longer URL, a bearer header) than on /healthz, which the ratio then
/// charged to the server.
fn prepared(base: &str, targets: &[(String, Option<String>)]) -> Arc<Vec<Prepared>> {
    Arc::new(
        targets
            .iter()
            .map(|(path, bearer)| Prepared {
                url: reqwest::Url::parse(&format!("{base}{path}")).expect("a target URL"),
                authorization: bearer.as_ref().map(|b| {
                    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {b}"))
                        .expect("a bearer header");
                    value.set_sensitive(true);
                    value
                }),
            })
            .collect(),
    )
}

struct Prepared {
    url: reqwest::Url,
    authorization: Option<reqwest::header::HeaderValue>,
}

/// `REQUESTS` GETs, `CONCURRENCY` at a time, cycling through `targets` of (path, bearer).
pub(crate) async fn load(
    client: &reqwest::Client,
    base: &str,
    pid: u32,
    targets: Arc<Vec<(String, Option<String>)>>,
) -> Load {
    let targets = prepared(base, &targets);
    let cpu_before = cpu_time(pid);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let client = client.clone();
        let targets = targets.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(REQUESTS / CONCURRENCY);
            let mut i = worker;
            while i < REQUESTS {
                let target = &targets[i % targets.len()];
                let t = Instant::now();
                let mut req = client.get(target.url.clone());
                if let Some(value) = &target.authorization {
                    req = req.header(reqwest::header::AUTHORIZATION, value.clone());
                }
                let r = req.send().await.expect("request");
                assert!(r.status().is_success(), "{}: {}", target.url, r.status());
                let _ = r.bytes().await;
                latencies.push(t.elapsed());
                i += CONCURRENCY;
            }
            latencies
        });
    }
    let mut all = Vec::with_capacity(REQUESTS);
    while let Some(l) = tasks.join_next().await {
        all.extend(l.expect("worker"));
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    all.sort_unstable();
    Load {
        cpu_per_request: cpu / u32::try_from(all.len()).unwrap_or(u32::MAX),
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}
