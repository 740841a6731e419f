//! The background workers (CONTRACT §12), on the test's clock, on SQLite or on Postgres when
//! `TEST_DATABASE_URL` is set: the schedule, expiry with revocation, metering, notifications
//! over real SMTP, the test-cohort guards through the registry, isolation and replicas.

mod delivery;
mod guards;
mod replicas;
mod schedule;

use std::sync::Arc;

use chrono::Duration;
use lanyard_core::{Clock, ManualClock, Tier, Worker};
use lanyard_server::workers::{run_now, Report};
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::{TestApp, TestAppBuilder, TestTeam};

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) fake: FakeGithub,
    pub(crate) clock: ManualClock,
}

/// A server on the fake GitHub (acme: installation 1001), with `extra` applied to its builder.
pub(crate) async fn world_with(extra: impl FnOnce(TestAppBuilder) -> TestAppBuilder) -> World {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    fake.add_installation(1001, "acme", &["widgets", "gadgets"]);
    let app = extra(TestApp::builder().clock(&clock).github(&fake))
        .spawn()
        .await;
    World { app, fake, clock }
}

pub(crate) async fn world() -> World {
    world_with(|b| b).await
}

impl World {
    /// A team connected to acme, a test-cohort one when `test`.
    pub(crate) async fn team(&self, name: &str, tier: Tier, test: bool) -> TestTeam {
        let team = self.app.create_team_in(name, tier, test).await;
        let r = self
            .app
            .connect_installation(&team, &self.fake.host, "acme", 1001)
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        team
    }

    /// Starts a session on acme/widgets that lives `ttl` seconds: (session id, runner token).
    pub(crate) async fn session(&self, team: &TestTeam, ttl: i64) -> (String, String) {
        let r = self
            .app
            .post("/v1/sessions")
            .bearer_auth(&team.api_key)
            .json(&serde_json::json!({
                "repos": [self.fake.repo_url("acme", "widgets")],
                "ttl_seconds": ttl,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let body: serde_json::Value = r.json().await.unwrap();
        (
            body["session_id"].as_str().unwrap().to_string(),
            body["runner_token"].as_str().unwrap().to_string(),
        )
    }

    /// The GitHub token the session is served.
    pub(crate) async fn token(&self, sid: &str, runner: &str) -> String {
        let r = self.app.fetch_credential(sid, runner, "").await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let body: serde_json::Value = r.json().await.unwrap();
        body["token"].as_str().unwrap().to_string()
    }

    pub(crate) fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub(crate) async fn run(&self, worker: Worker) -> Report {
        run_now(worker, self.app.services())
            .await
            .unwrap_or_else(|e| panic!("{worker}: {e:#}"))
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

/// The team's notifications as `GET /v1/notifications` lists them.
pub(crate) async fn notifications(app: &TestApp, team: &TestTeam) -> Vec<serde_json::Value> {
    let body = app.get_json("/v1/notifications", &team.api_key).await;
    body["notifications"].as_array().unwrap().clone()
}
