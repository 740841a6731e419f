//! `lanyard admin …` runs the admin API's own operations against the database: provisioning
//! idempotent on the external id, changes, keys and deletion with the audit kept.

use lanyard_store::DatabaseUrl;

use crate::*;

fn admin(dir: &Path, db: &DatabaseUrl, args: &[&str]) -> (bool, serde_json::Value, String) {
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", dir.to_str().unwrap()]);
    let out = lanyard(&all)
        .env("LANYARD_DATABASE_URL", db.expose())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.success(), json, stderr)
}

#[tokio::test]
async fn the_operator_provisions_changes_keys_and_deletes_a_team() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = database_for(dir.path()).await;
    let create = [
        "create-team",
        "--name",
        "Project 9",
        "--external-id",
        "proj-9",
    ];
    let (ok, first, stderr) = admin(dir.path(), &db, &create);
    assert!(ok, "{stderr}");
    assert!(first["api_key"].as_str().unwrap().starts_with("lk_"));
    assert!(first.get("created").is_none(), "{first}");
    let team = first["team_id"].as_str().unwrap().to_string();

    let (ok, again, _) = admin(dir.path(), &db, &create);
    assert!(ok);
    assert_eq!(again["team_id"].as_str(), Some(team.as_str()));
    assert_eq!(again["created"], false);
    assert!(again.get("api_key").is_none(), "no second key: {again}");

    let (ok, changed, stderr) = admin(
        dir.path(),
        &db,
        &[
            "update-team",
            "--team",
            &team,
            "--tier",
            "growth",
            "--notification-email",
            "ops@example.test",
        ],
    );
    assert!(ok, "{stderr}");
    assert_eq!(changed["tier"], "growth");
    assert_eq!(changed["notification_email"], "ops@example.test");
    let (ok, _, stderr) = admin(dir.path(), &db, &["update-team", "--team", &team]);
    assert!(!ok && stderr.contains("nothing to change"), "{stderr}");

    let (ok, key, stderr) = admin(
        dir.path(),
        &db,
        &["issue-key", "--team", &team, "--label", "ci"],
    );
    assert!(ok, "{stderr}");
    assert!(key["api_key"].as_str().unwrap().starts_with("lk_"));

    let (ok, deleted, stderr) = admin(dir.path(), &db, &["delete-team", "--team", &team]);
    assert!(ok, "{stderr}");
    assert_eq!(deleted["team_deleted"], true);
    assert_eq!(deleted["sessions_stopped"], 0);
    let ghost = uuid::Uuid::new_v4().to_string();
    for args in [
        vec!["delete-team", "--team", &team],
        vec!["issue-key", "--team", &ghost],
        vec!["update-team", "--team", &ghost, "--name", "X"],
    ] {
        let (ok, _, stderr) = admin(dir.path(), &db, &args);
        assert!(!ok, "{args:?}");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("error: invalid_argument: --team: no team")),
            "{stderr}"
        );
    }

    // The audit outlives the team: the operator's deletion is its last record.
    let store = lanyard_store::Store::connect(&db).await.unwrap();
    let audit = store
        .list_audit(team.parse().unwrap(), 50, None)
        .await
        .unwrap();
    assert_eq!(audit[0].kind, "team.deleted");
    assert_eq!(audit[0].actor, "operator");
    assert!(audit.iter().any(|a| a.kind == "team.updated"));
}
