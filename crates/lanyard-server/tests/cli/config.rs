//! Configuration and input errors, help, and the OpenAPI command.

use std::process::Command;

use crate::lanyard;

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
        assert!(
            stderr.starts_with("error: invalid_config: ") && stderr.trim_end().ends_with('.'),
            "`error: <code>: <sentence>`: {stderr}"
        );
        // A cause is said once (a missing file's used to be repeated).
        assert!(
            stderr.matches("No such file").count() <= 1,
            "the cause repeats: {stderr}"
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
