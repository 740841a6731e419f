//! Runner benchmark: `cargo bench -p lanyard-runner --bench runner`.
//!
//! Runs the release `lanyard-runner` against an in-process server and fake GitHub (127.0.0.1 only)
//! and prints, each next to a baseline measured in the same run:
//! - time from start to the child running (baseline: the same child without the runner),
//! - resident memory and CPU of the runner over an idle period refreshing every second,
//! - p50/p99 of a credential `get` through the socket, and of a whole `git-credential get`
//!   helper process (baseline: `lanyard-runner --version`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_core::wire::{SocketReply, SocketRequest};
use lanyard_core::{SystemClock, Tier};
use lanyard_runner::ipc;
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::TestApp;

const RUNNER: &str = env!("CARGO_BIN_EXE_lanyard-runner");
const IDLE_SECONDS: u64 = 30;

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn proc_stat(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((rss, ticks))
}

fn wait_for(path: &Path, limit: Duration) -> Duration {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_micros(200));
    }
    start.elapsed()
}

fn runner(app: &TestApp, sid: &str, token: &Path, extra: &[&str], script: &str) -> Command {
    let mut cmd = Command::new(RUNNER);
    cmd.args([
        "run",
        "--api",
        &app.base_url,
        "--session",
        sid,
        "--token-file",
    ])
    .arg(token)
    .args(extra)
    .args(["--", "sh", "-c", script])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let fake = FakeGithub::start(Arc::new(SystemClock)).await;
    fake.add_installation(1, "acme", &["widgets"]);
    let app = TestApp::builder().real_time().github(&fake).spawn().await;
    let team = app.create_team("Bench", Tier::Pro).await;
    assert_eq!(
        app.connect_installation(&team, &fake.host, "acme", 1)
            .await
            .status(),
        201
    );
    let (sid, runner_token) = app
        .start_session(&team, &[fake.repo_url("acme", "widgets")])
        .await;
    let dir = tempfile::TempDir::new().unwrap();
    let token: PathBuf = dir.path().join("token");
    lanyard_testkit::write_private(&token, &runner_token);

    // Start-up: until the child has run its first command.
    let mut direct = Vec::new();
    let mut wrapped = Vec::new();
    for i in 0..7 {
        let marker = dir.path().join(format!("direct{i}"));
        let started = Instant::now();
        let mut child = Command::new("sh")
            .args(["-c", &format!("touch {}", marker.display())])
            .spawn()
            .unwrap();
        wait_for(&marker, Duration::from_secs(10));
        direct.push(started.elapsed());
        child.wait().unwrap();

        let marker = dir.path().join(format!("wrapped{i}"));
        let started = Instant::now();
        let mut child = runner(
            &app,
            &sid,
            &token,
            &[],
            &format!("touch {}", marker.display()),
        )
        .spawn()
        .unwrap();
        wait_for(&marker, Duration::from_secs(10));
        wrapped.push(started.elapsed());
        child.wait().unwrap();
    }
    let (direct, wrapped) = (median(direct), median(wrapped));

    // Idle period with a refresh every second.
    let sockfile = dir.path().join("socket-path");
    let script = format!(
        "echo \"$LANYARD_RUNNER_SOCKET\" > {}; sleep {}",
        sockfile.display(),
        IDLE_SECONDS + 20
    );
    let mut idle = runner(&app, &sid, &token, &["--refresh-interval", "1s"], &script)
        .spawn()
        .unwrap();
    let pid = idle.id();
    wait_for(&sockfile, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let socket = PathBuf::from(std::fs::read_to_string(&sockfile).unwrap().trim());
    let (_, ticks_before) = proc_stat(pid).unwrap();
    let started = Instant::now();
    let mut max_rss = 0;
    while started.elapsed() < Duration::from_secs(IDLE_SECONDS) {
        max_rss = max_rss.max(proc_stat(pid).unwrap().0);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, ticks_after) = proc_stat(pid).unwrap();
    let clk_tck: f64 = String::from_utf8(
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap_or(100.0);
    let cpu_seconds = (ticks_after - ticks_before) as f64 / clk_tck;
    let cpu_share = cpu_seconds / started.elapsed().as_secs_f64();
    let refreshed = match ipc::call(&socket, &SocketRequest::Status).await.unwrap() {
        SocketReply::Status { credentials } => credentials[0].last_refresh.to_rfc3339(),
        other => panic!("unexpected reply {other:?}"),
    };

    // A credential get through the socket, and a whole helper process as git runs it.
    let mut socket_gets = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        let reply = ipc::call(
            &socket,
            &SocketRequest::Get {
                host: fake.host.clone(),
                owner: Some("acme".into()),
                protocol: Some("http".into()),
            },
        )
        .await
        .unwrap();
        socket_gets.push(t.elapsed());
        assert!(matches!(reply, SocketReply::Token(_)), "{reply:?}");
    }
    socket_gets.sort_unstable();
    let input = format!(
        "protocol=http\nhost={}\npath=acme/widgets.git\n\n",
        fake.host
    );
    let mut helper = Vec::new();
    let mut version = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        let mut child = Command::new(RUNNER)
            .args(["git-credential", "get"])
            .env("LANYARD_RUNNER_SOCKET", &socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        helper.push(t.elapsed());
        assert!(String::from_utf8_lossy(&out.stdout).contains("password="));
        let t = Instant::now();
        Command::new(RUNNER)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        version.push(t.elapsed());
    }
    helper.sort_unstable();
    version.sort_unstable();
    let _ = idle.kill();
    let _ = idle.wait();

    println!();
    println!(
        "lanyard-runner bench: release runner, in-process server + fake GitHub, loopback only"
    );
    println!("{:<62} {:>12}", "figure", "value");
    println!(
        "{:<62} {:>12.2?}",
        "start to child running, without the runner (baseline)", direct
    );
    println!(
        "{:<62} {:>12.2?}",
        "start to child running, under lanyard-runner", wrapped
    );
    println!(
        "{:<62} {:>12.2}",
        "  ratio",
        wrapped.as_secs_f64() / direct.as_secs_f64()
    );
    println!(
        "{:<62} {:>9.1} MB",
        format!("runner max RSS over {IDLE_SECONDS} s, refreshing every 1 s (target <= 10)"),
        max_rss as f64 / 1024.0
    );
    println!(
        "{:<62} {:>11.3}%",
        format!("runner CPU over the same {IDLE_SECONDS} s (one core = 100%)"),
        cpu_share * 100.0
    );
    println!(
        "{:<62} {:>12}",
        "  last refresh seen in status",
        refreshed.get(11..19).unwrap_or(&refreshed)
    );
    println!(
        "{:<62} {:>12.2?}",
        "socket get p50",
        percentile(&socket_gets, 50)
    );
    println!(
        "{:<62} {:>12.2?}",
        "socket get p99",
        percentile(&socket_gets, 99)
    );
    println!(
        "{:<62} {:>12.2?}",
        "git-credential get process p99",
        percentile(&helper, 99)
    );
    println!(
        "{:<62} {:>12.2?}",
        "lanyard-runner --version process p99 (baseline)",
        percentile(&version, 99)
    );
    println!(
        "{:<62} {:>12.2}",
        "  ratio",
        percentile(&helper, 99).as_secs_f64() / percentile(&version, 99).as_secs_f64()
    );
}
