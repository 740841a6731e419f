//! The runner when things go wrong after start: a revoked token, a reaped team, a session that
//! is no longer its own, an agent's grandchild that ignores SIGTERM, and a Lanyard that stalls.

use lanyard_testkit::chaos::{Fault, Proxy};
use std::process::Stdio;

use crate::*;

/// Starts a runner whose agent signals readiness and then sleeps, and returns it running.
async fn sleeping_agent(w: &World, sid: &str, file: &Path, name: &str) -> tokio::process::Child {
    let ready = w.dir.path().join(format!("{name}-ready"));
    let child = w
        .runner(
            sid,
            file,
            &["--refresh-interval", "1s", "--grace", "2s"],
            &format!("touch {}; sleep 300", ready.display()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&ready).await;
    child
}

async fn finished(child: tokio::process::Child) -> Output {
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the runner stopped the agent and exited")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_or_a_foreign_session_stops_the_agent_with_its_own_exit_code() {
    let w = world(&[]).await;
    let (revoked_sid, revoked_file) = w.session(&["widgets"]).await;
    let (gone_sid, gone_file) = w.session(&["widgets"]).await;
    let revoked = sleeping_agent(&w, &revoked_sid, &revoked_file, "revoked").await;
    let gone = sleeping_agent(&w, &gone_sid, &gone_file, "gone").await;

    // One runner's token stops being accepted; the other's file now holds a token for another
    // session, which the server answers 404 without saying whether the session exists.
    std::fs::write(
        &revoked_file,
        "lrt_0000000000000000000000000000000000000000xx\n",
    )
    .unwrap();
    let (_, other_file) = w.session(&["gadgets"]).await;
    std::fs::copy(&other_file, &gone_file).unwrap();

    let o = finished(revoked).await;
    assert_eq!(o.status.code(), Some(5), "{:?} {}", o.status, text(&o));
    assert!(text(&o).contains("lost its runner token"), "{}", text(&o));
    let o = finished(gone).await;
    assert_eq!(o.status.code(), Some(6), "{:?} {}", o.status, text(&o));
    assert!(text(&o).contains("no longer known"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaped_team_stops_the_agent() {
    let w = world(&[]).await;
    let (sid, file) = w.session(&["widgets"]).await;
    let agent = sleeping_agent(&w, &sid, &file, "reaped").await;
    let r = w
        .app
        .delete(&format!("/admin/v1/teams/{}", w.team.id))
        .bearer_auth(lanyard_testkit::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let o = finished(agent).await;
    // The team's sessions were stopped before it went: whichever answer the runner sees first
    // (410 for the stopped session, 401 once its token is gone), the agent is stopped.
    assert!(
        matches!(o.status.code(), Some(4 | 5)),
        "{:?} {}",
        o.status,
        text(&o)
    );
    assert!(text(&o).contains("the agent was stopped"), "{}", text(&o));
}

fn alive(pid: i32) -> bool {
    // A zombie (reparented to an init that has not reaped it yet) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grandchild_that_ignores_sigterm_is_killed_after_the_grace() {
    let w = world(&[]).await;
    let (sid, file) = w.session(&["widgets"]).await;
    let pid_file = w.dir.path().join("grandchild.pid");
    let ready = w.dir.path().join("grandchild-ready");
    // The agent starts a grandchild that ignores SIGTERM, then waits; the agent itself dies on
    // SIGTERM, well within the grace, so only the group kill after it can reach the grandchild.
    let script = format!(
        "sh -c 'trap \"\" TERM; echo $$ > {pid}.tmp; mv {pid}.tmp {pid}; while :; do sleep 0.2; done' & \
         while [ ! -s {pid} ]; do sleep 0.05; done; touch {ready}; wait",
        pid = pid_file.display(),
        ready = ready.display(),
    );
    let child = w
        .runner(
            &sid,
            &file,
            &["--refresh-interval", "1s", "--grace", "2s"],
            &script,
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&ready).await;
    let grandchild: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(grandchild));
    w.app.stop_session(&w.team, &sid).await;
    let o = finished(child).await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    // SIGKILL is delivered before the runner exits; give the kernel a moment to tear it down.
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(grandchild) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if alive(grandchild) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &grandchild.to_string()])
            .status();
        panic!("the grandchild that ignored SIGTERM outlived the runner");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_keeps_working_while_lanyard_stalls_for_a_minute() {
    let w = world(&[]).await;
    let (sid, file) = w.session(&["widgets"]).await;
    let (proxy, api) = Proxy::in_front_of(&w.app.base_url).await;
    let out = w.dir.path().join("stall");
    std::fs::create_dir_all(&out).unwrap();
    let url = w.fake.repo_url("acme", "widgets");
    // The agent waits for the stall, then runs git every 5 s for a minute. Each git run gets a
    // hang detector far beyond its normal time and far below the runner's 30 s HTTP timeout, so
    // a helper that waited on the stalled refresh fails it.
    let script = format!(
        r#"touch {o}/ready
while [ ! -e {o}/stalled ]; do sleep 0.05; done
i=0
while [ $i -lt 12 ]; do
  timeout 15 git ls-remote {url} > {o}/ls-$i 2> {o}/err-$i; echo $? > {o}/rc-$i
  i=$((i+1)); sleep 5
done
"$RUNNER" status --json > {o}/status.json
"#,
        o = out.display()
    );
    let mut cmd = tokio::process::Command::new(RUNNER);
    cmd.args(["run", "--api", &api, "--session", &sid, "--token-file"])
        .arg(&file)
        .args(["--refresh-interval", "1s", "--", "sh", "-c", &script])
        .env("RUNNER", RUNNER)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", w.dir.path())
        .current_dir(w.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap();
    wait_for_file(&out.join("ready")).await;
    proxy.set(Fault::Stall);
    std::fs::write(out.join("stalled"), "").unwrap();
    let o = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("the agent finished")
        .unwrap();
    proxy.set(Fault::None);
    assert!(o.status.success(), "{}", text(&o));
    let read = |name: String| std::fs::read_to_string(out.join(name)).unwrap();
    for i in 0..12 {
        assert_eq!(
            read(format!("rc-{i}")).trim(),
            "0",
            "git run {i} during the stall: {}",
            read(format!("err-{i}"))
        );
        assert!(read(format!("ls-{i}")).contains("refs/heads/main"));
    }
    // The stall was real: the runner's refreshes failed during it.
    let status: serde_json::Value = serde_json::from_str(&read("status.json".into())).unwrap();
    assert!(
        status[0]["consecutive_failures"].as_u64().unwrap() >= 1,
        "{status}"
    );
}
