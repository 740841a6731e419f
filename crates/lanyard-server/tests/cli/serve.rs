//! Serve, admin, restart and SIGTERM through the binary.

use crate::{create_team, database_for, Served};

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
