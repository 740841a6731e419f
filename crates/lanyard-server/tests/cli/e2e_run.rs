//! `lanyard e2e run -- CMD`: the account reaches CMD, CMD's exit code comes back, and the
//! account is reaped after success, after failure and after SIGTERM; a failed reap fails the run.

use std::path::Path;
use std::time::Duration;

use lanyard_testkit::chaos::{Fault, Proxy};
use lanyard_testkit::TestApp;

use crate::lanyard;

async fn app_with_e2e() -> (TestApp, String) {
    let token = format!("e2e-run-{}", uuid::Uuid::new_v4().simple());
    let app = TestApp::builder()
        .env("LANYARD_E2E_ACCOUNT_TOKEN", &token)
        .spawn()
        .await;
    (app, token)
}

/// `lanyard e2e run --api API [extra] -- sh -c SCRIPT` in `dir`.
fn e2e_run(
    api: &str,
    token: &str,
    extra: &[&str],
    script: &str,
    dir: &Path,
) -> tokio::process::Command {
    let mut args = vec!["e2e", "run", "--api", api];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    let mut cmd = lanyard(&args);
    cmd.env("LANYARD_E2E_ACCOUNT_TOKEN", token)
        .current_dir(dir)
        .stdin(std::process::Stdio::null());
    tokio::process::Command::from(cmd)
}

/// The team id CMD wrote into `file`.
fn team_written(dir: &Path, file: &str) -> uuid::Uuid {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .parse()
        .expect("CMD saw LANYARD_E2E_TEAM_ID")
}

/// Waits until CMD has written a whole line to `path`: the shell's `>` creates the file empty
/// a moment before `echo` writes it.
async fn wait_for(path: &Path) {
    for _ in 0..400 {
        if std::fs::read_to_string(path).is_ok_and(|s| s.ends_with('\n')) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exit_code_passes_through_and_the_account_is_reaped_either_way() {
    let (app, token) = app_with_e2e().await;
    let api = app.public_url();
    let dir = tempfile::TempDir::new().unwrap();
    // CMD sees the account, but never the token that mints accounts.
    let script = r#"echo "$LANYARD_E2E_TEAM_ID" > team; echo "$LANYARD_E2E_EMAIL" > email;
        test -n "$LANYARD_E2E_SESSION_JWT" && test -z "$LANYARD_E2E_ACCOUNT_TOKEN" || exit 99;
        echo "${LANYARD_E2E_RUNNER_TOKEN:-none}" > runner; exit "$CODE""#;
    for code in [0, 7] {
        let out = e2e_run(&api, &token, &["--tier", "hobby"], script, dir.path())
            .env("CODE", code.to_string())
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        let team = team_written(dir.path(), "team");
        assert!(
            stderr.contains(&format!("reaped test account {team}")),
            "{stderr}"
        );
        assert!(
            app.store().get_team(team).await.unwrap().is_none(),
            "reaped after exit {code}"
        );
        let email = std::fs::read_to_string(dir.path().join("email")).unwrap();
        assert!(email.starts_with("e2e-cohort+"), "{email}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("runner"))
                .unwrap()
                .trim(),
            "none"
        );
    }

    // With resources, the seeded runner token reaches CMD and its session is stopped by the reap.
    let out = e2e_run(&api, &token, &["--with-resources"], script, dir.path())
        .env("CODE", "0")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runner = std::fs::read_to_string(dir.path().join("runner")).unwrap();
    assert!(runner.trim().starts_with("lrt_"), "{runner}");
    let team = team_written(dir.path(), "team");
    assert!(app.store().get_team(team).await.unwrap().is_none());
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("::add-mask::"),
        "masks only on GitHub Actions"
    );

    // On GitHub Actions, the account's secrets are masked in the log before CMD runs.
    let out = e2e_run(&api, &token, &["--with-resources"], script, dir.path())
        .env("CODE", "0")
        .env("GITHUB_ACTIONS", "true")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let runner = std::fs::read_to_string(dir.path().join("runner")).unwrap();
    assert!(
        stdout.contains(&format!("::add-mask::{}", runner.trim())),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("::add-mask::").count(),
        2,
        "the JWT and the runner token"
    );

    // A CMD that cannot run is 127, and the account still goes.
    let mut cmd = lanyard(&["e2e", "run", "--api", &api, "--", "/nonexistent/cmd"]);
    cmd.env("LANYARD_E2E_ACCOUNT_TOKEN", &token);
    let out = tokio::process::Command::from(cmd).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{stderr}");
    assert!(stderr.contains("reaped test account"), "{stderr}");

    // A wrong token creates nothing and runs nothing.
    let out = e2e_run(
        &api,
        "wrong-token-0123456789abcdefghijklmno",
        &[],
        "touch ran",
        dir.path(),
    )
    .output()
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(!dir.path().join("ran").exists(), "CMD never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_reaches_cmd_first_and_the_account_is_still_reaped() {
    let (app, token) = app_with_e2e().await;
    let dir = tempfile::TempDir::new().unwrap();
    let script = r#"trap 'echo term > got; exit 143' TERM; echo "$LANYARD_E2E_TEAM_ID" > team;
        while :; do sleep 0.1; done"#;
    let child = e2e_run(&app.public_url(), &token, &[], script, dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&dir.path().join("team")).await;
    let team = team_written(dir.path(), "team");
    assert!(
        app.store().get_team(team).await.unwrap().is_some(),
        "live while CMD runs"
    );
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("e2e run exits after SIGTERM")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "CMD's own code: {stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("got"))
            .unwrap()
            .trim(),
        "term",
        "CMD got the SIGTERM"
    );
    assert!(
        app.store().get_team(team).await.unwrap().is_none(),
        "reaped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reap_fails_the_run_even_when_cmd_succeeded() {
    let (app, token) = app_with_e2e().await;
    let (proxy, api) = Proxy::in_front_of(&app.public_url()).await;
    let dir = tempfile::TempDir::new().unwrap();
    // CMD succeeds once the test has cut Lanyard off behind the proxy.
    let script =
        r#"echo "$LANYARD_E2E_TEAM_ID" > team; while [ ! -e go ]; do sleep 0.05; done; exit 0"#;
    let child = e2e_run(&api, &token, &[], script, dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&dir.path().join("team")).await;
    let team = team_written(dir.path(), "team");
    proxy.set(Fault::Refuse);
    proxy.cut();
    std::fs::write(dir.path().join("go"), "").unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("e2e run gives up on the reap")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "non-zero although CMD succeeded: {stderr}"
    );
    assert!(stderr.contains("NOT REAPED"), "{stderr}");
    assert!(
        stderr.contains(&team.to_string()),
        "names the account: {stderr}"
    );
    assert!(
        stderr.contains(&format!("lanyard e2e reap {team}")),
        "says how to reap it: {stderr}"
    );
    assert!(
        app.store().get_team(team).await.unwrap().is_some(),
        "the account is indeed still there"
    );
}
