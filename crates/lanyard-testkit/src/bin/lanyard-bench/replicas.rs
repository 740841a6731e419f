//! Three replicas (`LANYARD_BENCH_MODE=replicas`): three release servers on one Postgres
//! database and one Redis, as a deployment runs them, with every runner's fetches spread over
//! all three. GitHub's tokens live 4 minutes here and the floor is 60 s, so a 5-minute run holds
//! several renewals of every scope: the figures are upstream mints per hour against the ideal of
//! one mint per scope per renewal (whatever the replica count), Redis commands per second, and
//! the credential path's latency. Postgres and Redis come from `LANYARD_BENCH_DATABASE_URL` and
//! `LANYARD_BENCH_REDIS_URL` (default: the local servers); the database is a fresh one. Every
//! loop is bounded and targets only 127.0.0.1.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_core::SystemClock;
use lanyard_testkit::fake_github::{app_private_key_path, FakeGithub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::capacity::quantile;
use crate::setup::{create_team, fetch_each, free_port, rss_kib, sessions};
use crate::Server;

const REPLICAS: usize = 3;
/// Distinct scopes (one repository each), and live sessions on each.
const SCOPES: usize = 40;
const SESSIONS_PER_SCOPE: usize = 50;
/// GitHub's token lifetime here, and the floor: each scope is renewed every 90 s (half the
/// 3 minutes it is servable for, at most 5 minutes ahead).
const TOKEN_LIFE: Duration = Duration::from_secs(240);
const FLOOR: &str = "60s";
const RENEWAL: Duration = Duration::from_secs(90);
/// How long the load runs, and how often each runner fetches in it (6 times a real runner's
/// once a minute, to press on the renewals).
const RUN: Duration = Duration::from_secs(300);
const PERIOD: Duration = Duration::from_secs(10);
const IN_FLIGHT: usize = 256;

struct Replica {
    server: Server,
    _data: tempfile::TempDir,
}

fn start(bin: &PathBuf, env: &[(&str, String)], data: &tempfile::TempDir) -> Server {
    let port = free_port();
    let log = std::fs::File::create(data.path().join("server.log")).expect("log file");
    let child = Command::new(bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("LANYARD_DATA_DIR", data.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start lanyard");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn ready(client: &reqwest::Client, base: &str) {
    for _ in 0..400 {
        let r = client.get(format!("{base}/readyz")).send().await;
        if r.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("a replica at {base} did not become ready");
}

/// Redis's count of commands processed since it started (`INFO stats`), over a plain socket.
async fn redis_commands(url: &str) -> u64 {
    let addr = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("reach Redis");
    socket
        .write_all(b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    // One bulk reply of a few KB; read until the stats section's last line has arrived.
    while !String::from_utf8_lossy(&reply).contains("total_commands_processed:")
        || !reply.ends_with(b"\r\n")
    {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
            .await
            .expect("Redis answers INFO")
            .unwrap();
        assert!(n > 0, "Redis closed the connection");
        reply.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&reply)
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_commands_processed")
}

pub(crate) async fn run(bin: &PathBuf) {
    let pg = std::env::var("LANYARD_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis = std::env::var("LANYARD_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let database = lanyard_store::testing::fresh_postgres_database(&pg).await;
    let fake = FakeGithub::start(Arc::new(SystemClock)).await;
    fake.set_token_lifetime(TOKEN_LIFE);
    let repos: Vec<String> = (0..SCOPES).map(|i| format!("repo{i}")).collect();
    let names: Vec<&str> = repos.iter().map(String::as_str).collect();
    fake.add_installation(1, "acme", &names);
    let env: Vec<(&str, String)> = vec![
        ("LANYARD_DATABASE_URL", database.expose().to_string()),
        ("LANYARD_REDIS_URL", redis.clone()),
        ("LANYARD_ENCRYPTION_KEY", "42".repeat(32)),
        ("LANYARD_JWT_SECRET", "bench-replicas-".repeat(4)),
        ("LANYARD_TOKEN_MIN_REMAINING", FLOOR.into()),
        ("LANYARD_GITHUB_HOST", fake.host.clone()),
        ("LANYARD_GITHUB_API_URL", fake.api_url.clone()),
        ("LANYARD_GITHUB_APP_ID", fake.app_id.to_string()),
        (
            "LANYARD_GITHUB_APP_PRIVATE_KEY_FILE",
            app_private_key_path().to_str().unwrap().to_string(),
        ),
    ];
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        let data = tempfile::TempDir::new().unwrap();
        let server = start(bin, &env, &data);
        ready(&client, &server.base).await;
        replicas.push(Replica {
            server,
            _data: data,
        });
    }
    let bases: Vec<String> = replicas.iter().map(|r| r.server.base.clone()).collect();
    let first_data = replicas[0]._data.path().join("data");
    let key = create_team(
        bin,
        first_data.to_str().unwrap(),
        &env,
        "Replicas",
        "growth",
        &fake.host,
    );
    eprintln!(
        "replicas: {REPLICAS} servers, {} sessions over {SCOPES} scopes…",
        SCOPES * SESSIONS_PER_SCOPE
    );
    let mut targets: Vec<(String, String)> = Vec::new();
    for (i, repo) in repos.iter().enumerate() {
        let url = fake.repo_url("acme", repo);
        let base = &bases[i % REPLICAS];
        let made = sessions(&client, base, &key, &url, SESSIONS_PER_SCOPE).await;
        let first: Vec<(String, Option<String>)> = made
            .iter()
            .take(1)
            .map(|(sid, runner)| {
                let path = format!("/v1/sessions/{sid}/credentials/github");
                (path, Some(runner.clone()))
            })
            .collect();
        fetch_each(&client, base, &first).await;
        targets.extend(made);
    }
    let targets = Arc::new(targets);
    let mints_before = fake.mint_count();
    let commands_before = redis_commands(&redis).await;
    eprintln!(
        "replicas: every runner fetching every {}s, each fetch on the next replica, for {}s…",
        PERIOD.as_secs(),
        RUN.as_secs()
    );
    let gap = PERIOD / u32::try_from(targets.len()).unwrap();
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    let rounds = (RUN.as_secs() / PERIOD.as_secs()) as usize;
    let mut n = 0u32;
    for round in 0..rounds {
        for (i, (sid, runner)) in targets.iter().enumerate() {
            tokio::time::sleep_until((started + gap * n).into()).await;
            n += 1;
            let permit = permits.clone().acquire_owned().await.expect("open");
            let url = format!(
                "{}/v1/sessions/{sid}/credentials/github",
                bases[(i + round) % REPLICAS]
            );
            let (client, runner) = (client.clone(), runner.clone());
            tasks.spawn(async move {
                let _permit = permit;
                let sent = Instant::now();
                let r = client.get(url).bearer_auth(runner).send().await;
                (sent.elapsed(), r.is_ok_and(|r| r.status().is_success()))
            });
        }
    }
    let mut took = Vec::new();
    let mut errors = 0usize;
    while let Some(done) = tasks.join_next().await {
        let (elapsed, ok) = done.expect("a request task");
        took.push(elapsed);
        errors += usize::from(!ok);
    }
    let elapsed = started.elapsed();
    let mints = fake.mint_count() - mints_before;
    let commands = redis_commands(&redis).await - commands_before;
    took.sort();
    let hours = elapsed.as_secs_f64() / 3600.0;
    let ideal = SCOPES as f64 * elapsed.as_secs_f64() / RENEWAL.as_secs_f64();
    let rss: Vec<String> = replicas
        .iter()
        .map(|r| format!("{:.1}", rss_kib(r.server.child.id()) as f64 / 1024.0))
        .collect();
    println!();
    println!(
        "lanyard-bench replicas: {REPLICAS} release replicas on Postgres + Redis, 2 cores, loopback only"
    );
    println!("{:<62} {:>14}", "figure", "value");
    println!(
        "{:<62} {:>14}",
        "live sessions / distinct scopes",
        format!("{} / {SCOPES}", targets.len())
    );
    println!(
        "{:<62} {:>14.0}",
        "credential requests/s (all replicas)",
        took.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "{:<62} {:>6.2?} / {:>6.2?}",
        "credential p50 / p99",
        quantile(&took, 0.50),
        quantile(&took, 0.99)
    );
    println!("{:<62} {:>14}", "failed requests", errors);
    println!(
        "{:<62} {:>14.0}",
        "upstream mints per hour (4-minute tokens, 60 s floor)",
        mints as f64 / hours
    );
    println!(
        "{:<62} {:>14.2}",
        "mints ÷ ideal (one per scope per 90 s renewal, any replica count)",
        mints as f64 / ideal
    );
    println!(
        "{:<62} {:>14.0}",
        "Redis commands per second (all replicas)",
        commands as f64 / elapsed.as_secs_f64()
    );
    println!(
        "{:<62} {:>14.3}",
        "Redis commands per credential request",
        commands as f64 / took.len() as f64
    );
    println!("{:<62} {:>14}", "replicas' RSS (MB)", rss.join(" / "));
}
