//! Capacity (`LANYARD_BENCH_MODE=capacity`): one replica holding 20,000 and then 100,000 live
//! sessions, each fetched by its runner once a minute, as runners do. For each size: the
//! server's resident memory, the database's size on disk, and the credential path's p50 and p99
//! latency under that steady load (each of those requests reads its session from the database:
//! a minute apart, it is past its 2 s of trust). Every loop is bounded and targets only
//! 127.0.0.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::setup::{create_team, credential_targets, fetch_each, sessions};

/// The sizes measured, in order (each grows on the last).
const SIZES: [usize; 2] = [20_000, 100_000];
/// Sessions per team: a growth team's active-session limit.
const PER_TEAM: usize = 5_000;
/// How often each runner fetches.
const PERIOD: Duration = Duration::from_secs(60);
/// Requests in flight at most while pacing (a runner's fetch is short; this only bounds the
/// driver).
const IN_FLIGHT: usize = 256;

/// What the capacity run needs from the main bench's set-up.
pub(crate) struct Stage<'a> {
    pub(crate) bin: &'a PathBuf,
    pub(crate) data_dir: &'a str,
    pub(crate) env: &'a [(&'a str, String)],
    pub(crate) client: &'a reqwest::Client,
    pub(crate) base: &'a str,
    pub(crate) pid: u32,
    pub(crate) host: &'a str,
    pub(crate) repo: &'a str,
}

struct Figures {
    sessions: usize,
    rss_kib: u64,
    db_bytes: u64,
    p50: Duration,
    p99: Duration,
    per_second: f64,
    errors: usize,
}

/// The database's files in the data dir (SQLite's file, its WAL and shared memory).
fn database_bytes(data_dir: &str) -> u64 {
    std::fs::read_dir(Path::new(data_dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("lanyard.db"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// One period of every session's runner fetching once, spread evenly over it.
async fn paced(
    client: &reqwest::Client,
    base: &str,
    targets: &Arc<Vec<(String, Option<String>)>>,
) -> (Vec<Duration>, usize, Duration) {
    let gap = PERIOD / u32::try_from(targets.len()).expect("a count that fits");
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for (i, (path, bearer)) in targets.iter().cloned().enumerate() {
        let due = started + gap * u32::try_from(i).expect("a count that fits");
        tokio::time::sleep_until(due.into()).await;
        let permit = permits.clone().acquire_owned().await.expect("open");
        let (client, url) = (client.clone(), format!("{base}{path}"));
        tasks.spawn(async move {
            let _permit = permit;
            let sent = Instant::now();
            let mut req = client.get(url);
            if let Some(b) = bearer {
                req = req.bearer_auth(b);
            }
            let ok = req.send().await.is_ok_and(|r| r.status().is_success());
            (sent.elapsed(), ok)
        });
    }
    let mut took = Vec::with_capacity(targets.len());
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (elapsed, ok) = done.expect("a request task");
        took.push(elapsed);
        errors += usize::from(!ok);
    }
    took.sort();
    (took, errors, started.elapsed())
}

/// The `q` quantile of sorted latencies.
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub(crate) async fn run(stage: Stage<'_>) {
    let mut all = Vec::new();
    let mut figures = Vec::new();
    let mut team = 0;
    for size in SIZES {
        eprintln!("capacity: growing to {size} live sessions…");
        while all.len() < size {
            team += 1;
            let key = create_team(
                stage.bin,
                stage.data_dir,
                stage.env,
                &format!("Capacity {team}"),
                "growth",
                stage.host,
            );
            let n = (size - all.len()).min(PER_TEAM);
            let made = sessions(stage.client, stage.base, &key, stage.repo, n).await;
            fetch_each(stage.client, stage.base, &credential_targets(&made)).await;
            all.extend(made);
        }
        let targets = credential_targets(&all);
        eprintln!(
            "capacity: {size} runners fetching once a minute ({:.0} req/s) for {}s…",
            size as f64 / PERIOD.as_secs_f64(),
            PERIOD.as_secs()
        );
        let (took, errors, elapsed) = paced(stage.client, stage.base, &targets).await;
        figures.push(Figures {
            sessions: size,
            rss_kib: crate::setup::rss_kib(stage.pid),
            db_bytes: database_bytes(stage.data_dir),
            p50: quantile(&took, 0.50),
            p99: quantile(&took, 0.99),
            per_second: took.len() as f64 / elapsed.as_secs_f64(),
            errors,
        });
    }
    println!();
    println!("lanyard-bench capacity: one release replica on SQLite, 2 cores, loopback only");
    println!("{:<58} {:>14}", "figure", "value");
    for f in &figures {
        let n = f.sessions;
        println!(
            "{:<58} {:>11.1} MB",
            format!("{n} sessions: server RSS"),
            f.rss_kib as f64 / 1024.0
        );
        println!(
            "{:<58} {:>11.1} MB",
            format!("{n} sessions: database on disk"),
            f.db_bytes as f64 / 1e6
        );
        println!(
            "{:<58} {:>14.0}",
            format!("{n} sessions: credential requests/s (each runner 1/min)"),
            f.per_second
        );
        println!(
            "{:<58} {:>6.2?} / {:>6.2?}",
            format!("{n} sessions: credential p50 / p99"),
            f.p50,
            f.p99
        );
        println!(
            "{:<58} {:>14}",
            format!("{n} sessions: failed requests"),
            f.errors
        );
    }
}
