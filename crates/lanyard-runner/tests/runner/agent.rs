//! The runner around an agent: start-up failures, exit codes, signals, the helper and the end of a session.

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_runner_token_or_unreachable_server_fails_fast() {
    let w = world(&[]).await;
    let (sid, file) = w.session(&["widgets"]).await;
    let bad = w.dir.path().join("bad-token");
    lanyard_testkit::write_private(&bad, "lrt_0000000000000000000000000000000000000000xx");
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
    let mut clear_text = tokio::process::Command::new(RUNNER);
    clear_text
        .args([
            "run",
            "--api",
            "http://lanyard.example.com",
            "--session",
            &sid,
            "--token-file",
        ])
        .arg(&file)
        .args(["--", "true"]);
    let o = output(clear_text, Duration::from_secs(20)).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("only to a loopback host"), "{}", text(&o));
    // A token file that others can read is refused, with the fix.
    let open = w.dir.path().join("open-token");
    std::fs::copy(&file, &open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let o = output(w.runner(&sid, &open, &[], "true"), Duration::from_secs(20)).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("chmod 600"), "{}", text(&o));
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
    let ready = w.dir.path().join("trap-ready");
    let script = format!(
        "trap 'echo term > {}; exit 42' TERM; touch {}; while true; do sleep 0.1; done",
        marker.display(),
        ready.display()
    );
    let mut child = w.runner(&sid, &file, &[], &script).spawn().unwrap();
    wait_for_file(&ready).await;
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
printf 'protocol=https\nhost={host}\npath=acme/widgets.git\n\n' | "$RUNNER" git-credential get > {o}/other-scheme
printf 'protocol=http\nhost={host}\n\n' | "$RUNNER" git-credential store; echo $? > {o}/store
printf 'protocol=http\nnonsense\n' | "$RUNNER" git-credential get 2> {o}/malformed-err; echo $? > {o}/malformed
"$RUNNER" token > {o}/token
"$RUNNER" status > {o}/status
"$RUNNER" status --json > {o}/status.json
: > {token_file}
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
    assert_eq!(
        read("other-scheme"),
        "",
        "an http host's token never goes over another scheme"
    );
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
    // The token file, caught empty mid-rotation, is re-read on the forced refresh: the failure
    // shows in status, and the still-valid token keeps being served.
    let after: serde_json::Value =
        serde_json::from_str(&read("status-after-rotation.json")).unwrap();
    assert!(
        after[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("is empty"),
        "{after}"
    );
    // At least the forced refresh failed; the background loop may have retried once more
    // (about a second later) before status ran on a slow machine.
    assert!(
        matches!(after[0]["consecutive_failures"].as_u64(), Some(1 | 2)),
        "{after}"
    );
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
    let ready = w.dir.path().join("agent-ready");
    let mut cmd = w.runner(
        &sid,
        &file,
        &["--refresh-interval", "1s", "--grace", "2s"],
        &format!("touch {}; sleep 300", ready.display()),
    );
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&ready).await;
    w.app.stop_session(&w.team, &sid).await;
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
        "Exit status",
        "4    the session ended at the server (410",
        "5    the server refused the runner token after start (401",
        "6    the server no longer knows the session after start (404",
    ] {
        assert!(text.contains(needle), "run --help lacks {needle}:\n{text}");
    }
}
