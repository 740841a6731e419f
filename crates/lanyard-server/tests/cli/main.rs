//! The `lanyard` binary as a user runs it: configuration errors, serve, admin, restart, signals,
//! logs, and the e2e client. This file holds what the tests share.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lanyard_store::testing::{fresh_postgres_database, postgres_under_test};
use lanyard_store::DatabaseUrl;

mod admin;
mod completions;
mod config;
mod dev;
mod doctor;
mod e2e;
mod e2e_run;
mod logs;
mod modes;
mod serve;

const BIN: &str = env!("CARGO_BIN_EXE_lanyard");

/// A command with a clean environment: only PATH, and no inherited LANYARD_* variables.
pub(crate) fn lanyard(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

/// Runs `cmd` to its end; it must succeed (its stderr is the failure message). Its stdout.
pub(crate) fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run the command");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub(crate) async fn database_for(dir: &Path) -> DatabaseUrl {
    match postgres_under_test() {
        Some(server) => fresh_postgres_database(&server).await,
        None => DatabaseUrl::sqlite_in(dir),
    }
}

/// A `lanyard serve` child and the lines it logs.
pub(crate) struct Served {
    child: Child,
    pub(crate) base_url: String,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    pub(crate) fn start(dir: &Path, db: &DatabaseUrl, extra_env: &[(&str, &str)]) -> Self {
        let mut cmd = lanyard(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
        ]);
        cmd.env("LANYARD_DATABASE_URL", db.expose())
            .stderr(Stdio::piped())
            .stdout(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn lanyard serve");
        let (tx, log) = mpsc::channel();
        for pipe in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut seen = Vec::new();
        let base_url = loop {
            let line = log
                .recv_timeout(Duration::from_secs(60))
                .expect("server logs its address");
            seen.push(line.clone());
            if let Some(i) = line.find("listening on http://") {
                let rest = &line[i + "listening on ".len()..];
                break rest
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .unwrap()
                    .to_string();
            }
        };
        Served {
            child,
            base_url,
            log,
            seen,
        }
    }

    /// SIGTERM, then the exit status and every line logged.
    pub(crate) fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(20));
        // Until the reader has read the pipe to its end (it closes the channel then).
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(line);
        }
        (status, self.seen)
    }
}

pub(crate) fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn create_team(dir: &Path, db: &DatabaseUrl) -> serde_json::Value {
    create_team_with(dir, db, &[])
}

pub(crate) fn create_team_with(
    dir: &Path,
    db: &DatabaseUrl,
    env: &[(&str, &str)],
) -> serde_json::Value {
    let out = lanyard(&[
        "admin",
        "create-team",
        "--name",
        "Acme",
        "--tier",
        "pro",
        "--data-dir",
        dir.to_str().unwrap(),
    ])
    .env("LANYARD_DATABASE_URL", db.expose())
    .envs(env.iter().copied())
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is exactly the JSON")
}
