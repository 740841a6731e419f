//! The credential broker against the fake GitHub (CONTRACT §4 and §6).

mod freshness;
mod lifecycle;
mod setup;
mod sources;
mod trust;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lanyard_core::{Clock, ManualClock, Tier};
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::{dump_text, expect_error, TestApp, TestTeam};

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) fake: FakeGithub,
    pub(crate) team: TestTeam,
    pub(crate) clock: ManualClock,
}

pub(crate) async fn world_with(env: &[(&str, &str)], tier: Tier) -> World {
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

pub(crate) async fn world() -> World {
    world_with(&[], Tier::Pro).await
}

pub(crate) async fn credential(w: &World, sid: &str, token: &str) -> serde_json::Value {
    let r = w.app.fetch_credential(sid, token, "").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

/// Deletes the team's (one) GitHub connection through the API.
pub(crate) async fn delete_the_connection(w: &World) {
    let list = w
        .app
        .get_json("/v1/github/connections", &w.team.api_key)
        .await;
    let id = list["connections"][0]["connection_id"].as_str().unwrap();
    let r = w
        .app
        .delete(&format!("/v1/github/connections/{id}"))
        .bearer_auth(&w.team.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

pub(crate) fn expiry(body: &serde_json::Value) -> DateTime<Utc> {
    body["expires_at"].as_str().unwrap().parse().unwrap()
}

/// `git ls-remote` with the token supplied by a credential helper, never in the URL.
pub(crate) async fn ls_remote(url: &str, token: &str) -> std::process::Output {
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
