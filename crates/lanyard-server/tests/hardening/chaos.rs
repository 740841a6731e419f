//! Chaos: the testkit's fault-injecting proxy in front of Postgres, Redis and the fake GitHub,
//! switched while the server works. Each test prints its figures (served during the outage,
//! time to recover, mints per scope). The Postgres and Redis tests need those services
//! (`TEST_DATABASE_URL`, `TEST_REDIS_URL`); on a SQLite-only run they have nothing to break.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_core::{Clock, ManualClock, SystemClock, Tier};
use lanyard_server::broker::{SESSION_STALE, SESSION_TTL};
use lanyard_store::testing::{fresh_postgres_database, postgres_under_test};
use lanyard_testkit::chaos::{Fault, Proxy};
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::{redis_under_test, TestApp, TestTeam};

struct World {
    app: TestApp,
    fake: FakeGithub,
    team: TestTeam,
}

/// A world on the wall clock, or (`manual`) on a clock the test moves, shared by the server and
/// the fake GitHub.
async fn world(env: &[(&str, &str)], manual: bool) -> World {
    let (fake, builder) = if manual {
        let clock = ManualClock::starting_now();
        let fake = FakeGithub::start(Arc::new(clock.clone())).await;
        (fake, TestApp::builder().clock(&clock))
    } else {
        let fake = FakeGithub::start(Arc::new(SystemClock)).await;
        (fake, TestApp::builder().real_time())
    };
    fake.add_installation(9, "acme", &["a", "b", "c", "d", "e", "f"]);
    let mut builder = builder.github(&fake);
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    let app = builder.spawn().await;
    let team = app.create_team("Chaos", Tier::Growth).await;
    let r = app.connect_installation(&team, &fake.host, "acme", 9).await;
    assert_eq!(r.status(), 201);
    World { app, fake, team }
}

/// A world on a fresh Postgres database reached through a fault-injecting proxy, when
/// `TEST_DATABASE_URL` is set.
async fn world_behind_a_postgres_proxy() -> Option<(Proxy, World)> {
    let server = postgres_under_test()?;
    let db = fresh_postgres_database(&server).await;
    let (proxy, proxied) = Proxy::in_front_of(db.expose()).await;
    Some((
        proxy,
        world(&[("LANYARD_DATABASE_URL", proxied.as_str())], true).await,
    ))
}

impl World {
    async fn session(&self, app: &TestApp, repos: &[&str]) -> (String, String) {
        let urls: Vec<String> = repos
            .iter()
            .map(|r| self.fake.repo_url("acme", r))
            .collect();
        app.start_session(&self.team, &urls).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dropping_connections() {
    let Some((proxy, w)) = world_behind_a_postgres_proxy().await else {
        eprintln!("no TEST_DATABASE_URL: nothing to break");
        return;
    };
    let mut sessions = Vec::new();
    for repos in [&["a"][..], &["b"], &["a", "b"]] {
        let (sid, runner) = w.session(&w.app, repos).await;
        assert_eq!(
            w.app.fetch_credential(&sid, &runner, "").await.status(),
            200
        );
        sessions.push((sid, runner));
    }

    // The database drops every connection and refuses new ones, for longer than a session is
    // trusted from memory: 4 s of the server's clock, in 100 ms steps.
    proxy.set(Fault::Refuse);
    let (mut served, mut asked, mut created_during) = (0, 0, 0);
    let mut ready_during = BTreeMap::new();
    for _ in 0..40 {
        for (sid, runner) in &sessions {
            asked += 1;
            let r = w.app.fetch_credential(sid, runner, "").await;
            if r.status() == 200 {
                served += 1;
            }
        }
        let r = w.app.get("/readyz").send().await.unwrap();
        *ready_during.entry(r.status().as_u16()).or_insert(0) += 1;
        let r = w
            .app
            .post("/v1/sessions")
            .bearer_auth(&w.team.api_key)
            .json(&serde_json::json!({"repos": [w.fake.repo_url("acme", "c")]}))
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 201 || r.status() == 503,
            "a write during the outage: {}",
            r.status()
        );
        if r.status() == 201 {
            created_during += 1;
        }
        w.app.clock.advance(chrono::Duration::milliseconds(100));
    }
    let stale = w
        .app
        .metric("lanyard_stale_sessions_served_total")
        .await
        .unwrap_or(0.0);
    assert!(
        stale > 0.0,
        "past their 2 s, sessions were served as last read"
    );
    assert_eq!(served, asked, "cached credentials are served throughout");
    assert!(
        ready_during.get(&503).copied().unwrap_or(0) > 0 && !ready_during.contains_key(&200),
        "/readyz said 503 throughout: {ready_during:?}"
    );

    // It comes back on its own.
    proxy.set(Fault::None);
    let back = Instant::now();
    loop {
        let r = w.app.get("/readyz").send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(60), "never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered_in = back.elapsed();
    let (sid, runner) = w.session(&w.app, &["d"]).await;
    assert_eq!(
        w.app.fetch_credential(&sid, &runner, "").await.status(),
        200
    );
    // No write was lost or doubled: the sessions listed are exactly those answered 201.
    let listed = w.app.get_json("/v1/sessions", &w.team.api_key).await["sessions"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(listed, sessions.len() + created_during + 1);
    println!(
        "chaos postgres: served {served}/{asked} cached credentials during a 4 s outage ({stale} \
         as last read), /readyz {ready_during:?}, {created_during} sessions created during it, \
         recovered in {recovered_in:?}"
    );
}

/// A session read before the database went away is served as last read for at most
/// `SESSION_TTL + SESSION_STALE` after that read. Past it, a stop written meanwhile could go
/// unseen for too long, so the answer is 503 until the database is back, and then 200 again.
/// The bound is the server's clock's: the test moves it, so nothing waits 32 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_outlasting_the_stale_bound() {
    let Some((proxy, w)) = world_behind_a_postgres_proxy().await else {
        eprintln!("no TEST_DATABASE_URL: nothing to break");
        return;
    };
    let (sid, runner) = w.session(&w.app, &["a"]).await;
    // The server reads the session during this fetch, at the clock's `read`.
    let read = w.app.clock.now();
    assert_eq!(
        w.app.fetch_credential(&sid, &runner, "").await.status(),
        200
    );
    let bound = chrono::Duration::from_std(SESSION_TTL + SESSION_STALE).unwrap();

    proxy.set(Fault::Refuse);
    let step = chrono::Duration::seconds(1);
    let mut served = 0;
    while w.app.clock.now() + step < read + bound {
        w.app.clock.advance(step);
        let status = w.app.fetch_credential(&sid, &runner, "").await.status();
        assert_eq!(
            status,
            200,
            "refused {} into the outage",
            w.app.clock.now() - read
        );
        served += 1;
    }
    // The last moment of the bound, then past it.
    w.app
        .clock
        .set(read + bound - chrono::Duration::milliseconds(1));
    assert_eq!(
        w.app.fetch_credential(&sid, &runner, "").await.status(),
        200
    );
    w.app.clock.set(read + bound);
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    assert_eq!(r.status(), 503, "served past its bound");
    let stale = w
        .app
        .metric("lanyard_stale_sessions_served_total")
        .await
        .unwrap_or(0.0);
    assert!(stale >= f64::from(served), "served as last read, counted");

    proxy.set(Fault::None);
    let back = Instant::now();
    while w.app.fetch_credential(&sid, &runner, "").await.status() != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(60),
            "never served again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "chaos postgres: a session served as last read {served} times over {bound} of the \
         server's clock, then 503; served again {:?} after the database came back",
        back.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_mid_load() {
    let Some(redis) = redis_under_test() else {
        eprintln!("no TEST_REDIS_URL: nothing to break");
        return;
    };
    let (proxy, proxied) = Proxy::in_front_of(&redis).await;
    let w = world(&[("LANYARD_REDIS_URL", proxied.as_str())], false).await;
    let replica = w.app.replica(&[]).await;
    let (sid, runner) = w.session(&w.app, &["a"]).await;
    assert_eq!(
        w.app.fetch_credential(&sid, &runner, "").await.status(),
        200
    );
    let fail_open_before = w
        .app
        .metric("lanyard_rate_limit_fail_open_total")
        .await
        .unwrap_or(0.0);

    proxy.set(Fault::Refuse);
    // New scopes during the outage, each asked for 10 times at once on each replica.
    let scopes: [&[&str]; 3] = [&["b"], &["c", "d"], &["e", "f"]];
    let (mut served, mut asked) = (0, 0);
    for repos in scopes {
        let (sid, runner) = w.session(&w.app, repos).await;
        let mut calls = Vec::new();
        for app in [&w.app, &replica] {
            for _ in 0..10 {
                let request = app
                    .get(&format!("/v1/sessions/{sid}/credentials/github"))
                    .bearer_auth(&runner)
                    .send();
                calls.push(tokio::spawn(request));
            }
        }
        for call in calls {
            asked += 1;
            if call.await.unwrap().unwrap().status() == 200 {
                served += 1;
            }
        }
    }
    assert_eq!(served, asked, "credentials are served while Redis is down");
    let mut per_scope: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for mint in w.fake.mints() {
        *per_scope.entry(mint.repositories.clone()).or_default() += 1;
    }
    for repos in scopes {
        let key: Vec<String> = repos.iter().map(|r| r.to_string()).collect();
        let mints = per_scope.get(&key).copied().unwrap_or(0);
        assert!(
            (1..=2).contains(&mints),
            "at most one mint per scope per replica: {repos:?} minted {mints} times"
        );
    }
    let fail_open = w
        .app
        .metric("lanyard_rate_limit_fail_open_total")
        .await
        .unwrap_or(0.0)
        - fail_open_before;
    assert!(fail_open > 0.0, "the rate limits failed open, counted");
    proxy.set(Fault::None);
    println!(
        "chaos redis: served {served}/{asked} during the outage, mints per new scope {per_scope:?}, \
         {fail_open} rate-limit checks failed open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_stalling() {
    let fake = FakeGithub::start(Arc::new(SystemClock)).await;
    fake.add_installation(9, "acme", &["a", "b"]);
    let (proxy, proxied) = Proxy::in_front_of(&fake.api_url).await;
    let app = TestApp::builder()
        .real_time()
        .github(&fake)
        .env("LANYARD_GITHUB_API_URL", &proxied)
        .spawn()
        .await;
    let team = app.create_team("Stall", Tier::Pro).await;
    assert_eq!(
        app.connect_installation(&team, &fake.host, "acme", 9)
            .await
            .status(),
        201
    );
    let (cached_sid, cached_runner) = app
        .start_session(&team, &[fake.repo_url("acme", "a")])
        .await;
    assert_eq!(
        app.fetch_credential(&cached_sid, &cached_runner, "")
            .await
            .status(),
        200
    );
    let (new_sid, new_runner) = app
        .start_session(&team, &[fake.repo_url("acme", "b")])
        .await;

    proxy.set(Fault::Stall);
    let stalled = Instant::now();
    let mint = {
        let url = app.url(&format!("/v1/sessions/{new_sid}/credentials/github"));
        let runner = new_runner.clone();
        tokio::spawn(async move {
            // A hang detector far beyond the bound (20 s per call to GitHub).
            reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap()
                .get(url)
                .bearer_auth(runner)
                .send()
                .await
        })
    };
    // Meanwhile the cached path answers.
    let mut cached_served = 0;
    while !mint.is_finished() {
        let r = app.fetch_credential(&cached_sid, &cached_runner, "").await;
        assert_eq!(
            r.status(),
            200,
            "the cached path is unaffected by the stall"
        );
        cached_served += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = mint.await.unwrap().expect("the mint answered, not hung");
    let took = stalled.elapsed();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "github_unavailable");
    proxy.set(Fault::None);
    // After its cooldown (Retry-After), the scope is served again.
    let back = Instant::now();
    loop {
        let r = app.fetch_credential(&new_sid, &new_runner, "").await;
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 503);
        let wait: u64 = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("a 503 says when to retry");
        assert!(
            back.elapsed() < Duration::from_secs(120),
            "never served again"
        );
        tokio::time::sleep(Duration::from_secs(wait.clamp(1, 60))).await;
    }
    println!(
        "chaos github: a mint against a stalled GitHub answered 503 after {took:?}; \
         {cached_served} cached credentials served meanwhile"
    );
}
