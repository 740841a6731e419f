//! The e2e client commands against a served Lanyard.

use crate::{database_for, lanyard, Served};

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
