//! `lanyard-bench`: the credential-path benchmark.
//!
//! Starts the release `lanyard` binary (next to this one) against an in-process fake GitHub and
//! prints, measured in the same run:
//! - credential-path throughput divided by `/healthz` throughput,
//! - the credential path's p50 and p99 latency,
//! - upstream mints per 1,000 fetches across 1,000 sessions,
//! - the server's resident memory with 10,000 live sessions.
//!
//! Run it with `scripts/bench.sh` (it builds both binaries in release mode first). All traffic
//! goes to 127.0.0.1, and every loop is bounded.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_core::SystemClock;
use lanyard_testkit::fake_github::{app_private_key_path, FakeGithub};

const REQUESTS: usize = 10_000;
/// Rounds of /healthz then the credential path, alternating, so drift hits both alike.
const ROUNDS: usize = 7;
const CONCURRENCY: usize = 32;
const SESSIONS_FOR_MINTS: usize = 1_000;
const SESSIONS_FOR_MEMORY: usize = 10_000;

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

/// The server under test: `LANYARD_BENCH_SERVER`, or the `lanyard` built next to this binary.
/// Pointing it at an older build measures before and after with the same driver.
fn lanyard_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let path = std::env::var_os("LANYARD_BENCH_SERVER")
        .map_or_else(|| exe.with_file_name("lanyard"), PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: run scripts/bench.sh, which builds it",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

struct Load {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// The server's CPU time per request: steadier than throughput on a shared machine.
    cpu_per_request: Duration,
}

/// CPU time the process has used, summed over its threads (`/proc/PID/task/*/schedstat`, ns).
fn cpu_time(pid: u32) -> Duration {
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

/// `REQUESTS` GETs, `CONCURRENCY` at a time, cycling through `targets` of (path, bearer).
async fn load(
    client: &reqwest::Client,
    base: &str,
    pid: u32,
    targets: Arc<Vec<(String, Option<String>)>>,
) -> Load {
    let cpu_before = cpu_time(pid);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let client = client.clone();
        let base = base.to_string();
        let targets = targets.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(REQUESTS / CONCURRENCY);
            let mut i = worker;
            while i < REQUESTS {
                let (path, bearer) = &targets[i % targets.len()];
                let t = Instant::now();
                let mut req = client.get(format!("{base}{path}"));
                if let Some(b) = bearer {
                    req = req.bearer_auth(b);
                }
                let r = req.send().await.expect("request");
                assert!(r.status().is_success(), "{path}: {}", r.status());
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

/// A growth-tier team with its App installation bound, both through the operator's CLI (the
/// same commands in every version of Lanyard, so an older build can be measured alike).
/// Returns the team's API key.
fn create_team(
    bin: &PathBuf,
    data: &str,
    env: &[(&str, String)],
    name: &str,
    host: &str,
) -> String {
    let out = Command::new(bin)
        .args([
            "admin",
            "create-team",
            "--name",
            name,
            "--tier",
            "growth",
            "--data-dir",
            data,
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stderr(Stdio::null())
        .output()
        .expect("create-team");
    assert!(out.status.success());
    let team: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let team_id = team["team_id"].as_str().unwrap();
    let out = Command::new(bin)
        .args([
            "admin",
            "connect-github",
            "--team",
            team_id,
            "--host",
            host,
            "--owner",
            "acme",
            "--installation-id",
            "1",
            "--data-dir",
            data,
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stderr(Stdio::null())
        .output()
        .expect("connect-github");
    assert!(out.status.success(), "connect-github failed");
    team["api_key"].as_str().unwrap().to_string()
}

async fn sessions(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    repo: &str,
    n: usize,
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..8 {
        let client = client.clone();
        let base = base.to_string();
        let key = key.to_string();
        let repo = repo.to_string();
        let count = n / 8 + usize::from(chunk < n % 8);
        tasks.spawn(async move {
            let mut mine = Vec::with_capacity(count);
            for _ in 0..count {
                let r = client
                    .post(format!("{base}/v1/sessions"))
                    .bearer_auth(&key)
                    .json(&serde_json::json!({"repos": [repo]}))
                    .send()
                    .await
                    .expect("create session");
                let body: serde_json::Value = r.json().await.unwrap();
                mine.push((
                    body["session_id"]
                        .as_str()
                        .expect("session created")
                        .to_string(),
                    body["runner_token"].as_str().unwrap().to_string(),
                ));
            }
            mine
        });
    }
    while let Some(s) = tasks.join_next().await {
        out.extend(s.unwrap());
    }
    out
}

/// Fetches every target once, 64 at a time.
async fn fetch_each(client: &reqwest::Client, base: &str, targets: &[(String, Option<String>)]) {
    for chunk in targets.chunks(64) {
        let mut batch = tokio::task::JoinSet::new();
        for (path, bearer) in chunk.iter().cloned() {
            let client = client.clone();
            let url = format!("{base}{path}");
            batch.spawn(async move {
                let mut req = client.get(url);
                if let Some(b) = bearer {
                    req = req.bearer_auth(b);
                }
                assert!(req.send().await.unwrap().status().is_success());
            });
        }
        while batch.join_next().await.is_some() {}
    }
}

fn credential_targets(sessions: &[(String, String)]) -> Arc<Vec<(String, Option<String>)>> {
    Arc::new(
        sessions
            .iter()
            .map(|(sid, runner)| {
                (
                    format!("/v1/sessions/{sid}/credentials/github"),
                    Some(runner.clone()),
                )
            })
            .collect(),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = lanyard_binary();
    let fake = FakeGithub::start(Arc::new(SystemClock)).await;
    fake.add_installation(1, "acme", &["widgets"]);
    let data = tempfile::TempDir::new().unwrap();
    let data_dir = data.path().to_str().unwrap().to_string();
    let port = free_port();
    let key_file = app_private_key_path().to_str().unwrap().to_string();
    let env: Vec<(&str, String)> = vec![
        ("LANYARD_DATA_DIR", data_dir.clone()),
        ("LANYARD_GITHUB_HOST", fake.host.clone()),
        ("LANYARD_GITHUB_API_URL", fake.api_url.clone()),
        ("LANYARD_GITHUB_APP_ID", fake.app_id.to_string()),
        ("LANYARD_GITHUB_APP_PRIVATE_KEY_FILE", key_file),
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
    assert!(ready, "lanyard did not become ready");
    let pid = server.child.id();
    let base = server.base.clone();
    let rss_idle = rss_kib(pid);

    let key = create_team(&bin, &data_dir, &env, "Bench A", &fake.host);
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
    for _ in 0..ROUNDS {
        let health = load(&client, &base, pid, health_targets.clone()).await;
        let creds = load(&client, &base, pid, targets.clone()).await;
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

    eprintln!(
        "creating {} more sessions and fetching once each…",
        SESSIONS_FOR_MEMORY - SESSIONS_FOR_MINTS
    );
    let mut all = first;
    let mut remaining = SESSIONS_FOR_MEMORY - SESSIONS_FOR_MINTS;
    let mut team = 1;
    while remaining > 0 {
        team += 1;
        let key = create_team(&bin, &data_dir, &env, &format!("Bench {team}"), &fake.host);
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
    println!("{:<58} {:>14}", "total upstream mints", fake.mint_count());
    let log_bytes = std::fs::metadata(&log_path).map_or(0, |m| m.len());
    println!(
        "{:<58} {:>11.1} MB",
        "server log written",
        log_bytes as f64 / 1e6
    );
}
