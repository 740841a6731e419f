//! `lanyard-runner` end to end: the real binary, the real server, the fake GitHub and real git.

mod agent;
mod faults;
mod soak;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_core::{SystemClock, Tier};
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::{TestApp, TestTeam};

pub(crate) const RUNNER: &str = env!("CARGO_BIN_EXE_lanyard-runner");

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) fake: FakeGithub,
    pub(crate) team: TestTeam,
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) async fn world(env: &[(&str, &str)]) -> World {
    let fake = FakeGithub::start(Arc::new(SystemClock)).await;
    fake.add_installation(11, "acme", &["widgets", "gadgets"]);
    let mut builder = TestApp::builder().real_time().github(&fake);
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    let app = builder.spawn().await;
    let team = app.create_team("Runner", Tier::Pro).await;
    assert_eq!(
        app.connect_installation(&team, &fake.host, "acme", 11)
            .await
            .status(),
        201
    );
    World {
        app,
        fake,
        team,
        dir: tempfile::TempDir::new().unwrap(),
    }
}

impl World {
    /// A session and a token file holding its runner token.
    async fn session(&self, repos: &[&str]) -> (String, PathBuf) {
        let urls: Vec<String> = repos
            .iter()
            .map(|r| self.fake.repo_url("acme", r))
            .collect();
        let (sid, runner_token) = self.app.start_session(&self.team, &urls).await;
        let file = self.dir.path().join(format!("token-{sid}"));
        lanyard_testkit::write_private(&file, format!("{runner_token}\n"));
        (sid, file)
    }

    fn runner(
        &self,
        sid: &str,
        token_file: &Path,
        extra: &[&str],
        script: &str,
    ) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(RUNNER);
        cmd.args([
            "run",
            "--api",
            &self.app.base_url,
            "--session",
            sid,
            "--token-file",
        ])
        .arg(token_file)
        .args(extra)
        .args(["--", "sh", "-c", script])
        .env("RUNNER", RUNNER)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", self.dir.path())
        .current_dir(self.dir.path())
        .kill_on_drop(true);
        cmd
    }
}

pub(crate) async fn output(mut cmd: tokio::process::Command, limit: Duration) -> Output {
    tokio::time::timeout(limit, cmd.output())
        .await
        .expect("runner finished in time")
        .unwrap()
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits until the agent has written `path`: it is running, with its signal handling in place.
/// Polls rather than sleeping for a guessed start-up time.
pub(crate) async fn wait_for_file(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
