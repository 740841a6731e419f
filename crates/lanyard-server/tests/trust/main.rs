//! Trust (CONTRACT §11): the installation flow that proves a team owns what it binds, webhooks
//! that keep connections true, verified PATs, the admin API, and per-team abuse limits. Each
//! runs on SQLite, and on Postgres and Redis when `TEST_DATABASE_URL`/`TEST_REDIS_URL` are set.

mod admin;
mod installation_flow;
mod limits;
mod pats;
mod webhooks;

use std::sync::Arc;

use lanyard_core::{ManualClock, Tier};
use lanyard_testkit::fake_github::FakeGithub;
use lanyard_testkit::{TestApp, TestTeam};

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) fake: FakeGithub,
    pub(crate) team: TestTeam,
    pub(crate) clock: ManualClock,
}

/// A fake GitHub with two installations (acme: widgets and gadgets; globex: tools), a user who
/// administers acme (alice), one who only sees acme's installation (carol) and one who sees
/// nothing (mallory), and a server on it.
pub(crate) async fn world_with(
    configure: impl FnOnce(lanyard_testkit::TestAppBuilder) -> lanyard_testkit::TestAppBuilder,
) -> World {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    fake.add_installation(1001, "acme", &["widgets", "gadgets"]);
    fake.add_installation(1002, "globex", &["tools"]);
    fake.add_user("alice", &[1001]);
    fake.add_user("mallory", &[]);
    // Carol has read access to one of acme's repositories: GitHub lists the installation to
    // her, but she does not own it.
    fake.add_collaborator("carol", &[1001]);
    let app = configure(TestApp::builder().clock(&clock).github(&fake))
        .spawn()
        .await;
    let team = app.create_team("Trusting", Tier::Pro).await;
    World {
        app,
        fake,
        team,
        clock,
    }
}

/// An answer with its per-request id taken out, to compare two answers.
pub(crate) async fn shape(r: reqwest::Response) -> (u16, String, serde_json::Value) {
    let status = r.status().as_u16();
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    let mut body: serde_json::Value = r.json().await.unwrap();
    body.as_object_mut().unwrap().remove("request_id");
    (status, content_type, body)
}

pub(crate) async fn world() -> World {
    world_with(|b| b).await
}

impl World {
    /// `POST /v1/github/installations`; returns the response.
    pub(crate) async fn start_flow(&self, body: serde_json::Value) -> reqwest::Response {
        self.app
            .post("/v1/github/installations")
            .bearer_auth(&self.team.api_key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Starts the flow and returns the state from the install URL.
    pub(crate) async fn state(&self, return_to: Option<&str>) -> String {
        let mut body = serde_json::json!({"host": self.fake.host});
        if let Some(r) = return_to {
            body["return_to"] = r.into();
        }
        let r = self.start_flow(body).await;
        assert_eq!(r.status(), 201);
        let started: serde_json::Value = r.json().await.unwrap();
        let url = started["install_url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!(
                "{}/apps/{}/installations/new?state=",
                self.fake.web_url,
                lanyard_testkit::fake_github::APP_SLUG
            )),
            "{url}"
        );
        url.split_once("state=").unwrap().1.to_string()
    }

    /// GitHub sending the browser to the setup URL, as a browser follows it (no redirects).
    pub(crate) async fn setup(&self, query: &[(&str, &str)]) -> reqwest::Response {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(self.app.url("/v1/github/setup"))
            .query(query)
            .send()
            .await
            .unwrap()
    }

    /// The team's connections, as it lists them.
    pub(crate) async fn connections(&self) -> Vec<serde_json::Value> {
        let list = self
            .app
            .get_json("/v1/github/connections", &self.team.api_key)
            .await;
        list["connections"].as_array().unwrap().clone()
    }

    /// The kinds of the team's audit records, newest first.
    pub(crate) async fn audit(&self) -> Vec<serde_json::Value> {
        let page = self
            .app
            .get_json("/v1/audit?limit=200", &self.team.api_key)
            .await;
        page["events"].as_array().unwrap().clone()
    }

    /// GitHub sending the browser back after `user` installed (or picked) `installation` and
    /// authorised the App.
    pub(crate) async fn complete(
        &self,
        state: &str,
        user: &str,
        installation: &str,
    ) -> reqwest::Response {
        let code = self.fake.authorize(user);
        self.setup(&[
            ("installation_id", installation),
            ("setup_action", "install"),
            ("code", &code),
            ("state", state),
        ])
        .await
    }

    /// Binds acme's installation through the flow, as alice.
    pub(crate) async fn bind_acme(&self) -> String {
        let state = self.state(None).await;
        let r = self.complete(&state, "alice", "1001").await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let connections = self.connections().await;
        connections
            .iter()
            .find(|c| c["owner"] == "acme")
            .expect("acme is bound")["connection_id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// A server on a fake GitHub that configures the App alone: no slug, no OAuth client, no
/// webhook secret.
pub(crate) async fn app_only() -> (TestApp, FakeGithub) {
    let clock = ManualClock::starting_now();
    let fake = FakeGithub::start(Arc::new(clock.clone())).await;
    let app = TestApp::builder()
        .clock(&clock)
        .env("LANYARD_GITHUB_HOST", &fake.host)
        .env("LANYARD_GITHUB_API_URL", &fake.api_url)
        .spawn()
        .await;
    (app, fake)
}
