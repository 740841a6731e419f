//! `lanyard doctor`: a good configuration passes, and each broken part is named.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use lanyard_core::SystemClock;
use lanyard_store::DatabaseUrl;
use lanyard_testkit::fake_github::{app_private_key_path, FakeGithub};
use lanyard_testkit::{redis_under_test, write_private};

use crate::{database_for, lanyard};

struct Setup {
    dir: tempfile::TempDir,
    db: DatabaseUrl,
    fake: FakeGithub,
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let db = database_for(dir.path()).await;
        let fake = FakeGithub::start(Arc::new(SystemClock)).await;
        Self { dir, db, fake }
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The environment of a working configuration, with `overrides` on top.
    fn env(&self, overrides: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("LANYARD_DATA_DIR", self.data_dir().display().to_string()),
            ("LANYARD_DATABASE_URL", self.db.expose().to_string()),
            ("LANYARD_GITHUB_HOST", self.fake.host.clone()),
            ("LANYARD_GITHUB_API_URL", self.fake.api_url.clone()),
            ("LANYARD_GITHUB_APP_ID", self.fake.app_id.to_string()),
            (
                "LANYARD_GITHUB_APP_PRIVATE_KEY_FILE",
                app_private_key_path().display().to_string(),
            ),
        ];
        if let Some(redis) = redis_under_test() {
            env.push(("LANYARD_REDIS_URL", redis));
        }
        let mut env: Vec<(String, String)> =
            env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        for (k, v) in overrides {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.clone()));
        }
        env
    }

    /// Runs `lanyard doctor --json`: whether it exited 0, and each check as (ok, detail).
    async fn doctor(&self, overrides: &[(&str, String)]) -> (bool, serde_json::Value) {
        let mut cmd = lanyard(&["doctor", "--json"]);
        cmd.envs(self.env(overrides));
        let out = tokio::process::Command::from(cmd).output().await.unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
        });
        assert_eq!(
            report["ok"],
            out.status.success(),
            "the exit code is the verdict"
        );
        (out.status.success(), report)
    }
}

/// The check named `name`: (ok, detail).
fn check(report: &serde_json::Value, name: &str) -> (bool, String) {
    let c = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report:#}"));
    (
        c["ok"].as_bool().unwrap(),
        c["detail"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_configuration_passes_every_check() {
    let s = Setup::new().await;
    let github = format!("github {}", s.fake.host);
    // Before serve ever ran: nothing exists yet, and that is fine.
    let (ok, report) = s.doctor(&[]).await;
    assert!(ok, "{report:#}");
    let (_, detail) = check(&report, &github);
    assert!(detail.contains(&s.fake.app_id.to_string()), "{detail}");

    let mut migrate = lanyard(&["migrate"]);
    migrate.envs(s.env(&[]));
    assert!(migrate.status().unwrap().success());
    let (ok, report) = s.doctor(&[]).await;
    assert!(ok, "{report:#}");
    let (_, migrations) = check(&report, "migrations");
    assert!(migrations.contains("none pending"), "{migrations}");
    let (_, database) = check(&report, "database");
    assert!(database.contains("answers"), "{database}");

    // A data dir open to others but holding only Lanyard's files: serve tightens it, so it passes.
    std::fs::set_permissions(s.data_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, report) = s.doctor(&[]).await;
    assert!(ok, "{report:#}");
    let (_, detail) = check(&report, "data_dir");
    assert!(detail.contains("serve tightens it"), "{detail}");
    std::fs::set_permissions(s.data_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();

    // The text form: a line per check, marked.
    let mut text = lanyard(&["doctor"]);
    text.envs(s.env(&[]));
    let out = tokio::process::Command::from(text).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("✓ migrations")),
        "{stdout}"
    );
    assert!(!stdout.contains('✗'), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_part_is_named() {
    let s = Setup::new().await;
    let github = format!("github {}", s.fake.host);

    // A wrong app id: GitHub refuses the app JWT.
    let (ok, report) = s.doctor(&[("LANYARD_GITHUB_APP_ID", "999".into())]).await;
    assert!(!ok);
    let (host_ok, detail) = check(&report, &github);
    assert!(
        !host_ok && detail.contains("401") && detail.contains("999"),
        "{detail}"
    );

    // A key file that holds no key.
    let bad_key = s.data_dir().join("not-a-key.pem");
    write_private(&bad_key, "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n");
    let (ok, report) = s
        .doctor(&[(
            "LANYARD_GITHUB_APP_PRIVATE_KEY_FILE",
            bad_key.display().to_string(),
        )])
        .await;
    assert!(!ok);
    let (host_ok, detail) = check(&report, &github);
    assert!(!host_ok && detail.contains("not-a-key.pem"), "{detail}");

    // A key others may read.
    let loose = s.data_dir().join("loose-key.pem");
    std::fs::copy(app_private_key_path(), &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, report) = s
        .doctor(&[(
            "LANYARD_GITHUB_APP_PRIVATE_KEY_FILE",
            loose.display().to_string(),
        )])
        .await;
    assert!(!ok);
    let (host_ok, detail) = check(&report, &github);
    assert!(!host_ok && detail.contains("chmod 600"), "{detail}");

    // An unreachable database, and a data dir open to others.
    std::fs::set_permissions(s.data_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, report) = s
        .doctor(&[(
            "LANYARD_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/lanyard".into(),
        )])
        .await;
    assert!(!ok);
    let (db_ok, detail) = check(&report, "database");
    assert!(!db_ok && detail.contains("127.0.0.1:1"), "{detail}");
    let (dir_ok, detail) = check(&report, "data_dir");
    assert!(!dir_ok && detail.contains("chmod 700"), "{detail}");
    let (host_ok, _) = check(&report, &github);
    assert!(host_ok, "the rest is still checked");

    // A configuration that does not load is the one failed check.
    let (ok, report) = s
        .doctor(&[("LANYARD_TOKEN_MIN_REMAINING", "soon".into())])
        .await;
    assert!(!ok);
    let (_, detail) = check(&report, "config");
    assert!(detail.contains("token_min_remaining"), "{detail}");
}

/// A server with no GitHub host can serve nothing: doctor says what is missing and fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_github_host_is_named_as_missing() {
    let s = Setup::new().await;
    let mut cmd = lanyard(&["doctor", "--json"]);
    cmd.envs(
        s.env(&[])
            .into_iter()
            .filter(|(k, _)| !k.starts_with("LANYARD_GITHUB_")),
    );
    let out = tokio::process::Command::from(cmd).output().await.unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (ok, detail) = check(&report, "github");
    assert!(!ok, "{detail}");
    assert!(
        detail.contains("unknown_github_host") && detail.contains("[[github]]"),
        "{detail}"
    );
}
