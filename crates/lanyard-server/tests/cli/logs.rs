//! What the server logs: never a secret, and every line of a request inside its span.

use lanyard_testkit::fake_github::{app_private_key_path, FakeGithub};

use crate::{create_team_with, database_for, lanyard, Served};

/// The environment that points Lanyard at the fake GitHub and its App.
fn github_env(fake: &FakeGithub) -> Vec<(&'static str, String)> {
    vec![
        ("LANYARD_GITHUB_HOST", fake.host.clone()),
        ("LANYARD_GITHUB_API_URL", fake.api_url.clone()),
        ("LANYARD_GITHUB_APP_ID", fake.app_id.to_string()),
        (
            "LANYARD_GITHUB_APP_PRIVATE_KEY_FILE",
            app_private_key_path().display().to_string(),
        ),
        ("LANYARD_ADMIN_TOKEN", ADMIN.to_string()),
    ]
}

const ADMIN: &str = "cli-admin-token-0123456789abcdefghijklmnopqrstuv";

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_reaches_the_log_or_the_database_at_debug_level() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = database_for(dir.path()).await;
    let fake = FakeGithub::start(std::sync::Arc::new(lanyard_core::SystemClock)).await;
    fake.add_installation(7, "acme", &["widgets"]);
    let pat = "ghp_clipat0123456789abcdefghijklmnopqrs";
    fake.add_pat(pat, "solo", &["notes"]);
    let owned = github_env(&fake);
    let github_env = borrowed(&owned);
    let mut env = github_env.clone();
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
        .post(format!(
            "{base}/admin/v1/teams/{team_id}/github/connections"
        ))
        .bearer_auth(ADMIN)
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
    for secret in [
        served[0].as_str(),
        pat,
        key.as_str(),
        runner.as_str(),
        ADMIN,
    ] {
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

/// A broker warning is written inside its request's span: in JSON logs it carries the request
/// id the client saw, the route template and the team, so an operator can trace it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_warning_names_its_request_route_and_team() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = database_for(dir.path()).await;
    let fake = FakeGithub::start(std::sync::Arc::new(lanyard_core::SystemClock)).await;
    fake.add_installation(7, "acme", &["widgets"]);
    let owned = github_env(&fake);
    let github_env = borrowed(&owned);
    let mut env = github_env.clone();
    env.push(("LANYARD_LOG_FORMAT", "json"));
    let server = Served::start(dir.path(), &db, &env);
    let team = create_team_with(dir.path(), &db, &github_env);
    let key = team["api_key"].as_str().unwrap();
    let team_id = team["team_id"].as_str().unwrap();
    let client = reqwest::Client::new();
    let base = server.base_url.clone();
    let r = client
        .post(format!(
            "{base}/admin/v1/teams/{team_id}/github/connections"
        ))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"host": fake.host, "owner": "acme", "installation_id": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(key)
        .json(&serde_json::json!({"repos": [fake.repo_url("acme", "widgets")]}))
        .send()
        .await
        .unwrap();
    let session: serde_json::Value = r.json().await.unwrap();
    let sid = session["session_id"].as_str().unwrap();
    fake.fail_with(503, None);
    let r = client
        .get(format!("{base}/v1/sessions/{sid}/credentials/github"))
        .bearer_auth(session["runner_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();

    let (_, lines) = server.terminate();
    let warning = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "an upstream mint failed")
        .unwrap_or_else(|| panic!("no mint warning in:\n{}", lines.join("\n")));
    let span = &warning["span"];
    assert_eq!(span["request_id"], request_id.as_str(), "{warning}");
    assert_eq!(span["team"], team_id, "{warning}");
    assert_eq!(
        span["route"], "/v1/sessions/{session_id}/credentials/github",
        "{warning}"
    );
}
