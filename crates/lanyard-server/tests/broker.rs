//! The credential broker against the fake GitHub (CONTRACT §4 and §6).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lanyard_core::{Clock, ManualClock, Tier};
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::{dump_text, expect_error, TestApp, TestTeam};

struct World {
    app: TestApp,
    fake: FakeGithub,
    team: TestTeam,
    clock: ManualClock,
}

async fn world_with(env: &[(&str, &str)], tier: Tier) -> World {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    fake.add_installation(1001, "acme", &["widgets", "gadgets", "gizmos"]);
    fake.add_installation(1002, "globex", &["thing"]);
    let mut builder = TestApp::builder().clock(&clock).github(&fake);
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    let app = builder.spawn().await;
    let team = app.create_team("Acme", tier).await;
    let r = app
        .connect_installation(&team, &fake.host, "acme", 1001)
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    World {
        app,
        fake,
        team,
        clock,
    }
}

async fn world() -> World {
    world_with(&[], Tier::Pro).await
}

async fn credential(w: &World, sid: &str, token: &str) -> serde_json::Value {
    let r = w.app.fetch_credential(sid, token, "").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

fn expiry(body: &serde_json::Value) -> DateTime<Utc> {
    body["expires_at"].as_str().unwrap().parse().unwrap()
}

/// `git ls-remote` with the token supplied by a credential helper, never in the URL.
async fn ls_remote(url: &str, token: &str) -> std::process::Output {
    tokio::process::Command::new("git")
        .args(["-c", "credential.helper=", "-c"])
        .arg("credential.helper=!f() { echo username=x-access-token; echo \"password=$LANYARD_TEST_TOKEN\"; }; f")
        .args(["ls-remote", url])
        .env("LANYARD_TEST_TOKEN", token)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn connections_verify_installations_and_hosts() {
    let w = world().await;
    let url = w.app.public_url();
    // 1002 belongs to globex, not initech.
    let r = w
        .app
        .connect_installation(&w.team, &w.fake.host, "initech", 1002)
        .await;
    expect_error(r, "installation_mismatch", &url).await;
    let r = w
        .app
        .connect_installation(&w.team, &w.fake.host, "initech", 9999)
        .await;
    expect_error(r, "installation_mismatch", &url).await;
    let r = w
        .app
        .connect_installation(&w.team, "gitlab.example.com", "acme", 1001)
        .await;
    expect_error(r, "unknown_github_host", &url).await;
    let r = w
        .app
        .connect_installation(&w.team, &w.fake.host, "acme", 1001)
        .await;
    expect_error(r, "connection_exists", &url).await;
    let r = w
        .app
        .post("/v1/github/connections")
        .bearer_auth(&w.team.api_key)
        .json(&serde_json::json!({"host": w.fake.host, "owner": "globex"}))
        .send()
        .await
        .unwrap();
    expect_error(r, "invalid_connection", &url).await;

    let list: serde_json::Value = w
        .app
        .get_json("/v1/github/connections", &w.team.api_key)
        .await;
    let conns = list["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["kind"], "github_app");
    assert_eq!(conns[0]["installation_id"], 1001);
    let id = conns[0]["connection_id"].as_str().unwrap();

    let other = w.app.create_team("Other", Tier::Free).await;
    let r = w
        .app
        .delete(&format!("/v1/github/connections/{id}"))
        .bearer_auth(&other.api_key)
        .send()
        .await
        .unwrap();
    expect_error(r, "not_found", &url).await;
    let r = w
        .app
        .delete(&format!("/v1/github/connections/{id}"))
        .bearer_auth(&w.team.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: serde_json::Value = w.app.get_json("/v1/audit", &w.team.api_key).await;
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        &kinds[..2],
        ["github.connection.deleted", "github.connection.created"]
    );
}

#[tokio::test]
async fn sessions_validate_repos_permissions_quota_and_ttl() {
    let w = world_with(&[], Tier::Anonymous).await;
    let url = w.app.public_url();
    let post = |body: serde_json::Value| {
        w.app
            .post("/v1/sessions")
            .bearer_auth(&w.team.api_key)
            .json(&body)
            .send()
    };

    let stranger = w.fake.repo_url("initech", "tps");
    let r = post(serde_json::json!({"repos": [stranger]}))
        .await
        .unwrap();
    let body = expect_error(r, "repo_not_connected", &url).await;
    assert!(
        body["message"].as_str().unwrap().contains("initech/tps"),
        "{body}"
    );
    assert_eq!(body["repo"], stranger);

    for bad in [
        "https://github.com/acme/widgets",
        "ftp://x/y/z",
        &format!("https://{}/acme/widgets", w.fake.host),
    ] {
        let r = post(serde_json::json!({"repos": [bad]})).await.unwrap();
        let code = r.json::<serde_json::Value>().await.unwrap()["error"].clone();
        assert!(
            code == "invalid_repo_url" || code == "unknown_github_host",
            "{bad}: {code}"
        );
    }
    let widgets = w.fake.repo_url("acme", "widgets");
    let r = post(serde_json::json!({"repos": [widgets], "permissions": {}}))
        .await
        .unwrap();
    let body = expect_error(r, "invalid_permissions", &url).await;
    assert!(body["message"].as_str().unwrap().contains("at least one"));
    let r = post(serde_json::json!({"repos": [widgets], "permissions": {"contents": "owner"}}))
        .await
        .unwrap();
    expect_error(r, "invalid_permissions", &url).await;
    let r = post(serde_json::json!({"repos": [widgets], "ttl_seconds": 3 * 3600}))
        .await
        .unwrap();
    expect_error(r, "ttl_too_long", &url).await;
    let r = post(serde_json::json!({"repos": [widgets], "ttl_seconds": 0}))
        .await
        .unwrap();
    expect_error(r, "invalid_ttl", &url).await;

    // `.git` and a trailing slash normalise away; the anonymous tier allows one live session.
    let r = post(serde_json::json!({"repos": [format!("{widgets}.git/")]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    assert_eq!(created["repos"], serde_json::json!([widgets]));
    assert!(created["runner_token"]
        .as_str()
        .unwrap()
        .starts_with("lrt_"));
    let r = post(serde_json::json!({"repos": [widgets]})).await.unwrap();
    expect_error(r, "quota_exceeded", &url).await;

    // Expired sessions free the quota: the default anonymous TTL is one hour.
    w.clock.advance(chrono::Duration::minutes(61));
    let r = post(serde_json::json!({"repos": [widgets]})).await.unwrap();
    assert_eq!(r.status(), 201);
    let sid = created["session_id"].as_str().unwrap();
    let got: serde_json::Value = w
        .app
        .get_json(&format!("/v1/sessions/{sid}"), &w.team.api_key)
        .await;
    assert_eq!(got["status"], "expired");
}

#[tokio::test]
async fn served_token_works_with_real_git_in_scope_only() {
    let w = world().await;
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["source"], "github_app");
    assert_eq!(body["host"], w.fake.host);
    assert_eq!(body["owner"], "acme");
    assert_eq!(body["repositories"], serde_json::json!(["widgets"]));
    // No permissions asked: the documented defaults, read only.
    assert_eq!(body["permissions"]["contents"], "read");
    assert_eq!(body["scheme"], "http", "the fake's api_url is http");
    let token = body["token"].as_str().unwrap();
    assert!(expiry(&body) - w.clock.now() >= chrono::Duration::minutes(15));

    let ok = ls_remote(&w.fake.repo_url("acme", "widgets"), token).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("refs/heads/main"));
    let out_of_scope = ls_remote(&w.fake.repo_url("acme", "gadgets"), token).await;
    assert!(
        !out_of_scope.status.success(),
        "a token scoped to widgets must not read gadgets"
    );
    assert_eq!(w.fake.git_auth_failures(), 1);
    let mint = &w.fake.mints()[0];
    assert_eq!(mint.repositories, ["widgets"]);
    assert_eq!(
        mint.permissions,
        [("contents", "read"), ("metadata", "read")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>(),
        "GitHub was asked for the defaults, not for everything the installation has"
    );
    assert_eq!(mint.installation_id, 1001);
}

#[tokio::test]
async fn a_runner_token_is_valid_only_for_its_own_session() {
    let w = world().await;
    let repos = [w.fake.repo_url("acme", "widgets")];
    let (sid_a, runner_a) = w.app.start_session(&w.team, &repos).await;
    let (sid_b, _) = w.app.start_session(&w.team, &repos).await;
    let url = w.app.public_url();
    expect_error(
        w.app.fetch_credential(&sid_b, &runner_a, "").await,
        "not_found",
        &url,
    )
    .await;
    expect_error(
        w.app.fetch_credential("not-a-uuid", &runner_a, "").await,
        "not_found",
        &url,
    )
    .await;
    expect_error(
        w.app.fetch_credential(&sid_a, &w.team.api_key, "").await,
        "unauthorized",
        &url,
    )
    .await;
    let mut forged = runner_a.clone();
    forged.pop();
    forged.push('0');
    expect_error(
        w.app.fetch_credential(&sid_a, &forged, "").await,
        "unauthorized",
        &url,
    )
    .await;
    // A runner token is not a team credential either.
    expect_error(
        w.app
            .get("/v1/me")
            .bearer_auth(&runner_a)
            .send()
            .await
            .unwrap(),
        "unauthorized",
        &url,
    )
    .await;
    assert_eq!(
        w.app.fetch_credential(&sid_a, &runner_a, "").await.status(),
        200
    );
}

#[tokio::test]
async fn many_sessions_and_concurrent_fetches_share_one_mint() {
    let w = world().await;
    let repos = [
        w.fake.repo_url("acme", "widgets"),
        w.fake.repo_url("acme", "gadgets"),
    ];
    let mut sessions = Vec::new();
    for _ in 0..100 {
        sessions.push(w.app.start_session(&w.team, &repos).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let (sid, runner) = sessions[i % sessions.len()].clone();
        let client = w.app.client.clone();
        let url = w.app.url(&format!("/v1/sessions/{sid}/credentials/github"));
        tasks.spawn(async move {
            let r = client.get(url).bearer_auth(runner).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()["token"]
                .as_str()
                .unwrap()
                .to_string()
        });
    }
    let mut tokens = std::collections::HashSet::new();
    while let Some(t) = tasks.join_next().await {
        tokens.insert(t.unwrap());
    }
    assert_eq!(
        w.fake.mint_count(),
        1,
        "1,000 fetches across 100 sessions of one scope mint once"
    );
    assert_eq!(tokens.len(), 1);
    let metrics = w
        .app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"lanyard_github_token_cache_total{result="miss"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        r#"lanyard_github_mints_total{{host="{}",result="ok"}} 1"#,
        w.fake.host
    )));
    assert!(metrics.contains(r#"lanyard_credentials_served_total{source="github_app"} 1000"#));
}

#[tokio::test]
async fn the_floor_holds_as_short_tokens_turn_over() {
    let w = world_with(&[("LANYARD_TOKEN_MIN_REMAINING", "30s")], Tier::Pro).await;
    w.fake.set_token_lifetime(Duration::from_secs(40));
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let mut tokens = std::collections::HashSet::new();
    // 45 s of fetches, every 250 ms of (injected) time.
    for _ in 0..180 {
        let body = credential(&w, &sid, &runner).await;
        let left = expiry(&body) - w.clock.now();
        assert!(
            left >= chrono::Duration::seconds(30),
            "served a token with only {left} left"
        );
        tokens.insert(body["token"].as_str().unwrap().to_string());
        w.clock.advance(chrono::Duration::milliseconds(250));
    }
    let mints = w.fake.mint_count();
    assert_eq!(mints, tokens.len());
    assert!(
        mints >= 4,
        "the cache must turn over as tokens near the floor ({mints} mints)"
    );
    assert!(
        mints <= 12,
        "one mint per ~5 s, not per request ({mints} mints for 180 fetches)"
    );
}

#[tokio::test]
async fn upstream_outage_serves_cached_tokens_and_recovers() {
    let w = world().await;
    let url = w.app.public_url();
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let first = credential(&w, &sid, &runner).await;
    w.fake.fail_with(503, None);
    // 42 minutes on, the 1 h token is due for refresh but still meets the 15 m floor.
    w.clock.advance(chrono::Duration::minutes(42));
    let during = credential(&w, &sid, &runner).await;
    assert_eq!(
        during["token"], first["token"],
        "the cached token is served while GitHub is down"
    );
    assert!(expiry(&during) - w.clock.now() >= chrono::Duration::minutes(15));

    let (sid2, runner2) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "gadgets")])
        .await;
    let r = w.app.fetch_credential(&sid2, &runner2, "").await;
    let body = expect_error(r, "github_unavailable", &url).await;
    assert!(body["retry_after_seconds"].as_u64().unwrap() >= 1);

    w.fake.recover();
    w.clock.advance(chrono::Duration::seconds(10));
    let recovered = credential(&w, &sid2, &runner2).await;
    assert_eq!(recovered["repositories"], serde_json::json!(["gadgets"]));
    let refreshed = credential(&w, &sid, &runner).await;
    assert_ne!(
        refreshed["token"], first["token"],
        "refreshed once GitHub is back"
    );
    assert!(expiry(&refreshed) - w.clock.now() >= chrono::Duration::minutes(55));
}

#[tokio::test]
async fn a_shared_token_lives_until_its_last_holder_stops() {
    let w = world().await;
    let repos = [w.fake.repo_url("acme", "widgets")];
    let (sid_a, runner_a) = w.app.start_session(&w.team, &repos).await;
    let (sid_b, runner_b) = w.app.start_session(&w.team, &repos).await;
    let token = credential(&w, &sid_a, &runner_a).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        credential(&w, &sid_b, &runner_b).await["token"],
        token.as_str()
    );

    let stop = |sid: String| {
        w.app
            .delete(&format!("/v1/sessions/{sid}"))
            .bearer_auth(&w.team.api_key)
            .send()
    };
    let r: serde_json::Value = stop(sid_a.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(r["status"], "stopped");
    assert_eq!(r["tokens_revoked"], 0, "B still holds the token");
    assert!(w.fake.token_is_live(&token));
    assert_eq!(
        credential(&w, &sid_b, &runner_b).await["token"],
        token.as_str()
    );

    let r: serde_json::Value = stop(sid_b.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(r["tokens_revoked"], 1);
    assert!(
        !w.fake.token_is_live(&token),
        "revoked at GitHub after the last holder stopped"
    );
    assert_eq!(w.fake.revocation_count(), 1);
    let page: serde_json::Value = w.app.get_json("/v1/audit?limit=3", &w.team.api_key).await;
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["credential.revoked", "session.stopped", "session.stopped"]
    );
}

#[tokio::test]
async fn a_stopped_session_gets_410() {
    let w = world().await;
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    credential(&w, &sid, &runner).await;
    let r = w
        .app
        .delete(&format!("/v1/sessions/{sid}"))
        .bearer_auth(&w.team.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    expect_error(
        w.app.fetch_credential(&sid, &runner, "").await,
        "session_ended",
        &w.app.public_url(),
    )
    .await;
    let got: serde_json::Value = w
        .app
        .get_json(&format!("/v1/sessions/{sid}"), &w.team.api_key)
        .await;
    assert_eq!(got["status"], "stopped");
}

#[tokio::test]
async fn an_expired_session_gets_410() {
    let w = world().await;
    let r = w
        .app
        .post("/v1/sessions")
        .bearer_auth(&w.team.api_key)
        .json(
            &serde_json::json!({"repos": [w.fake.repo_url("acme", "widgets")], "ttl_seconds": 600}),
        )
        .send()
        .await
        .unwrap();
    let created: serde_json::Value = r.json().await.unwrap();
    let (sid, runner) = (
        created["session_id"].as_str().unwrap(),
        created["runner_token"].as_str().unwrap(),
    );
    assert_eq!(w.app.fetch_credential(sid, runner, "").await.status(), 200);
    w.clock.advance(chrono::Duration::minutes(11));
    expect_error(
        w.app.fetch_credential(sid, runner, "").await,
        "session_ended",
        &w.app.public_url(),
    )
    .await;
}

#[tokio::test]
async fn sessions_over_several_owners_need_an_owner() {
    let w = world().await;
    let r = w
        .app
        .connect_installation(&w.team, &w.fake.host, "globex", 1002)
        .await;
    assert_eq!(r.status(), 201);
    let (sid, runner) = w
        .app
        .start_session(
            &w.team,
            &[
                w.fake.repo_url("acme", "widgets"),
                w.fake.repo_url("globex", "thing"),
            ],
        )
        .await;
    let r = w.app.fetch_credential(&sid, &runner, "").await;
    let body = expect_error(r, "owner_required", &w.app.public_url()).await;
    assert!(body.get("token").is_none());
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert!(choices.contains(&serde_json::json!({"host": w.fake.host, "owner": "globex"})));
    let r = w.app.fetch_credential(&sid, &runner, "?owner=globex").await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["owner"], "globex");
    assert_eq!(body["repositories"], serde_json::json!(["thing"]));
    let r = w
        .app
        .fetch_credential(&sid, &runner, &format!("?host={}&owner=acme", w.fake.host))
        .await;
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["repositories"],
        serde_json::json!(["widgets"])
    );
    assert_eq!(w.fake.mint_count(), 2, "one credential per (host, owner)");
}

#[tokio::test]
async fn a_pat_is_served_without_expiry_and_never_stored_in_clear() {
    let w = world().await;
    let pat = "ghp_patvalue0123456789abcdefghijklmnop";
    w.fake.add_pat(pat, "solo", &["notes"]);
    let r = w
        .app
        .post("/v1/github/connections")
        .bearer_auth(&w.team.api_key)
        .json(&serde_json::json!({"host": w.fake.host, "owner": "solo", "pat": pat}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created = r.text().await.unwrap();
    assert!(!created.contains(pat), "a PAT is never echoed: {created}");
    let (sid, runner) = w
        .app
        .start_session(
            &w.team,
            &[
                w.fake.repo_url("solo", "notes"),
                w.fake.repo_url("acme", "widgets"),
            ],
        )
        .await;
    let body: serde_json::Value = w
        .app
        .fetch_credential(&sid, &runner, "?owner=solo")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["source"], "pat");
    assert_eq!(body["token"], pat);
    assert!(body.get("expires_at").is_none(), "{body}");
    let ok = ls_remote(
        &w.fake.repo_url("solo", "notes"),
        body["token"].as_str().unwrap(),
    )
    .await;
    assert!(ok.status.success());
    let app_token = w
        .app
        .fetch_credential(&sid, &runner, "?owner=acme")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let dump = dump_text(&w.app.database_url).await;
    assert!(dump.contains("solo"), "the dump sees real rows");
    assert!(!dump.contains(pat), "PAT stored in clear");
    assert!(
        !dump.contains(&app_token),
        "installation token stored in clear"
    );
    assert!(
        !dump.contains(&app_token[4..]),
        "installation token stored in clear"
    );
}

#[tokio::test]
async fn the_compatibility_route_speaks_camel_case() {
    let w = world().await;
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let path = format!(
        "/api/projects/{}/agentic-sessions/{sid}/credentials/github",
        w.team.id
    );
    let r = w.app.get(&path).bearer_auth(&runner).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: serde_json::Value = r.json().await.unwrap();
    let keys: std::collections::BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["email", "expiresAt", "provider", "token", "userName"]
            .into_iter()
            .collect()
    );
    assert_eq!(body["provider"], "github");
    assert_eq!(body["email"], w.team.email);
    assert!(body["token"].as_str().unwrap().starts_with("ghs_"));
    let other_team = uuid::Uuid::new_v4();
    let r = w
        .app
        .get(&format!(
            "/api/projects/{other_team}/agentic-sessions/{sid}/credentials/github"
        ))
        .bearer_auth(&runner)
        .send()
        .await
        .unwrap();
    expect_error(r, "not_found", &w.app.public_url()).await;
}

/// Replicas on one Postgres coordinate their mints: through the database lock when Redis is not
/// configured, and through Redis when it is. (SQLite is a single-node store; skipped there.)
#[tokio::test]
async fn replicas_on_one_database_mint_once_per_scope() {
    if lanyard_store::testing::postgres_under_test().is_none() {
        eprintln!("skipped: replicas need a shared Postgres (set TEST_DATABASE_URL)");
        return;
    }
    let mut modes = vec![("database lock", "")];
    let redis = lanyard_testkit::redis_under_test();
    if let Some(url) = redis.as_deref() {
        modes.push(("redis lock", url));
    }
    for (mode, redis_url) in modes {
        let w = world_with(&[("LANYARD_REDIS_URL", redis_url)], Tier::Pro).await;
        let replicas = [&w.app, &w.app.replica(&[]).await, &w.app.replica(&[]).await];
        let repos = [w.fake.repo_url("acme", "widgets")];
        let mut sessions = Vec::new();
        for _ in 0..30 {
            sessions.push(w.app.start_session(&w.team, &repos).await);
        }
        w.fake.set_delay(Duration::from_millis(200));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (sid, runner)) in sessions.iter().enumerate() {
            let app = replicas[i % replicas.len()];
            let url = app.url(&format!("/v1/sessions/{sid}/credentials/github"));
            let client = app.client.clone();
            let runner = runner.clone();
            tasks.spawn(async move {
                let r = client.get(url).bearer_auth(runner).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.json::<serde_json::Value>().await.unwrap()["token"]
                    .as_str()
                    .unwrap()
                    .to_string()
            });
        }
        let mut tokens = std::collections::HashSet::new();
        while let Some(t) = tasks.join_next().await {
            tokens.insert(t.unwrap());
        }
        assert_eq!(
            w.fake.mint_count(),
            1,
            "{mode}: three replicas, one scope, one mint"
        );
        assert_eq!(tokens.len(), 1, "{mode}");
    }
}
