//! The `lanyard` binary as a user runs it: configuration errors, serve, admin, restart, signals.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lanyard_store::testing::{fresh_postgres_database, postgres_under_test};
use lanyard_store::DatabaseUrl;

const BIN: &str = env!("CARGO_BIN_EXE_lanyard");

/// A command with a clean environment: only PATH, and no inherited LANYARD_* variables.
fn lanyard(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

async fn database_for(dir: &Path) -> DatabaseUrl {
    match postgres_under_test() {
        Some(server) => fresh_postgres_database(&server).await,
        None => DatabaseUrl::sqlite_in(dir),
    }
}

/// A `lanyard serve` child and the lines it logs.
struct Served {
    child: Child,
    base_url: String,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    fn start(dir: &Path, db: &DatabaseUrl, extra_env: &[(&str, &str)]) -> Self {
        let mut cmd = lanyard(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
        ]);
        cmd.env("LANYARD_DATABASE_URL", db.expose())
            .stderr(Stdio::piped())
            .stdout(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn lanyard serve");
        let (tx, log) = mpsc::channel();
        for pipe in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut seen = Vec::new();
        let base_url = loop {
            let line = log
                .recv_timeout(Duration::from_secs(60))
                .expect("server logs its address");
            seen.push(line.clone());
            if let Some(i) = line.find("listening on http://") {
                let rest = &line[i + "listening on ".len()..];
                break rest
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .unwrap()
                    .to_string();
            }
        };
        Served {
            child,
            base_url,
            log,
            seen,
        }
    }

    /// SIGTERM, then the exit status and every line logged.
    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(20));
        while let Ok(line) = self.log.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        (status, self.seen)
    }
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create_team(dir: &Path, db: &DatabaseUrl) -> serde_json::Value {
    create_team_with(dir, db, &[])
}

fn create_team_with(dir: &Path, db: &DatabaseUrl, env: &[(&str, &str)]) -> serde_json::Value {
    let out = lanyard(&[
        "admin",
        "create-team",
        "--name",
        "Acme",
        "--tier",
        "pro",
        "--data-dir",
        dir.to_str().unwrap(),
    ])
    .env("LANYARD_DATABASE_URL", db.expose())
    .envs(env.iter().copied())
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is exactly the JSON")
}

#[tokio::test]
async fn serve_admin_restart_and_sigterm_through_the_binary() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = database_for(dir.path()).await;
    let client = reqwest::Client::new();

    let server = Served::start(dir.path(), &db, &[("LANYARD_LOG_FORMAT", "json")]);
    let team = create_team(dir.path(), &db);
    assert_eq!(team["tier"], "pro");
    let key = team["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("lk_"));
    let me: serde_json::Value = client
        .get(format!("{}/v1/me", server.base_url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["team_id"], team["team_id"]);
    let r = client
        .get(format!("{}/v1/me", server.base_url))
        .bearer_auth("lk_wrongwrongwrongwrongwrongwrongwrongwrong12")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let (status, lines) = server.terminate();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status:?}");
    let all = lines.join("\n");
    assert!(all.contains("shutting down"), "{all}");
    for line in &lines {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|_| panic!("LANYARD_LOG_FORMAT=json but got: {line}"));
        assert!(parsed.get("level").is_some(), "{line}");
    }
    assert!(!all.contains(&key), "the API key reached a log line");
    assert!(
        !all.contains(&key[13..]),
        "part of the API key reached a log line"
    );

    // Same data dir again: the team and its key are still there.
    let server = Served::start(dir.path(), &db, &[]);
    let r = client
        .get(format!("{}/v1/me", server.base_url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn config_errors_exit_non_zero_and_name_the_problem() {
    let dir = tempfile::TempDir::new().unwrap();
    let d = dir.path().to_str().unwrap();
    let toml = dir.path().join("lanyard.toml");
    std::fs::write(
        &toml,
        "listen = \"127.0.0.1:0\"\ndatabase_ulr = \"sqlite://x.db\"\n",
    )
    .unwrap();

    let cases: Vec<(Command, &str)> = vec![
        (
            {
                let mut c = lanyard(&["serve", "--data-dir", d]);
                c.env("LANYARD_CONFIG", &toml);
                c
            },
            "database_ulr",
        ),
        (
            {
                let mut c = lanyard(&["serve", "--data-dir", d, "--listen", "127.0.0.1:0"]);
                c.env("LANYARD_JWT_SECRET", "short-secret");
                c
            },
            "LANYARD_JWT_SECRET",
        ),
        (
            {
                let mut c = lanyard(&["serve", "--data-dir", d, "--listen", "127.0.0.1:0"]);
                c.env("LANYARD_DATABASE_URL", "mysql://root:hunter2@db/x");
                c
            },
            "LANYARD_DATABASE_URL",
        ),
        (
            {
                let mut c = lanyard(&["migrate", "--data-dir", d]);
                c.env("LANYARD_E2E_ACCOUNT_TOKEN", "tiny");
                c
            },
            "LANYARD_E2E_ACCOUNT_TOKEN",
        ),
        (
            {
                let mut c = lanyard(&["serve", "--data-dir", d]);
                c.arg("--config").arg(dir.path().join("missing.toml"));
                c
            },
            "missing.toml",
        ),
    ];
    for (mut cmd, needle) in cases {
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{needle}: {stderr}");
        assert!(
            stderr.contains(needle),
            "message should name {needle}: {stderr}"
        );
        assert!(
            !stderr.contains("hunter2") && !stderr.contains("short-secret"),
            "secret echoed: {stderr}"
        );
        assert_eq!(
            stderr.lines().count(),
            1,
            "one clear line, no backtrace: {stderr}"
        );
    }
}

#[test]
fn a_database_that_cannot_be_reached_fails_with_a_message() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = lanyard(&["migrate", "--data-dir", dir.path().to_str().unwrap()])
        .env(
            "LANYARD_DATABASE_URL",
            "postgres://lanyard:pw-not-shown@127.0.0.1:1/lanyard",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot open the database at postgres://lanyard:***@127.0.0.1:1/lanyard"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw-not-shown"), "{stderr}");
}

#[test]
fn help_explains_each_command() {
    for (args, needle) in [
        (vec!["--help"], "LANYARD_"),
        (vec!["serve", "--help"], "port 0 picks a free port"),
        (vec!["migrate", "--help"], "Apply database migrations"),
        (
            vec!["admin", "create-team", "--help"],
            "shown only this once",
        ),
        (vec!["openapi", "--help"], "OpenAPI"),
    ] {
        let out = lanyard(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(needle),
            "{args:?} help lacks {needle:?}:\n{text}"
        );
    }
}

#[test]
fn openapi_command_prints_the_document() {
    let out = lanyard(&["openapi"]).output().unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["paths"]["/v1/me"]["get"].is_object());
}

#[test]
fn admin_rejects_bad_input_before_touching_the_database() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = lanyard(&[
        "admin",
        "create-team",
        "--name",
        "X",
        "--tier",
        "platinum",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--tier") && stderr.contains("hobby_plus"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("lanyard.db").exists(),
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_reaches_the_log_or_the_database_at_debug_level() {
    use lanyard_testkit::fake_github::{app_private_key_path, FakeGithub};
    let dir = tempfile::TempDir::new().unwrap();
    let db = database_for(dir.path()).await;
    let fake = FakeGithub::start(std::sync::Arc::new(lanyard_core::SystemClock)).await;
    fake.add_installation(7, "acme", &["widgets"]);
    let pat = "ghp_clipat0123456789abcdefghijklmnopqrs";
    fake.add_pat(pat, "solo", &["notes"]);
    let key_path = app_private_key_path();
    let github_env = [
        ("LANYARD_GITHUB_HOST", fake.host.as_str()),
        ("LANYARD_GITHUB_API_URL", fake.api_url.as_str()),
        ("LANYARD_GITHUB_APP_ID", "424242"),
        (
            "LANYARD_GITHUB_APP_PRIVATE_KEY_FILE",
            key_path.to_str().unwrap(),
        ),
    ];
    let mut env = github_env.to_vec();
    env.push(("RUST_LOG", "debug"));
    let server = Served::start(dir.path(), &db, &env);
    let team = create_team_with(dir.path(), &db, &github_env);
    let key = team["api_key"].as_str().unwrap().to_string();
    let team_id = team["team_id"].as_str().unwrap().to_string();

    // The PAT goes in through the CLI, the installation through the API.
    let pat_file = dir.path().join("pat.txt");
    std::fs::write(&pat_file, format!("{pat}\n")).unwrap();
    let out = lanyard(&[
        "admin",
        "connect-github",
        "--team",
        &team_id,
        "--host",
        &fake.host,
        "--owner",
        "solo",
        "--pat-file",
        pat_file.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .env("LANYARD_DATABASE_URL", db.expose())
    .envs(github_env.iter().copied())
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(conn["kind"], "pat");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(pat));

    let client = reqwest::Client::new();
    let base = server.base_url.clone();
    let r = client
        .post(format!("{base}/v1/github/connections"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"host": fake.host, "owner": "acme", "installation_id": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client.post(format!("{base}/v1/sessions")).bearer_auth(&key)
        .json(&serde_json::json!({"repos": [fake.repo_url("acme", "widgets"), fake.repo_url("solo", "notes")]})).send().await.unwrap();
    let session: serde_json::Value = r.json().await.unwrap();
    let sid = session["session_id"].as_str().unwrap();
    let runner = session["runner_token"].as_str().unwrap().to_string();
    let mut served = Vec::new();
    for owner in ["acme", "solo"] {
        let r = client
            .get(format!(
                "{base}/v1/sessions/{sid}/credentials/github?owner={owner}"
            ))
            .bearer_auth(&runner)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        served.push(
            r.json::<serde_json::Value>().await.unwrap()["token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(served[1], pat);
    let r = client
        .delete(format!("{base}/v1/sessions/{sid}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["tokens_revoked"],
        1
    );

    let (status, lines) = server.terminate();
    assert!(status.success());
    let log = lines.join("\n");
    assert!(log.contains("DEBUG"), "RUST_LOG=debug was in effect");
    for secret in [served[0].as_str(), pat, key.as_str(), runner.as_str()] {
        assert!(!log.contains(secret), "a secret reached the log");
        assert!(
            !log.contains(&secret[6..]),
            "part of a secret reached the log"
        );
    }
    let dump = lanyard_testkit::dump_text(&db).await;
    assert!(dump.contains("acme"));
    for secret in [served[0].as_str(), pat, key.as_str(), runner.as_str()] {
        assert!(!dump.contains(secret), "a secret is stored in clear");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_create_and_reap_through_the_cli() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = database_for(dir.path()).await;
    let token = format!("cli-e2e-{}", uuid::Uuid::new_v4().simple());
    let server = Served::start(
        dir.path(),
        &db,
        &[("LANYARD_E2E_ACCOUNT_TOKEN", token.as_str())],
    );
    let base = server.base_url.clone();

    let out = lanyard(&[
        "e2e",
        "create",
        "--tier",
        "hobby",
        "--with-resources",
        "--api",
        &base,
    ])
    .env("LANYARD_E2E_ACCOUNT_TOKEN", &token)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let account: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(account["tier"], "hobby");
    assert_eq!(account["seeded_count"], 1);
    let team_id = account["team_id"].as_str().unwrap().to_string();

    let out = lanyard(&["e2e", "reap", &team_id, "--api", &base])
        .env(
            "LANYARD_E2E_ACCOUNT_TOKEN",
            "wrong-token-of-sufficient-length-000000",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));

    let out = lanyard(&["e2e", "reap", &team_id, "--api", &base])
        .env("LANYARD_E2E_ACCOUNT_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reaped: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reaped["team_deleted"], true);
    assert_eq!(reaped["sessions_stopped"], 1);

    let out = lanyard(&["e2e", "create", "--api", &base])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LANYARD_E2E_ACCOUNT_TOKEN"));
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn a_short_e2e_token_stops_start_up() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = lanyard(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .env("LANYARD_E2E_ACCOUNT_TOKEN", "only-twenty-bytes-xx")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LANYARD_E2E_ACCOUNT_TOKEN"));
}
