//! `lanyard-bench`: the credential-path benchmark.
//!
//! Starts the release `lanyard` binary (next to this one) against an in-process fake GitHub and
//! prints, measured in the same run:
//! - credential-path throughput divided by `/healthz` throughput,
//! - the credential path's p50 and p99 latency,
//! - upstream mints per 1,000 fetches across 1,000 sessions,
//! - the server's resident memory with 10,000 live sessions,
//! - one team's cached credential path alone and while another team floods the server with
//!   requests its limits refuse,
//! - the cached credential path with GitHub answering and with GitHub stalled (mints hanging),
//! - a slowloris crowd (connections closed, RSS) and a flood of made-up 20 KB methods (RSS and
//!   the size of /metrics before and after).
//!
//! Run it with `scripts/bench.sh` (it builds both binaries in release mode first). All traffic
//! goes to 127.0.0.1, and every loop is bounded. `LANYARD_BENCH_MODE=capacity` measures
//! capacity instead (see `capacity.rs`): `scripts/bench.sh capacity`; `replicas` measures three
//! replicas on Postgres and Redis (see `replicas.rs`): `scripts/bench.sh replicas`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lanyard_core::SystemClock;
use lanyard_testkit::fake_github::{app_private_key_path, FakeGithub};

mod abuse;
mod capacity;
mod flood;
mod load;
mod replicas;
mod setup;

use load::load;
use setup::{
    create_team, credential_targets, fetch_each, free_port, lanyard_binary, rss_kib, sessions,
};

const REQUESTS: usize = 10_000;
/// Rounds of /healthz and the credential path, the order turned each round (as many of each
/// order), so drift hits both alike. The machine is shared and noisy: the median of many rounds
/// is steadier than a few.
const ROUNDS: usize = 16;
const CONCURRENCY: usize = 32;
const SESSIONS_FOR_MINTS: usize = 1_000;
const SESSIONS_FOR_MEMORY: usize = 10_000;
/// The server's head timeout in this run (the slowloris phase waits on it).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = lanyard_binary();
    if std::env::var("LANYARD_BENCH_MODE").as_deref() == Ok("replicas") {
        replicas::run(&bin).await;
        return;
    }
    let fake = FakeGithub::start(Arc::new(SystemClock)).await;
    let stall_repos: Vec<String> = (0..8).map(|i| format!("stall{i}")).collect();
    let mut repos = vec!["widgets"];
    repos.extend(stall_repos.iter().map(String::as_str));
    fake.add_installation(1, "acme", &repos);
    // GitHub is reached through a proxy that the stall phase freezes.
    let (github_proxy, github_api) =
        lanyard_testkit::chaos::Proxy::in_front_of(&fake.api_url).await;
    // The server's data dir (which it creates 0700) and, beside it, its log.
    let data = tempfile::TempDir::new().unwrap();
    let data_dir = data.path().join("data").to_str().unwrap().to_string();
    let port = free_port();
    let key_file = app_private_key_path().to_str().unwrap().to_string();
    let env: Vec<(&str, String)> = vec![
        ("LANYARD_DATA_DIR", data_dir.clone()),
        ("LANYARD_GITHUB_HOST", fake.host.clone()),
        ("LANYARD_GITHUB_API_URL", github_api.clone()),
        ("LANYARD_GITHUB_APP_ID", fake.app_id.to_string()),
        ("LANYARD_GITHUB_APP_PRIVATE_KEY_FILE", key_file),
        (
            "LANYARD_HTTP_HEADER_TIMEOUT",
            format!("{}s", HEAD_TIMEOUT.as_secs()),
        ),
    ];
    // Logs go to a file, as a container's do; LANYARD_BENCH_LOG sets the server's RUST_LOG.
    let log_path = data.path().join("server.log");
    let log_file = std::fs::File::create(&log_path).expect("log file");
    let log_level = std::env::var("LANYARD_BENCH_LOG").unwrap_or_else(|_| "info".into());
    let child = Command::new(&bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", &log_level)
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start lanyard");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if client
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        ready,
        "lanyard did not become ready; its log:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    let pid = server.child.id();
    let base = server.base.clone();
    let rss_idle = rss_kib(pid);
    if std::env::var("LANYARD_BENCH_MODE").as_deref() == Ok("capacity") {
        let repo = fake.repo_url("acme", "widgets");
        capacity::run(capacity::Stage {
            bin: &bin,
            data_dir: &data_dir,
            env: &env,
            client: &client,
            base: &base,
            pid,
            host: &fake.host,
            repo: &repo,
        })
        .await;
        return;
    }

    let key = create_team(&bin, &data_dir, &env, "Bench A", "growth", &fake.host);
    let repo = fake.repo_url("acme", "widgets");

    eprintln!("creating {SESSIONS_FOR_MINTS} sessions…");
    let first = sessions(&client, &base, &key, &repo, SESSIONS_FOR_MINTS).await;
    let targets = credential_targets(&first);
    // One fetch per session: 1,000 fetches across 1,000 sessions.
    fetch_each(&client, &base, &targets).await;
    let mints_per_thousand = fake.mint_count() as f64 * 1000.0 / SESSIONS_FOR_MINTS as f64;

    eprintln!("measuring /healthz and the credential path ({REQUESTS} requests each, {CONCURRENCY} concurrent)…");
    let health_targets = Arc::new(vec![("/healthz".to_string(), None)]);
    let _warm = load(&client, &base, pid, health_targets.clone()).await;
    let _warm = load(&client, &base, pid, targets.clone()).await;
    // For profiling one route: LANYARD_BENCH_SOAK=healthz|credentials loads only it, for a while.
    if let Ok(route) = std::env::var("LANYARD_BENCH_SOAK") {
        let soak = if route == "healthz" {
            health_targets.clone()
        } else {
            targets.clone()
        };
        eprintln!("soaking {route}…");
        for _ in 0..20 {
            load(&client, &base, pid, soak.clone()).await;
        }
        return;
    }
    let mut rounds = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (health, creds) = if round % 2 == 0 {
            let health = load(&client, &base, pid, health_targets.clone()).await;
            (health, load(&client, &base, pid, targets.clone()).await)
        } else {
            let creds = load(&client, &base, pid, targets.clone()).await;
            (
                load(&client, &base, pid, health_targets.clone()).await,
                creds,
            )
        };
        rounds.push((health, creds));
    }
    rounds.sort_by(|a, b| {
        (a.1.per_second / a.0.per_second).total_cmp(&(b.1.per_second / b.0.per_second))
    });
    let ratios: Vec<String> = rounds
        .iter()
        .map(|(h, c)| format!("{:.2}", c.per_second / h.per_second))
        .collect();
    let mut cpu_ratios: Vec<f64> = rounds
        .iter()
        .map(|(h, c)| h.cpu_per_request.as_secs_f64() / c.cpu_per_request.as_secs_f64())
        .collect();
    cpu_ratios.sort_by(f64::total_cmp);
    let cpu_ratio = cpu_ratios[ROUNDS / 2];
    let (health, creds) = rounds.swap_remove(ROUNDS / 2);

    eprintln!("measuring the credential path alone and while another team floods…");
    let flood_key = create_team(&bin, &data_dir, &env, "Flood", "free", &fake.host);
    let flood = flood::measure(&client, &base, pid, targets.clone(), &flood_key, &repo).await;

    eprintln!("measuring the cached path while GitHub stalls…");
    let mut new_scopes = Vec::new();
    for repo in &stall_repos {
        let url = fake.repo_url("acme", repo);
        let (sid, runner) = sessions(&client, &base, &key, &url, 1).await.remove(0);
        new_scopes.push((format!("/v1/sessions/{sid}/credentials/github"), runner));
    }
    let stall = abuse::github_stall(
        &client,
        &base,
        pid,
        targets.clone(),
        &github_proxy,
        new_scopes,
    )
    .await;

    let addr = base.trim_start_matches("http://").to_string();
    eprintln!("a slowloris crowd, then a flood of made-up methods…");
    let slow = abuse::slowloris(&client, &base, &addr, pid, HEAD_TIMEOUT).await;
    let methods = abuse::method_flood(&client, &base, &addr, pid).await;

    eprintln!(
        "creating {} more sessions and fetching once each…",
        SESSIONS_FOR_MEMORY - SESSIONS_FOR_MINTS
    );
    let mut all = first;
    let mut remaining = SESSIONS_FOR_MEMORY - SESSIONS_FOR_MINTS;
    let mut team = 1;
    while remaining > 0 {
        team += 1;
        let key = create_team(
            &bin,
            &data_dir,
            &env,
            &format!("Bench {team}"),
            "growth",
            &fake.host,
        );
        let n = remaining.min(4_000);
        all.extend(sessions(&client, &base, &key, &repo, n).await);
        remaining -= n;
    }
    fetch_each(&client, &base, &credential_targets(&all)).await;
    let rss_loaded = rss_kib(pid);

    println!();
    println!(
        "lanyard-bench: release server on SQLite, fake GitHub in-process, 2 cores, loopback only"
    );
    println!("server {} with RUST_LOG={log_level}", bin.display());
    println!("{:<58} {:>14}", "figure", "value");
    println!(
        "{:<58} {:>14.0}",
        "/healthz throughput (req/s, baseline)", health.per_second
    );
    println!(
        "{:<58} {:>14.0}",
        "credential path throughput (req/s)", creds.per_second
    );
    println!(
        "{:<58} {:>14.2}",
        "credential / healthz throughput ratio, median round",
        creds.per_second / health.per_second
    );
    println!("{:<58} {:>14}", "ratio in each round", ratios.join(" "));
    println!(
        "{:<58} {:>14.2?}",
        "server CPU per /healthz request", health.cpu_per_request
    );
    println!(
        "{:<58} {:>14.2?}",
        "server CPU per credential request", creds.cpu_per_request
    );
    println!(
        "{:<58} {:>14.2}",
        "healthz CPU / credential CPU (the ratio at full load), median", cpu_ratio
    );
    println!("{:<58} {:>14.2?}", "/healthz p99 latency", health.p99);
    println!("{:<58} {:>14.2?}", "credential path p50 latency", creds.p50);
    println!("{:<58} {:>14.2?}", "credential path p99 latency", creds.p99);
    println!(
        "{:<58} {:>14.2}",
        "upstream mints per 1,000 fetches across 1,000 sessions", mints_per_thousand
    );
    println!(
        "{:<58} {:>11.1} MB",
        "server RSS at start",
        rss_idle as f64 / 1024.0
    );
    println!(
        "{:<58} {:>11.1} MB",
        "server RSS with 10,000 live sessions",
        rss_loaded as f64 / 1024.0
    );
    println!(
        "{:<58} {:>14.0}",
        "flood: another team's requests per second", flood.flood_per_second
    );
    println!(
        "{:<58} {:>13.1}%",
        "flood: share refused with 429",
        flood.flood_limited_share * 100.0
    );
    println!(
        "{:<58} {:>14.2}",
        "credential path under flood / alone, throughput (median)",
        flood.flooded.per_second / flood.alone.per_second
    );
    println!(
        "{:<58} {:>6.2?} / {:>6.2?}",
        "credential path p99 alone / under flood", flood.alone.p99, flood.flooded.p99
    );
    println!(
        "{:<58} {:>14.2}",
        "cached path with GitHub stalled / answering, throughput",
        stall.stalled.per_second / stall.normal.per_second
    );
    println!(
        "{:<58} {:>6.2?} / {:>6.2?}",
        "cached path p99 answering / stalled", stall.normal.p99, stall.stalled.p99
    );
    println!(
        "{:<58} {:>14}",
        "mints hanging on the stalled GitHub meanwhile", stall.mints_pending
    );
    println!(
        "{:<58} {:>9} of {:>3}",
        "slowloris: connections closed by the server", slow.closed_by_server, slow.opened
    );
    println!(
        "{:<58} {:>14.1?}",
        "slowloris: longest a connection was held", slow.longest_held
    );
    println!(
        "{:<58} {:>4.1} / {:>4.1} / {:>4.1} MB",
        "slowloris: RSS before / during / after",
        slow.rss_before_kib as f64 / 1024.0,
        slow.rss_during_kib as f64 / 1024.0,
        slow.rss_after_kib as f64 / 1024.0
    );
    println!(
        "{:<58} {:>14.0}",
        "slowloris: /healthz req/s while the crowd is connected", slow.healthz_during.per_second
    );
    println!("{:<58} {:>14}", "made-up 20 KB methods sent", methods.sent);
    println!(
        "{:<58} {:>14}",
        "their answers",
        methods
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}:{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<58} {:>5.1} / {:>5.1} MB",
        "method flood: RSS before / after",
        methods.rss_before_kib as f64 / 1024.0,
        methods.rss_after_kib as f64 / 1024.0
    );
    println!(
        "{:<58} {:>6} / {:>6} B",
        "method flood: /metrics size before / after",
        methods.metrics_bytes_before,
        methods.metrics_bytes_after
    );
    println!("{:<58} {:>14}", "total upstream mints", fake.mint_count());
    let log_bytes = std::fs::metadata(&log_path).map_or(0, |m| m.len());
    println!(
        "{:<58} {:>11.1} MB",
        "server log written",
        log_bytes as f64 / 1e6
    );
}
