//! The long soak with real git and gh.

use crate::*;

/// Several runners, 30 s tokens, a 20 s server floor: each child clones, then fetches and
/// ls-remotes for over three token lifetimes, and finally runs `gh` through the shim.
/// About 95 s of real time, so it is its own step in `.ci/run`:
/// `cargo test -p lanyard-runner --test runner -- --ignored soak`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 95-second soak; .ci/run runs it as its own step"]
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
