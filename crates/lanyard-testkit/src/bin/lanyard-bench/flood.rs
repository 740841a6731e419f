//! One team floods the server while another team reads its cached credentials.
//!
//! The flooding team (free tier) asks for sessions far past its per-minute limit, at a fixed
//! rate, so nearly every request is refused with 429. The question is what that costs the
//! other team: its cached credential path is measured alone and under the flood, alternating,
//! and compared.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::load::{load, Load};

/// Flooding clients, each sending one request per `INTERVAL` (at most 2,000 requests/s in all).
const WORKERS: usize = 4;
const INTERVAL: Duration = Duration::from_millis(2);
/// Rounds of (alone, under flood), alternating.
const ROUNDS: usize = 3;

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    limited: AtomicU64,
}

/// Sends `POST /v1/sessions` as the flooding team until `stop` is set.
async fn flood(
    client: reqwest::Client,
    url: String,
    key: String,
    repo: String,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let r = client
            .post(&url)
            .bearer_auth(&key)
            .json(&serde_json::json!({"repos": [repo]}))
            .send()
            .await;
        counts.sent.fetch_add(1, Ordering::Relaxed);
        if r.is_ok_and(|r| r.status() == 429) {
            counts.limited.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the flood did to the other team's cached path.
pub(crate) struct FloodFigures {
    pub(crate) alone: Load,
    pub(crate) flooded: Load,
    pub(crate) flood_per_second: f64,
    pub(crate) flood_limited_share: f64,
}

/// Measures `targets` (the other team's credential fetches) alone and under the flood.
pub(crate) async fn measure(
    client: &reqwest::Client,
    base: &str,
    pid: u32,
    targets: Arc<Vec<(String, Option<String>)>>,
    flood_key: &str,
    repo: &str,
) -> FloodFigures {
    let mut alone = Vec::with_capacity(ROUNDS);
    let mut flooded = Vec::with_capacity(ROUNDS);
    let counts = Arc::new(Counts::default());
    let mut flood_time = Duration::ZERO;
    for _ in 0..ROUNDS {
        alone.push(load(client, base, pid, targets.clone()).await);
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..WORKERS {
            workers.spawn(flood(
                client.clone(),
                format!("{base}/v1/sessions"),
                flood_key.to_string(),
                repo.to_string(),
                stop.clone(),
                counts.clone(),
            ));
        }
        let started = std::time::Instant::now();
        flooded.push(load(client, base, pid, targets.clone()).await);
        stop.store(true, Ordering::Relaxed);
        while workers.join_next().await.is_some() {}
        flood_time += started.elapsed();
    }
    let median = |mut v: Vec<Load>| {
        v.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
        v.swap_remove(ROUNDS / 2)
    };
    let sent = counts.sent.load(Ordering::Relaxed);
    FloodFigures {
        alone: median(alone),
        flooded: median(flooded),
        flood_per_second: sent as f64 / flood_time.as_secs_f64(),
        flood_limited_share: counts.limited.load(Ordering::Relaxed) as f64 / sent.max(1) as f64,
    }
}
