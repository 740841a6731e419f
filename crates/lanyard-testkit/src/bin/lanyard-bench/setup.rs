//! Teams, sessions and first fetches: the state the measurements run on.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

/// A team of `tier` with its App installation bound, both through the operator's CLI (the
/// same commands in every version of Lanyard, so an older build can be measured alike).
/// Returns the team's API key.
pub(crate) fn create_team(
    bin: &PathBuf,
    data: &str,
    env: &[(&str, String)],
    name: &str,
    tier: &str,
    host: &str,
) -> String {
    let out = Command::new(bin)
        .args([
            "admin",
            "create-team",
            "--name",
            name,
            "--tier",
            tier,
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

pub(crate) async fn sessions(
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
pub(crate) async fn fetch_each(
    client: &reqwest::Client,
    base: &str,
    targets: &[(String, Option<String>)],
) {
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

pub(crate) fn credential_targets(
    sessions: &[(String, String)],
) -> Arc<Vec<(String, Option<String>)>> {
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

/// The server under test: `LANYARD_BENCH_SERVER`, or the `lanyard` built next to this binary.
/// Pointing it at an older build measures before and after with the same driver.
pub(crate) fn lanyard_binary() -> PathBuf {
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

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn rss_kib(pid: u32) -> u64 {
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
