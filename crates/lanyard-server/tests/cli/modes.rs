//! File modes are enforced, not assumed: a data dir open to others is tightened, and secret files
//! that others may read stop start-up with the fix in the message.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use lanyard_testkit::fake_github::FakeGithub;

use crate::{lanyard, Served};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `lanyard admin create-team` on `data` and `db` with `env`: it refuses, naming `needle` and
/// the fix.
fn refused(data: &Path, db: &lanyard_store::DatabaseUrl, env: &[(&str, &str)], needle: &str) {
    let mut cmd = lanyard(&[
        "admin",
        "create-team",
        "--name",
        "Modes",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    cmd.env("LANYARD_DATABASE_URL", db.expose());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(needle) && stderr.contains("chmod 600"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_data_dir_is_tightened_and_secret_files_open_to_others_stop_start_up() {
    let parent = tempfile::TempDir::new().unwrap();
    let data = parent.path().join("data");
    std::fs::create_dir(&data).unwrap();
    chmod(&data, 0o755);
    let db = lanyard_store::DatabaseUrl::sqlite_in(&data);

    // The first start tightens the data dir and creates its secrets 0600.
    let server = Served::start(&data, &db, &[]);
    let (status, log) = server.terminate();
    assert!(status.success(), "{status}: {log:#?}");
    assert_eq!(mode(&data), 0o700, "the data dir was tightened");
    for secret in ["jwt_secret", "encryption_key"] {
        assert_eq!(mode(&data.join(secret)), 0o600, "{secret}");
    }

    // A generated secret made readable by others stops start-up, naming the file and the fix.
    chmod(&data.join("encryption_key"), 0o644);
    refused(&data, &db, &[], "encryption_key");
    chmod(&data.join("encryption_key"), 0o600);

    // So does a GitHub App key, and any *_FILE secret.
    let fake = FakeGithub::start(std::sync::Arc::new(lanyard_core::SystemClock)).await;
    let key = parent.path().join("app-key.pem");
    std::fs::copy(lanyard_testkit::fake_github::app_private_key_path(), &key).unwrap();
    chmod(&key, 0o640);
    let app_id = fake.app_id.to_string();
    let github = [
        ("LANYARD_GITHUB_HOST", fake.host.as_str()),
        ("LANYARD_GITHUB_API_URL", fake.api_url.as_str()),
        ("LANYARD_GITHUB_APP_ID", app_id.as_str()),
        ("LANYARD_GITHUB_APP_PRIVATE_KEY_FILE", key.to_str().unwrap()),
    ];
    refused(&data, &db, &github, "app-key.pem");
    let admin = parent.path().join("admin-token");
    std::fs::write(&admin, "an-admin-token-of-sufficient-length-0123456789").unwrap();
    chmod(&admin, 0o604);
    refused(
        &data,
        &db,
        &[("LANYARD_ADMIN_TOKEN_FILE", admin.to_str().unwrap())],
        "LANYARD_ADMIN_TOKEN_FILE",
    );

    // A shared, sticky directory is never made private.
    let shared = parent.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let out = lanyard(&["migrate", "--data-dir", shared.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("shared (sticky) directory"), "{stderr}");
    assert_eq!(mode(&shared), 0o1777, "left as it was");

    // So is one that holds someone's files: Lanyard tightens only a directory of its own.
    let home = parent.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("notes.txt"), "mine").unwrap();
    chmod(&home, 0o755);
    let out = lanyard(&["migrate", "--data-dir", home.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("holds files Lanyard did not create"),
        "{stderr}"
    );
    assert_eq!(mode(&home), 0o755, "left as it was");
}
