//! Test support for Lanyard.
//!
//! [`TestApp::spawn`] starts the real server in-process on port 0 with a temp data dir, on a
//! fresh database: SQLite by default, Postgres when `TEST_DATABASE_URL` is set, and with Redis when
//! `TEST_REDIS_URL` is set. Time comes from a [`ManualClock`] the test can move.

pub mod chaos;
pub mod coverage;
mod envelope;
mod files;
mod requests;
pub use lanyard_fake_github as fake_github;
pub mod smtp;

pub use envelope::expect_error;
pub use files::{workspace_binary, write_private};

use std::collections::BTreeMap;
use std::sync::Arc;

use lanyard_core::{Actor, Email, ManualClock, TeamName, Tier};
use lanyard_server::config::{Config, Flags};
use lanyard_server::domain::accounts::create_team;
use lanyard_server::RunningServer;
use lanyard_server::Services;
use lanyard_store::testing::{fresh_postgres_database, postgres_under_test};
use lanyard_store::{DatabaseUrl, NewTeam, Store};
use secrecy::ExposeSecret;
use tempfile::TempDir;
use uuid::Uuid;

pub use lanyard_store::testing::{count, dump_text, execute_script, uuid_literal, TableLock};

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.as_ref() {
            coverage::record_coverage(server);
        }
    }
}

/// The Redis server under test, if `TEST_REDIS_URL` is set.
pub fn redis_under_test() -> Option<String> {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// The admin token test servers run with (unless [`TestAppBuilder::without_admin`]).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghijklmnop";

/// A running Lanyard for one test.
#[derive(Debug)]
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    server_clock: Arc<dyn lanyard_core::Clock>,
    pub database_url: DatabaseUrl,
    pub data_dir: Arc<TempDir>,
    env: BTreeMap<String, String>,
    workers: bool,
    server: Option<RunningServer>,
}

/// A team created for a test, with its one-time API key and primary user.
#[derive(Debug, Clone)]
pub struct TestTeam {
    pub id: Uuid,
    pub api_key: String,
    pub user_id: Uuid,
    pub email: String,
}

/// Configures a [`TestApp`] before it starts.
#[derive(Debug, Default)]
pub struct TestAppBuilder {
    env: BTreeMap<String, String>,
    no_admin: bool,
    clock: Option<ManualClock>,
    real_time: bool,
    workers: bool,
}

impl TestAppBuilder {
    /// Sets a `LANYARD_*` variable for the server (overriding the test defaults).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Uses this clock (share it with a [`fake_github::FakeGithub`] to move both at once).
    pub fn clock(mut self, clock: &ManualClock) -> Self {
        self.clock = Some(clock.clone());
        self
    }

    /// Runs the server on the wall clock (for tests with real processes that wait real time,
    /// such as runner soaks). `TestApp::clock` then does not drive the server.
    pub fn real_time(mut self) -> Self {
        self.real_time = true;
        self
    }

    /// Configures the fake GitHub as the one GitHub host, with its App.
    /// Configures the fake GitHub as the one GitHub host: its App, its OAuth client (the
    /// installation flow) and its webhook secret.
    pub fn github(self, fake: &fake_github::FakeGithub) -> Self {
        let path = |p: std::path::PathBuf| p.to_str().expect("utf-8 path").to_string();
        self.env("LANYARD_GITHUB_HOST", &fake.host)
            .env("LANYARD_GITHUB_API_URL", &fake.api_url)
            .env("LANYARD_GITHUB_WEB_URL", &fake.web_url)
            .env("LANYARD_GITHUB_APP_ID", &fake.app_id.to_string())
            .env(
                "LANYARD_GITHUB_APP_PRIVATE_KEY_FILE",
                &path(fake_github::app_private_key_path()),
            )
            .env("LANYARD_GITHUB_APP_SLUG", fake_github::APP_SLUG)
            .env("LANYARD_GITHUB_CLIENT_ID", fake_github::CLIENT_ID)
            .env(
                "LANYARD_GITHUB_CLIENT_SECRET_FILE",
                &path(fake_github::client_secret_path()),
            )
            .env(
                "LANYARD_GITHUB_WEBHOOK_SECRET_FILE",
                &path(fake_github::webhook_secret_path()),
            )
    }

    /// Runs the background workers on their schedule, as `lanyard serve` does. Off by default:
    /// tests drive each run with `lanyard_server::workers::tick`, on the test's clock.
    pub fn with_workers(mut self) -> Self {
        self.workers = true;
        self
    }

    /// Leaves the admin API off (it is on, with [`TestApp::admin_token`], by default).
    pub fn without_admin(mut self) -> Self {
        self.no_admin = true;
        self
    }

    pub async fn spawn(self) -> TestApp {
        let data_dir = Arc::new(TempDir::new().expect("temp dir"));
        let database_url = match postgres_under_test() {
            Some(server) => fresh_postgres_database(&server).await,
            None => DatabaseUrl::sqlite_in(data_dir.path()),
        };
        let mut env = BTreeMap::from([
            (
                "LANYARD_DATA_DIR".to_string(),
                data_dir.path().display().to_string(),
            ),
            ("LANYARD_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            (
                "LANYARD_DATABASE_URL".to_string(),
                database_url.expose().to_string(),
            ),
        ]);
        if let Some(redis) = redis_under_test() {
            env.insert("LANYARD_REDIS_URL".into(), redis);
        }
        if !self.no_admin {
            env.insert("LANYARD_ADMIN_TOKEN".into(), ADMIN_TOKEN.into());
        }
        env.extend(self.env);
        let clock = self.clock.unwrap_or_else(ManualClock::starting_now);
        let server_clock: Arc<dyn lanyard_core::Clock> = if self.real_time {
            Arc::new(lanyard_core::SystemClock)
        } else {
            Arc::new(clock.clone())
        };
        let mut app = TestApp {
            base_url: String::new(),
            client: reqwest::Client::new(),
            clock,
            server_clock,
            database_url,
            data_dir,
            env,
            workers: self.workers,
            server: None,
        };
        app.start().await;
        app
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// A server on a fresh database with the default test configuration.
    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    async fn start(&mut self) {
        let mut config = Config::load(&Flags::default(), &self.env)
            .expect("test config is valid")
            .config;
        config.workers.background = self.workers;
        let server = lanyard_server::start(config, self.server_clock.clone())
            .await
            .expect("server starts");
        self.base_url = format!("http://{}", server.addr);
        // A restart reuses the port, so the public URL (the JWT audience) stays the same.
        self.env
            .insert("LANYARD_LISTEN".into(), server.addr.to_string());
        self.server = Some(server);
    }

    /// Another server (a replica) on the same database, data dir and clock, with `overrides`
    /// applied to its environment (e.g. `LANYARD_REDIS_URL=""` to coordinate through Postgres).
    pub async fn replica(&self, overrides: &[(&str, &str)]) -> TestApp {
        let mut env = self.env.clone();
        env.insert("LANYARD_LISTEN".into(), "127.0.0.1:0".into());
        for (k, v) in overrides {
            env.insert((*k).to_string(), (*v).to_string());
        }
        let mut app = TestApp {
            base_url: String::new(),
            client: reqwest::Client::new(),
            clock: self.clock.clone(),
            server_clock: self.server_clock.clone(),
            database_url: self.database_url.clone(),
            data_dir: self.data_dir.clone(),
            env,
            workers: self.workers,
            server: None,
        };
        app.start().await;
        app
    }

    /// Stops the server gracefully and starts it again on the same data dir and database.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            coverage::record_coverage(&server);
            server.shutdown().await.expect("clean shutdown");
        }
        self.start().await;
    }

    /// The running server's services: what its handlers, commands and workers call through.
    pub fn services(&self) -> &Services {
        &self.server.as_ref().expect("server is running").services
    }

    pub fn store(&self) -> &Store {
        self.services().store()
    }

    pub fn public_url(&self) -> String {
        self.services().public_url().to_string()
    }

    /// The separate metrics listener's `/metrics`, when `LANYARD_METRICS_LISTEN` is set.
    pub fn metrics_url(&self) -> Option<String> {
        let server = self.server.as_ref().expect("server is running");
        server.metrics_addr.map(|a| format!("http://{a}/metrics"))
    }

    /// The listening address, for raw TCP clients.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().expect("server is running").addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path))
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.patch(self.url(path))
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// The `/metrics` scrape as text.
    pub async fn metrics_text(&self) -> String {
        let r = self.get("/metrics").send().await.expect("request");
        assert!(r.status().is_success(), "/metrics answered {}", r.status());
        r.text().await.expect("text")
    }

    /// One series' value in the `/metrics` scrape, named in full with its labels (for example
    /// `lanyard_github_webhooks_total{event="installation",result="refused"}`); `None` until
    /// the series exists.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        self.metrics_text().await.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
    }

    /// Creates a team (through the same domain call as `lanyard admin create-team`) with a
    /// verified primary user.
    pub async fn create_team(&self, name: &str, tier: Tier) -> TestTeam {
        self.create_team_in(name, tier, false).await
    }

    /// Like [`Self::create_team`], a test-cohort team when `test_cohort`.
    pub async fn create_team_in(&self, name: &str, tier: Tier, test_cohort: bool) -> TestTeam {
        let email = format!("owner+{}@example.test", Uuid::new_v4().simple());
        let input = NewTeam {
            name: TeamName::parse(name).expect("valid team name"),
            tier,
            is_test_cohort: test_cohort,
            primary_user: Some(Email::parse(&email).expect("valid email")),
            external_id: None,
            notification_email: None,
            actor: Actor::operator(),
            extra_audit: vec![],
        };
        let created = create_team(self.services(), &input)
            .await
            .expect("team created");
        TestTeam {
            id: created.team.id,
            api_key: created.api_key.expose_secret().to_string(),
            user_id: created.user_id.expect("primary user"),
            email,
        }
    }

    /// A valid session JWT for the team's primary user, issued now for an hour.
    pub fn jwt_for(&self, team: &TestTeam) -> String {
        let now = self.server_clock.now();
        self.services()
            .jwt()
            .issue(
                team.user_id,
                team.id,
                &team.email,
                now,
                chrono::Duration::hours(1),
            )
            .0
    }
}
