//! Per-team abuse limits: one team cannot make Lanyard hammer GitHub or itself, and its limit is
//! not another team's.

use chrono::Duration;
use lanyard_core::Tier;
use lanyard_testkit::expect_error;

use crate::*;

/// Answers 429 `rate_limited` with a `Retry-After` of at most `max` seconds.
async fn limited(r: reqwest::Response, max: u64, url: &str) {
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=max).contains(&retry), "Retry-After {retry}");
    expect_error(r, "rate_limited", url).await;
}

#[tokio::test]
async fn session_creations_are_limited_per_minute() {
    let w = world().await;
    let url = w.app.public_url();
    let free = w.app.create_team("Free", Tier::Free).await;
    w.app
        .connect_installation(&free, &w.fake.host, "acme", 1001)
        .await;
    let create = |team: &lanyard_testkit::TestTeam| {
        w.app
            .post("/v1/sessions")
            .bearer_auth(&team.api_key)
            .json(&serde_json::json!({"repos": [w.fake.repo_url("acme", "widgets")]}))
            .send()
    };
    // Free allows 3 live sessions and 10 creations a minute: each is stopped to stay under 3.
    for _ in 0..Tier::Free.sessions_per_minute() {
        let r = create(&free).await.unwrap();
        assert_eq!(r.status(), 201);
        let id = r.json::<serde_json::Value>().await.unwrap()["session_id"]
            .as_str()
            .unwrap()
            .to_string();
        w.app.stop_session(&free, &id).await;
    }
    limited(create(&free).await.unwrap(), 60, &url).await;
    // Another team is not held back.
    w.app
        .connect_installation(&w.team, &w.fake.host, "acme", 1001)
        .await;
    assert_eq!(create(&w.team).await.unwrap().status(), 201);
    // A minute later the team may start sessions again.
    w.clock.advance(Duration::seconds(61));
    assert_eq!(create(&free).await.unwrap().status(), 201);
}

#[tokio::test]
async fn connection_attempts_are_limited_per_hour() {
    let w = world().await;
    let url = w.app.public_url();
    let attempt = |team: &lanyard_testkit::TestTeam| {
        w.app
            .post("/v1/github/connections")
            .bearer_auth(&team.api_key)
            .json(&serde_json::json!({"host": w.fake.host, "owner": "solo",
                "pat": "ghp_guess0123456789abcdefghijklmnopqrstu"}))
            .send()
    };
    for _ in 0..lanyard_core::CONNECTION_ATTEMPTS_PER_HOUR {
        expect_error(attempt(&w.team).await.unwrap(), "pat_invalid", &url).await;
    }
    // Guessing is over for the hour, PATs and installation flows alike.
    limited(attempt(&w.team).await.unwrap(), 3600, &url).await;
    let r = w.start_flow(serde_json::json!({"host": w.fake.host})).await;
    limited(r, 3600, &url).await;
    let other = w.app.create_team("Other", Tier::Free).await;
    expect_error(attempt(&other).await.unwrap(), "pat_invalid", &url).await;
    w.clock.advance(Duration::minutes(61));
    expect_error(attempt(&w.team).await.unwrap(), "pat_invalid", &url).await;
}

#[tokio::test]
async fn upstream_mints_are_limited_per_hour_by_tier() {
    let w = world().await;
    let url = w.app.public_url();
    // Tokens that live 16 minutes meet the 15-minute guarantee for one minute: every fetch two
    // minutes apart needs a mint.
    w.fake
        .set_token_lifetime(std::time::Duration::from_secs(16 * 60));
    let anonymous = w.app.create_team("Anonymous", Tier::Anonymous).await;
    w.app
        .connect_installation(&anonymous, &w.fake.host, "acme", 1001)
        .await;
    w.app
        .connect_installation(&w.team, &w.fake.host, "acme", 1001)
        .await;
    let (sid, runner) = w
        .app
        .start_session(&anonymous, &[w.fake.repo_url("acme", "widgets")])
        .await;
    let limit = Tier::Anonymous.limits().mints_per_hour;
    for i in 0..limit {
        let r = w.app.fetch_credential(&sid, &runner, "").await;
        assert_eq!(r.status(), 200, "fetch {i}");
        w.clock.advance(Duration::minutes(2));
    }
    assert_eq!(w.fake.mint_count(), limit as usize);
    limited(w.app.fetch_credential(&sid, &runner, "").await, 3600, &url).await;
    assert_eq!(
        w.fake.mint_count(),
        limit as usize,
        "no mint past the limit"
    );

    // A Pro team on the same installation still mints.
    let (pro, pro_runner) = w
        .app
        .start_session(&w.team, &[w.fake.repo_url("acme", "widgets")])
        .await;
    assert_eq!(
        w.app.fetch_credential(&pro, &pro_runner, "").await.status(),
        200
    );
    assert_eq!(w.fake.mint_count(), limit as usize + 1);
}
