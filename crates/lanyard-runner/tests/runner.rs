//! `lanyard-runner` end to end: the real binary, the real server, the fake GitHub and real git.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_core::{SystemClock, Tier};
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::{TestApp, TestTeam};

const RUNNER: &str = env!("CARGO_BIN_EXE_lanyard-runner");

struct World {
    app: TestApp,
    fake: FakeGithub,
    team: TestTeam,
    dir: tempfile::TempDir,
}

async fn world(env: &[(&str, &str)]) -> World {
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
        std::fs::write(&file, format!("{runner_token}\n")).unwrap();
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

async fn output(mut cmd: tokio::process::Command, limit: Duration) -> Output {
    tokio::time::timeout(limit, cmd.output())
        .await
        .expect("runner finished in time")
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_runner_token_or_unreachable_server_fails_fast() {
    let w = world(&[]).await;
    let (sid, file) = w.session(&["widgets"]).await;
    let bad = w.dir.path().join("bad-token");
    std::fs::write(&bad, "lrt_0000000000000000000000000000000000000000xx").unwrap();
    let started = Instant::now();
    let o = output(
        w.runner(&sid, &bad, &[], "echo should-not-run"),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("runner token was refused"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("should-not-run"));
    assert!(started.elapsed() < Duration::from_secs(10));

    let mut cmd = w.runner(&sid, &file, &[], "echo should-not-run");
    cmd.args(["--api", "http://127.0.0.1:1"]);
    let mut unreachable = tokio::process::Command::new(RUNNER);
    unreachable
        .args([
            "run",
            "--api",
            "http://127.0.0.1:1",
            "--session",
            &sid,
            "--token-file",
        ])
        .arg(&file)
        .args(["--", "true"]);
    let o = output(unreachable, Duration::from_secs(20)).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("cannot reach Lanyard"), "{}", text(&o));
    let missing = w.dir.path().join("no-such-file");
    let o = output(
        w.runner(&sid, &missing, &[], "true"),
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("no-such-file"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_pass_through_and_signals_are_forwarded() {
    let w = world(&[]).await;
    let (sid, file) = w.session(&["widgets"]).await;
    let o = output(
        w.runner(&sid, &file, &[], "exit 7"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(o.status.code(), Some(7));

    let marker = w.dir.path().join("got-term");
    let script = format!(
        "trap 'echo term > {}; exit 42' TERM; while true; do sleep 0.1; done",
        marker.display()
    );
    let mut child = w.runner(&sid, &file, &[], &script).spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(42),
        "the child's exit code after the forwarded SIGTERM"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "term");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_token_and_status_inside_the_child() {
    let w = world(&[]).await;
    let (sid, file) = w.session(&["widgets"]).await;
    let host = w.fake.host.clone();
    let out = w.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.display();
    let script = format!(
        r#"set -u
printf 'protocol=http\nhost={host}\npath=acme/widgets.git\nunknown=key\n\n' | "$RUNNER" git-credential get > {o}/get
printf 'protocol=http\nhost=other.example\npath=acme/x.git\n\n' | "$RUNNER" git-credential get > {o}/other
printf 'protocol=http\nhost={host}\n\n' | "$RUNNER" git-credential store; echo $? > {o}/store
printf 'protocol=http\nnonsense\n' | "$RUNNER" git-credential get 2> {o}/malformed-err; echo $? > {o}/malformed
"$RUNNER" token > {o}/token
"$RUNNER" status > {o}/status
"$RUNNER" status --json > {o}/status.json
echo "lrt_0000000000000000000000000000000000000000xx" > {token_file}
printf 'protocol=http\nhost={host}\npath=acme/widgets.git\n\n' | "$RUNNER" git-credential erase
"$RUNNER" status --json > {o}/status-after-rotation.json
printf 'protocol=http\nhost={host}\npath=acme/widgets.git\n\n' | "$RUNNER" git-credential get > {o}/get-after
env > {o}/env
"#,
        token_file = file.display()
    );
    let r = output(w.runner(&sid, &file, &[], &script), Duration::from_secs(60)).await;
    assert!(r.status.success(), "{}", text(&r));
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();

    let get = read("get");
    assert!(
        get.starts_with("username=x-access-token\npassword=ghs_"),
        "{get}"
    );
    let token = get
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("password=")
        .to_string();
    assert!(w.fake.token_is_live(&token));
    let expiry: i64 = get
        .lines()
        .nth(2)
        .unwrap()
        .trim_start_matches("password_expiry_utc=")
        .parse()
        .unwrap();
    assert!(expiry > chrono::Utc::now().timestamp() + 15 * 60);
    assert_eq!(read("other"), "", "hosts outside the session get no answer");
    assert_eq!(read("store").trim(), "0");
    assert_eq!(read("malformed").trim(), "1");
    assert!(read("malformed-err").contains("line 2 is not key=value"));
    assert_eq!(read("token").trim(), token);

    let status = read("status") + &read("status.json");
    assert!(
        status.contains("acme") && status.contains("github_app"),
        "{status}"
    );
    assert!(!status.contains(&token), "status never prints a token");
    // The rotated (bad) token file is re-read on the forced refresh: the failure shows in
    // status, and the still-valid token keeps being served.
    let after: serde_json::Value =
        serde_json::from_str(&read("status-after-rotation.json")).unwrap();
    assert!(
        after[0]["last_error"].as_str().unwrap().contains("refused"),
        "{after}"
    );
    assert_eq!(after[0]["consecutive_failures"], 1);
    assert!(read("get-after").contains(&token));

    let env = read("env");
    assert!(env.contains("GIT_CONFIG_COUNT=3"));
    assert!(env.contains("GIT_CONFIG_KEY_2=credential.useHttpPath"));
    assert!(
        env.contains("LANYARD_RUNNER_SOCKET=")
            && env.contains(&format!("LANYARD_SESSION_ID={sid}"))
    );
    assert!(!env.contains("ghs_"), "no token in the child's environment");
    assert!(
        !text(&r).contains(&token),
        "the runner never prints a token itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_session_stops_the_agent() {
    let w = world(&[]).await;
    let (sid, file) = w.session(&["widgets"]).await;
    let mut cmd = w.runner(
        &sid,
        &file,
        &["--refresh-interval", "1s", "--grace", "2s"],
        "sleep 300",
    );
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = w
        .app
        .delete(&format!("/v1/sessions/{sid}"))
        .bearer_auth(&w.team.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started = Instant::now();
    let o = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{:?} {}", o.status, text(&o));
    assert!(text(&o).contains("ended at the server"), "{}", text(&o));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped within a refresh interval and the grace"
    );
}

/// Several runners, 30 s tokens, a 20 s server floor: each child clones, then fetches and
/// ls-remotes for over three token lifetimes, and finally runs `gh` through the shim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_git_and_gh_across_token_lifetimes() {
    let w = world(&[("LANYARD_TOKEN_MIN_REMAINING", "20s")]).await;
    w.fake.set_token_lifetime(Duration::from_secs(30));
    // A stand-in `gh` later on PATH that records the token it was given.
    let fake_gh_dir = w.dir.path().join("real-gh");
    std::fs::create_dir_all(&fake_gh_dir).unwrap();
    let gh = fake_gh_dir.join("gh");
    std::fs::write(
        &gh,
        "#!/bin/sh\necho \"${GH_TOKEN:-}${GH_ENTERPRISE_TOKEN:-} ${GH_HOST:-}\" > \"$GH_RECORD\"\n",
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&gh).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&gh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        std::env::var("PATH").unwrap(),
        fake_gh_dir.display()
    );

    let soak_seconds = 95;
    let mut runners = Vec::new();
    for i in 0..3 {
        let (sid, file) = w.session(&["widgets", "gadgets"]).await;
        let url = w
            .fake
            .repo_url("acme", if i % 2 == 0 { "widgets" } else { "gadgets" });
        let work = w.dir.path().join(format!("work{i}"));
        let record = w.dir.path().join(format!("gh{i}"));
        let script = format!(
            r#"set -e
git clone -q {url} {work}
end=$(( $(date +%s) + {soak_seconds} ))
while [ $(date +%s) -lt $end ]; do
  git -C {work} fetch -q
  git ls-remote {url} > /dev/null
  sleep 1
done
gh api user
grep -q ghs_ {work}/.git/config && exit 9
exit 0
"#,
            work = work.display()
        );
        let mut cmd = w.runner(&sid, &file, &[], &script);
        cmd.env("PATH", &path)
            .env("GH_RECORD", &record)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        runners.push((cmd.spawn().unwrap(), work, record));
    }
    let mut outputs = Vec::new();
    for (child, work, record) in runners {
        let o = tokio::time::timeout(
            Duration::from_secs(soak_seconds + 60),
            child.wait_with_output(),
        )
        .await
        .unwrap()
        .unwrap();
        let recorded = std::fs::read_to_string(&record).unwrap_or_default();
        let (token, host) = recorded.trim().split_once(' ').unwrap_or_default();
        assert!(
            token.starts_with("ghs_"),
            "gh got a token: {recorded:?}\n{}",
            text(&o)
        );
        assert!(w.fake.token_is_live(token), "gh got a live token");
        assert_eq!(host, w.fake.host, "GH_HOST for a non-github.com host");
        let config = std::fs::read_to_string(work.join(".git/config")).unwrap();
        assert!(
            !config.contains("ghs_") && !config.contains("x-access-token"),
            "{config}"
        );
        outputs.push(o);
    }
    for o in &outputs {
        assert!(o.status.success(), "{}", text(o));
        assert!(
            !text(o).contains("ghs_"),
            "a token reached the runner's output"
        );
    }
    assert_eq!(w.fake.git_auth_failures(), 0, "no git request was refused");
    assert!(
        w.fake.git_requests_served() > 3 * 2 * 60,
        "the loops really ran"
    );
    assert!(
        w.fake.mint_count() >= 3,
        "tokens turned over during the soak"
    );
}

#[test]
fn help_explains_every_command() {
    let out = std::process::Command::new(RUNNER)
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["run", "git-credential", "token", "status", "GIT_CONFIG_*"] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
    assert!(
        !text.contains("gh-shim"),
        "the shim's entry point stays hidden"
    );
    let out = std::process::Command::new(RUNNER)
        .args(["run", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--refresh-interval",
        "--refresh-buffer",
        "--grace",
        "--token-file",
        "LANYARD_RUNNER_TOKEN_FILE",
        "[default: 60s]",
        "[default: 5m]",
        "[default: 10s]",
    ] {
        assert!(text.contains(needle), "run --help lacks {needle}:\n{text}");
    }
}
