//! One mint per scope, the floor held across lifetimes, and outages ridden out.

use crate::*;

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
    let metrics = w.app.metrics_text().await;
    assert!(
        metrics.contains(r#"lanyard_github_token_cache_total{result="miss"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        r#"lanyard_github_mints_total{{host="{}",result="ok"}} 1"#,
        w.fake.host
    )));
    assert!(metrics.contains(r#"lanyard_credentials_served_total{source="github_app"} 1000"#));
    // One scope, one cached token; each of the 100 runner tokens' sessions is held briefly.
    assert!(
        metrics.contains(r#"lanyard_broker_cache_entries{cache="tokens"} 1"#),
        "{metrics}"
    );
    let sessions_cached: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"lanyard_broker_cache_entries{cache="sessions"} "#))
        .and_then(|n| n.parse().ok())
        .expect("the sessions gauge");
    assert!(sessions_cached <= 100, "{sessions_cached}");
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
async fn a_token_stored_under_another_encryption_key_is_minted_anew() {
    let w = world().await;
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let first = credential(&w, &sid, &runner).await;
    assert_eq!(w.fake.mint_count(), 1);
    // After a key rotation, the stored row no longer opens: the scope mints anew, not 500.
    let rotated_key = "ab".repeat(32);
    let rotated = w
        .app
        .replica(&[("LANYARD_ENCRYPTION_KEY", rotated_key.as_str())])
        .await;
    let r = rotated.fetch_credential(&sid, &runner, "").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let second: serde_json::Value = r.json().await.unwrap();
    assert_ne!(second["token"], first["token"]);
    assert_eq!(w.fake.mint_count(), 2);
    assert!(w.fake.token_is_live(second["token"].as_str().unwrap()));
}

/// The cached credential path's futures stay small: the mint, the store reads and the retry are
/// boxed, so a cached request does not carry (and move, several times) their state. Before they
/// were boxed, the credential future was 10.6 KB and the session lookup's 1.3 KB; now 0.7 KB and
/// 0.1 KB.
#[tokio::test]
async fn the_cached_paths_futures_stay_small() {
    let w = world().await;
    let (sid, runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    credential(&w, &sid, &runner).await;
    let presented = lanyard_core::BearerSecret::parse(&runner).unwrap();
    let broker = w.app.services().broker();
    let lookup = broker.runner_session(&presented);
    let lookup_size = std::mem::size_of_val(&lookup);
    let session = lookup.await.unwrap().unwrap();
    let serve = broker.credential(&session, &session.scopes[0]);
    let serve_size = std::mem::size_of_val(&serve);
    assert!(serve.await.is_ok());
    for (what, size) in [("runner_session", lookup_size), ("credential", serve_size)] {
        assert!(size <= 2048, "the {what} future is {size} bytes");
    }
}

/// A cached session holds its lists at their length: collected rows and decoded JSON arrays
/// grow to four slots, and with 10,000 sessions in memory the spare slots were 9 MB.
#[tokio::test]
async fn a_cached_session_keeps_no_spare_capacity() {
    let w = world().await;
    let repos = [
        w.fake.repo_url("acme", "widgets"),
        w.fake.repo_url("acme", "gadgets"),
    ];
    let (sid, runner) = w.app.start_session(&w.team, &repos).await;
    credential(&w, &sid, &runner).await;
    let presented = lanyard_core::BearerSecret::parse(&runner).unwrap();
    let session = w
        .app
        .services()
        .broker()
        .runner_session(&presented)
        .await
        .unwrap()
        .unwrap();
    let lists = [
        ("scopes", session.scopes.len(), session.scopes.capacity()),
        (
            "session repos",
            session.session.repos.len(),
            session.session.repos.capacity(),
        ),
        (
            "scope repositories",
            session.scopes[0].repositories.len(),
            session.scopes[0].repositories.capacity(),
        ),
    ];
    assert_eq!(lists[0].1, 1);
    assert_eq!(lists[2].1, 2);
    for (what, len, capacity) in lists {
        assert_eq!(len, capacity, "{what}: {len} items in {capacity} slots");
    }
}
