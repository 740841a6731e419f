//! PATs, the compatibility route, and replicas sharing one database.

use crate::*;

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
